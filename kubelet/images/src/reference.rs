//! Image references normalised the way upstream does it (docker/distribution's
//! `ParseNormalizedNamed` plus the kubelet's `applyDefaultImageTag`): bare names live on
//! `docker.io`, single-component Docker Hub names get `library/`, a reference with neither tag nor
//! digest gets `:latest`, and digests are `sha256:<64 hex>`.

use std::fmt;

/// The registry bare names resolve to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy Docker Hub host, folded into [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag applied when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a string is not a valid image reference. Messages follow docker/distribution's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    /// Empty string.
    #[error("repository name must have at least one component")]
    Empty,
    /// A path component or the domain has characters the grammar does not allow.
    #[error("invalid reference format")]
    InvalidFormat,
    /// Upper-case letters in the repository path.
    #[error("invalid reference format: repository name (`{0}`) must be lowercase")]
    NotLowercase(String),
    /// The name is longer than 255 characters.
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    /// A bare 64-hex-digit name, which would be ambiguous with an image ID.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    /// The tag does not match `[\w][\w.-]{0,127}`.
    #[error("invalid tag format")]
    InvalidTag,
    /// The digest is not `algorithm:hex` with the right length for the algorithm.
    #[error("invalid digest format: {0}")]
    InvalidDigest(String),
}

/// A normalised image reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses and normalises `s` as upstream's `ParseNormalizedNamed`, without adding a default
    /// tag (see [`ImageRef::parse_with_default_tag`] for what the kubelet uses).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if is_hex64(s) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(validate_digest(d)?)),
            None => (s, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let (n, t) = name_tag.split_at(last_slash + i);
                (n, Some(validate_tag(&t[1..])?))
            }
            None => (name_tag, None),
        };
        let (domain, path) = split_domain(name)?;
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::NotLowercase(path));
        }
        if path.is_empty() || !path.split('/').all(valid_path_component) {
            return Err(ReferenceError::InvalidFormat);
        }
        Ok(ImageRef {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Parses `s` and applies `:latest` when it has neither tag nor digest, as the kubelet does
    /// before asking the runtime for an image.
    pub fn parse_with_default_tag(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Registry host (with port), e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path inside the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Digest (`sha256:<hex>`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `domain/path`, the repository name without tag or digest.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The same repository pinned to `digest` (`repo@sha256:...`), as the kubelet reports in
    /// `status.containerStatuses[].imageID`.
    pub fn with_digest(&self, digest: &str) -> ImageRef {
        ImageRef {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        }
    }

    /// The short form `docker` prints: `busybox:latest` for `docker.io/library/busybox:latest`.
    pub fn familiar(&self) -> String {
        let mut name = if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_REPO_PREFIX)
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.repository()
        };
        if let Some(t) = &self.tag {
            name.push(':');
            name.push_str(t);
        }
        if let Some(d) = &self.digest {
            name.push('@');
            name.push_str(d);
        }
        name
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Splits the registry host off `name` the way `splitDockerDomain` does: the first component is
/// a domain if it has a `.` or `:`, is `localhost`, or has upper-case letters.
fn split_domain(name: &str) -> Result<(String, String), ReferenceError> {
    let (domain, mut path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if !valid_domain(&domain) {
        return Err(ReferenceError::InvalidFormat);
    }
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN.to_string()
    } else {
        domain
    };
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        path = format!("{OFFICIAL_REPO_PREFIX}{path}");
    }
    Ok((domain, path))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Host (DNS labels or bracketed IPv6) with an optional numeric port.
fn valid_domain(d: &str) -> bool {
    let (host, port): (Option<&str>, Option<&str>) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, tail)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return false;
        }
        if tail.is_empty() {
            (None, None)
        } else if let Some(p) = tail.strip_prefix(':') {
            (None, Some(p))
        } else {
            return false;
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    match host {
        None => true,
        Some(h) => {
            !h.is_empty()
                && h.split('.').all(|label| {
                    let b = label.as_bytes();
                    !b.is_empty()
                        && b[0].is_ascii_alphanumeric()
                        && b[b.len() - 1].is_ascii_alphanumeric()
                        && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
                })
        }
    }
}

/// `[\w][\w.-]{0,127}`
fn validate_tag(t: &str) -> Result<String, ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    if b.is_empty()
        || b.len() > 128
        || !word(b[0])
        || !b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
    {
        return Err(ReferenceError::InvalidTag);
    }
    Ok(t.to_string())
}

/// `algorithm:hex`; sha256 digests must carry 64 lower-case hex digits.
pub(crate) fn validate_digest(d: &str) -> Result<String, ReferenceError> {
    let bad = || ReferenceError::InvalidDigest(d.to_string());
    let (alg, hex) = d.split_once(':').ok_or_else(bad)?;
    if alg.is_empty()
        || !alg
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
    {
        return Err(bad());
    }
    match alg {
        "sha256" if is_hex64(hex) => Ok(d.to_string()),
        "sha256" => Err(bad()),
        "sha384" if hex.len() == 96 && is_lower_hex(hex) => Ok(d.to_string()),
        "sha512" if hex.len() == 128 && is_lower_hex(hex) => Ok(d.to_string()),
        _ => Err(bad()),
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && is_lower_hex(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn norm(s: &str) -> String {
        ImageRef::parse_with_default_tag(s).unwrap().to_string()
    }

    #[test]
    fn bare_names_go_to_docker_hub_library_with_latest() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("bitnami/nginx"), "docker.io/bitnami/nginx:latest");
        assert_eq!(norm("docker.io/nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            norm("index.docker.io/nginx"),
            "docker.io/library/nginx:latest"
        );
    }

    #[test]
    fn registries_with_ports_and_localhost() {
        let r = ImageRef::parse_with_default_tag("127.0.0.1:5000/test/app").unwrap();
        assert_eq!(r.domain(), "127.0.0.1:5000");
        assert_eq!(r.path(), "test/app");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(norm("localhost/app:v1"), "localhost/app:v1");
        assert_eq!(norm("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(norm("ghcr.io/o/r/x:1.0"), "ghcr.io/o/r/x:1.0");
        assert_eq!(norm("[::1]:5000/app"), "[::1]:5000/app:latest");
        // A first component without '.'/':' is a Docker Hub namespace, not a host.
        assert_eq!(norm("myhost/app"), "docker.io/myhost/app:latest");
    }

    #[test]
    fn digests_are_kept_and_suppress_the_default_tag() {
        let r = ImageRef::parse_with_default_tag(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        let r = ImageRef::parse_with_default_tag(&format!("busybox:1.36@{D}")).unwrap();
        assert_eq!(r.tag(), Some("1.36"));
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.with_digest(D).familiar(), format!("busybox@{D}"));
    }

    #[test]
    fn familiar_form_matches_docker() {
        assert_eq!(
            ImageRef::parse_with_default_tag("busybox")
                .unwrap()
                .familiar(),
            "busybox:latest"
        );
        assert_eq!(
            ImageRef::parse("quay.io/a/b:1").unwrap().familiar(),
            "quay.io/a/b:1"
        );
    }

    #[test]
    fn invalid_references_are_refused() {
        assert_eq!(ImageRef::parse(""), Err(ReferenceError::Empty));
        assert!(matches!(
            ImageRef::parse("Busybox"),
            Err(ReferenceError::NotLowercase(_))
        ));
        assert_eq!(ImageRef::parse("busybox:"), Err(ReferenceError::InvalidTag));
        assert_eq!(
            ImageRef::parse("busybox:-x"),
            Err(ReferenceError::InvalidTag)
        );
        assert!(matches!(
            ImageRef::parse("busybox@sha256:abc"),
            Err(ReferenceError::InvalidDigest(_))
        ));
        assert!(matches!(
            ImageRef::parse(&"a".repeat(64)),
            Err(ReferenceError::HexName(_))
        ));
        assert_eq!(ImageRef::parse("a//b"), Err(ReferenceError::InvalidFormat));
        assert_eq!(
            ImageRef::parse("a/b_-c"),
            Err(ReferenceError::InvalidFormat)
        );
        assert_eq!(ImageRef::parse("-a"), Err(ReferenceError::InvalidFormat));
        assert_eq!(
            ImageRef::parse("host:port/a"),
            Err(ReferenceError::InvalidFormat)
        );
        assert_eq!(
            ImageRef::parse(&format!("{}/x", "a".repeat(300))),
            Err(ReferenceError::NameTooLong)
        );
        // Upper-case first component is a domain (upstream rule), then fine.
        assert_eq!(norm("Example/app"), "Example/app:latest");
    }

    #[test]
    fn separators_follow_the_grammar() {
        assert!(ImageRef::parse("a/b.c_d__e---f").is_ok());
        assert!(ImageRef::parse("a/b___c").is_err());
        assert!(ImageRef::parse("a/b.").is_err());
    }
}
