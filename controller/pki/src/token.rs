//! Bearer token authentication: Bramble's admin token and upstream's static token file.

use std::path::Path;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::files;
use crate::identity::{UserInfo, ADMIN_USER, SYSTEM_MASTERS};
use crate::PkiError;

/// Length in bytes of generated tokens before hex encoding (256 bits of entropy).
const TOKEN_BYTES: usize = 32;

/// A new random bearer token: 64 lower-case hex characters from the OS-seeded CSPRNG.
pub fn generate_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The user Bramble's admin token stands for: `bramble-admin` in `system:masters`.
pub fn admin_user() -> UserInfo {
    UserInfo {
        name: ADMIN_USER.to_string(),
        uid: ADMIN_USER.to_string(),
        groups: vec![SYSTEM_MASTERS.to_string()],
    }
}

#[derive(Clone)]
struct Entry {
    digest: [u8; 32],
    user: UserInfo,
}

/// Maps bearer tokens to users. Tokens are kept only as SHA-256 digests and every lookup
/// compares the presented token's digest with every entry in constant time, so neither the
/// time taken nor memory contents reveal how much of a token was right.
#[derive(Default, Clone)]
pub struct TokenAuthenticator {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for TokenAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthenticator")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

impl TokenAuthenticator {
    /// An authenticator that knows no token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `token` for `user`. A token added again replaces the earlier user (as a repeated
    /// token in upstream's token file does). Empty tokens are ignored.
    pub fn add(&mut self, token: &str, user: UserInfo) {
        if token.is_empty() {
            return;
        }
        let digest = digest(token);
        self.entries.retain(|e| e.digest != digest);
        self.entries.push(Entry { digest, user });
    }

    /// Loads the admin token file (one token, surrounding whitespace ignored) as the admin
    /// user ([`admin_user`]).
    pub fn from_admin_token_file(path: &Path) -> Result<Self, PkiError> {
        let text = std::fs::read_to_string(path).map_err(|e| PkiError::io("read", path, e))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(PkiError::parse(path, "empty token file"));
        }
        let mut auth = Self::new();
        auth.add(token, admin_user());
        Ok(auth)
    }

    /// Adds the tokens of an upstream static token file (`--token-auth-file`): CSV lines
    /// `token,user,uid[,"group1,group2"]`. Lines with an empty token are skipped, as upstream
    /// does; blank lines are ignored.
    pub fn load_static_token_file(&mut self, path: &Path) -> Result<(), PkiError> {
        let text = std::fs::read_to_string(path).map_err(|e| PkiError::io("read", path, e))?;
        self.add_static_tokens(&text, path)
    }

    /// Same as [`Self::load_static_token_file`] on text already read; `path` is for errors.
    pub fn add_static_tokens(&mut self, text: &str, path: &Path) -> Result<(), PkiError> {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let err = |reason: String| PkiError::TokenFile {
                path: path.to_path_buf(),
                line: i + 1,
                reason,
            };
            let fields = split_csv_line(line).map_err(|r| err(r.to_string()))?;
            if fields.len() < 3 {
                return Err(err(format!(
                    "token file must have at least 3 columns (token, user name, user uid), found {}",
                    fields.len()
                )));
            }
            if fields[0].is_empty() {
                tracing::warn!(path = %path.display(), line = i + 1, "empty token in token file");
                continue;
            }
            let groups = match fields.get(3) {
                Some(g) => g.split(',').map(str::to_string).collect(),
                None => Vec::new(),
            };
            let user = UserInfo {
                name: fields[1].clone(),
                uid: fields[2].clone(),
                groups,
            };
            self.add(&fields[0], user);
        }
        Ok(())
    }

    /// The user `token` belongs to, or `None`. Takes the same time whichever entry (if any)
    /// matches and however much of the token is right.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        if token.is_empty() {
            return None;
        }
        let presented = digest(token);
        let mut found = None;
        for (i, entry) in self.entries.iter().enumerate() {
            let hit = constant_time_eq(&entry.digest, &presented);
            found = if hit { Some(i) } else { found };
        }
        found.map(|i| self.entries[i].user.clone())
    }

    /// How many tokens are known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Reads the token in `path`, or creates it (mode 0600) with a new random token.
pub(crate) fn load_or_create_token(path: &Path) -> Result<String, PkiError> {
    if let Some(text) = files::read_optional(path)? {
        let token = text.trim();
        if !token.is_empty() {
            return Ok(token.to_string());
        }
    }
    let token = generate_token();
    files::write_atomic(path, format!("{token}\n").as_bytes(), files::PRIVATE_MODE)?;
    Ok(token)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two digests without a data-dependent early exit.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

/// Splits one CSV record (RFC 4180 quoting; leading spaces of fields trimmed like Go's
/// `csv.Reader{TrimLeadingSpace: true}`).
fn split_csv_line(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    loop {
        while chars.peek() == Some(&' ') || chars.peek() == Some(&'\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field"),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("extraneous character after quoted field"),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some('"') => return Err("bare \" in non-quoted field"),
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields() {
        assert_eq!(
            split_csv_line(r#"tok,jane,42,"a,b, c""#).unwrap(),
            ["tok", "jane", "42", "a,b, c"]
        );
        assert_eq!(
            split_csv_line(r#"a, "x""y",,"#).unwrap(),
            ["a", "x\"y", "", ""]
        );
        assert!(split_csv_line(r#"a,"open"#).is_err());
        assert!(split_csv_line(r#"a,b"c"#).is_err());
    }

    #[test]
    fn static_tokens_like_upstream() {
        let mut auth = TokenAuthenticator::new();
        let text = "t1,jane,uid-1,\"dev,ops\"\n\n,skipped,0\nt2,bob,uid-2\nt1,again,uid-3\n";
        auth.add_static_tokens(text, Path::new("tokens.csv"))
            .unwrap();
        assert_eq!(auth.len(), 2);
        let bob = auth.authenticate("t2").unwrap();
        assert_eq!((bob.name.as_str(), bob.uid.as_str()), ("bob", "uid-2"));
        assert!(bob.groups.is_empty());
        // A repeated token: the later line wins, as upstream's map assignment does.
        assert_eq!(auth.authenticate("t1").unwrap().name, "again");
        assert_eq!(auth.authenticate("t3"), None);
        assert_eq!(auth.authenticate(""), None);
        assert_eq!(auth.authenticate("t"), None);

        let err = TokenAuthenticator::new()
            .add_static_tokens("a,b\n", Path::new("x.csv"))
            .unwrap_err();
        assert!(err
            .to_string()
            .starts_with("x.csv:1: token file must have at least 3"));
    }

    #[test]
    fn groups_from_fourth_column() {
        let mut auth = TokenAuthenticator::new();
        auth.add_static_tokens("tok,jane,1,\"dev,ops\"", Path::new("f"))
            .unwrap();
        assert_eq!(auth.authenticate("tok").unwrap().groups, ["dev", "ops"]);
    }

    #[test]
    fn admin_token_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        let token = load_or_create_token(&path).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(load_or_create_token(&path).unwrap(), token);
        let auth = TokenAuthenticator::from_admin_token_file(&path).unwrap();
        assert_eq!(auth.authenticate(&token), Some(admin_user()));
        let mut wrong = token.clone();
        wrong.replace_range(63.., "x");
        assert_eq!(auth.authenticate(&wrong), None);
        assert_ne!(generate_token(), generate_token());
    }
}
