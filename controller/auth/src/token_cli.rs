//! `bramble token create|list|delete`: bootstrap tokens for joining nodes, as `kubeadm
//! token`: Secrets `bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token` in
//! `kube-system`, written through the API with the caller's kubeconfig.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::bootstrap_token::{self, BootstrapToken, DEFAULT_EXTRA_GROUP, SECRET_TYPE};

/// Why a token command failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenCliError {
    #[error("{0}")]
    Usage(String),
    #[error("reading {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("client configuration: {0}")]
    Config(String),
    #[error("API: {0}")]
    Api(#[from] kube::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("pki: {0}")]
    Pki(#[from] bramble_pki::PkiError),
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

type Result<T> = std::result::Result<T, TokenCliError>;

fn usage<T>(msg: String) -> Result<T> {
    Err(TokenCliError::Usage(msg))
}

/// `bramble token ...`
#[derive(Args)]
pub struct TokenArgs {
    /// Kubeconfig of an administrator (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a bootstrap token (a random one unless TOKEN is given) and print it.
    Create {
        /// The token, `[a-z0-9]{6}.[a-z0-9]{16}`.
        token: Option<String>,
        /// Lifetime (`30m`, `24h`, `7d`; `0` never expires).
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// Comma-separated usages: `signing`, `authentication`.
        #[arg(long, default_value = "signing,authentication")]
        usages: String,
        /// Comma-separated extra groups (each must start with `system:bootstrappers:`).
        #[arg(long, default_value = DEFAULT_EXTRA_GROUP)]
        groups: String,
        /// A human-readable description.
        #[arg(long, default_value = "")]
        description: String,
        /// Also print the server URL and CA hash a joining node needs.
        #[arg(long)]
        print_join_command: bool,
    },
    /// List bootstrap tokens.
    List,
    /// Delete bootstrap tokens (by token or token id).
    Delete {
        #[arg(required = true)]
        tokens: Vec<String>,
    },
}

/// Parses `90s`, `30m`, `24h`, `7d` (or a plain number of seconds); `0` means no expiry.
fn parse_ttl(s: &str) -> Result<Option<i64>> {
    let (num, mult) = match s.chars().last() {
        Some('s') => (&s[..s.len() - 1], 1),
        Some('m') => (&s[..s.len() - 1], 60),
        Some('h') => (&s[..s.len() - 1], 3600),
        Some('d') => (&s[..s.len() - 1], 86400),
        _ => (s, 1),
    };
    let n: i64 = num
        .parse()
        .map_err(|_| TokenCliError::Usage(format!("invalid --ttl {s:?}")))?;
    Ok((n > 0).then_some(n * mult))
}

async fn config(kubeconfig: Option<&PathBuf>) -> Result<Config> {
    Ok(match kubeconfig {
        Some(p) => {
            let kc = Kubeconfig::read_from(p).map_err(|source| TokenCliError::Kubeconfig {
                path: p.clone(),
                source,
            })?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| TokenCliError::Config(e.to_string()))?
        }
        None => Config::infer()
            .await
            .map_err(|e| TokenCliError::Config(e.to_string()))?,
    })
}

/// Runs `bramble token`.
pub fn run(args: TokenArgs) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run_async(args))
}

async fn run_async(args: TokenArgs) -> Result<()> {
    let cfg = config(args.kubeconfig.as_ref()).await?;
    let server = cfg.cluster_url.to_string();
    let ca_der = cfg.root_cert.clone().and_then(|c| c.into_iter().next());
    let client = Client::try_from(cfg).map_err(|e| TokenCliError::Config(e.to_string()))?;
    let secrets: Api<Secret> = Api::namespaced(client, "kube-system");
    match args.command {
        TokenCommand::Create {
            token,
            ttl,
            usages,
            groups,
            description,
            print_join_command,
        } => {
            let token = match token {
                Some(t) => BootstrapToken::parse(&t).map_err(|_| {
                    TokenCliError::Usage("token must match [a-z0-9]{6}.[a-z0-9]{16}".into())
                })?,
                None => BootstrapToken::generate(),
            };
            let expiration = parse_ttl(&ttl)?.map(|secs| {
                (chrono::Utc::now() + chrono::Duration::seconds(secs))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            });
            let usages: Vec<&str> = usages
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .collect();
            for u in &usages {
                if !matches!(*u, "signing" | "authentication") {
                    return usage(format!("unknown usage {u:?} (signing, authentication)"));
                }
            }
            let groups: Vec<&str> = groups
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .collect();
            for g in &groups {
                if !g.starts_with("system:bootstrappers:") {
                    return usage(format!(
                        "group {g:?} must start with \"system:bootstrappers:\""
                    ));
                }
            }
            let secret: Secret = serde_json::from_value(token.to_secret(
                expiration.as_deref(),
                &usages,
                &groups,
                &description,
            ))?;
            secrets.create(&PostParams::default(), &secret).await?;
            println!("{token}");
            if print_join_command {
                let hash = match ca_der {
                    Some(der) => bramble_pki::ca_cert_hash(&pem("CERTIFICATE", &der))?,
                    None => return usage("the kubeconfig has no CA to hash".into()),
                };
                println!("server: {server}\nca-cert-hash: {hash}");
            }
        }
        TokenCommand::List => {
            let list = secrets
                .list(&ListParams::default().fields(&format!("type={SECRET_TYPE}")))
                .await?;
            println!(
                "{:<24} {:<8} {:<21} {:<24} {:<20} EXTRA GROUPS",
                "TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION"
            );
            let now = chrono::Utc::now().timestamp();
            for s in list.items {
                let v = serde_json::to_value(&s)?;
                if v["type"] != SECRET_TYPE {
                    continue;
                }
                let f = |k: &str| bootstrap_token::secret_field(&v, k).unwrap_or_default();
                let id = f("token-id");
                let expires = f("expiration");
                let ttl = chrono::DateTime::parse_from_rfc3339(&expires)
                    .map(|t| {
                        let left = t.timestamp() - now;
                        if left <= 0 {
                            "expired".to_string()
                        } else {
                            format!("{}h", (left + 3599) / 3600)
                        }
                    })
                    .unwrap_or_else(|_| "<forever>".into());
                let usages: Vec<&str> = ["authentication", "signing"]
                    .into_iter()
                    .filter(|u| f(&format!("usage-bootstrap-{u}")) == "true")
                    .collect();
                println!(
                    "{:<24} {:<8} {:<21} {:<24} {:<20} {}",
                    format!("{id}.<secret>"),
                    ttl,
                    if expires.is_empty() {
                        "<never>".into()
                    } else {
                        expires
                    },
                    usages.join(","),
                    f("description"),
                    f("auth-extra-groups")
                );
            }
        }
        TokenCommand::Delete { tokens } => {
            for t in tokens {
                let id = t.split('.').next().unwrap_or("").to_string();
                if id.len() != 6 {
                    return usage(format!("{t:?} is neither a token nor a token id"));
                }
                let name = format!("{}{id}", bootstrap_token::SECRET_PREFIX);
                secrets.delete(&name, &DeleteParams::default()).await?;
                println!("bootstrap token {id:?} deleted");
            }
        }
    }
    Ok(())
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("24h").unwrap(), Some(86400));
        assert_eq!(parse_ttl("0").unwrap(), None);
        assert_eq!(parse_ttl("90s").unwrap(), Some(90));
        assert!(parse_ttl("x").is_err());
    }
}
