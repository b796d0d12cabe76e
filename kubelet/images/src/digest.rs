//! sha256 content digests: parsing `sha256:<hex>` and incremental verification.

use sha2::{Digest as _, Sha256};

/// A digest that is not a usable `sha256:<64 hex>` or does not match the content.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    /// Not `sha256:` followed by 64 lower-case hex digits.
    #[error("unsupported or malformed digest {0:?} (only sha256 is supported)")]
    Malformed(String),
    /// Content hashed to something else.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    Mismatch {
        /// The digest the descriptor promised.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// Content length differs from the descriptor's size.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob's digest.
        digest: String,
        /// The size the descriptor promised.
        expected: u64,
        /// The size that arrived.
        actual: u64,
    },
}

/// The hex part of a `sha256:<hex>` digest, validated.
pub fn sha256_hex(digest: &str) -> Result<&str, DigestError> {
    match digest.strip_prefix("sha256:") {
        Some(h)
            if h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(h)
        }
        _ => Err(DigestError::Malformed(digest.to_string())),
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// Checks `data` against `expected`.
pub fn verify(data: &[u8], expected: &str) -> Result<(), DigestError> {
    sha256_hex(expected)?;
    let actual = sha256_digest(data);
    if actual != expected {
        return Err(DigestError::Mismatch {
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Hashes content as it streams past and checks it at the end.
#[derive(Default)]
pub struct Verifier {
    hasher: Sha256,
    len: u64,
}

impl Verifier {
    /// Feeds a chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `sha256:<hex>` of everything fed.
    pub fn digest(self) -> String {
        format!("sha256:{:x}", self.hasher.finalize())
    }

    /// Compares with the expected digest and, when given, size.
    pub fn finish(self, expected: &str, size: Option<u64>) -> Result<(), DigestError> {
        if let Some(s) = size {
            if s != self.len {
                return Err(DigestError::SizeMismatch {
                    digest: expected.to_string(),
                    expected: s,
                    actual: self.len,
                });
            }
        }
        let actual = format!("sha256:{:x}", self.hasher.finalize());
        if actual != expected {
            return Err(DigestError::Mismatch {
                expected: expected.to_string(),
                actual,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digests_and_verification() {
        assert_eq!(sha256_digest(b""), EMPTY);
        assert!(verify(b"", EMPTY).is_ok());
        assert!(matches!(
            verify(b"x", EMPTY),
            Err(DigestError::Mismatch { .. })
        ));
        assert!(sha256_hex("sha512:00").is_err());
        assert!(sha256_hex(&EMPTY.to_uppercase()).is_err());
        let mut v = Verifier::default();
        v.update(b"ab");
        v.update(b"c");
        assert_eq!(v.len(), 3);
        let abc = sha256_digest(b"abc");
        assert!(matches!(
            Verifier::default().finish(&abc, Some(3)),
            Err(DigestError::SizeMismatch { .. })
        ));
        let mut v = Verifier::default();
        v.update(b"abc");
        assert!(v.finish(&abc, Some(3)).is_ok());
    }
}
