//! Encryption at rest of stored objects (upstream's `aesgcm` provider): AES-256-GCM with a
//! random 96-bit nonce per write and the storage key as additional data, so a ciphertext
//! cannot be moved to another key. Values are `k8s:enc:aesgcm:v1:<keyname>:<base64(nonce ||
//! ciphertext || tag)>`. Several keys may be configured: the first encrypts, all decrypt,
//! which is how keys are rotated (add a new first key, restart, rewrite, drop the old one).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::AuthError;

/// Prefix of every encrypted value.
pub const PREFIX: &str = "k8s:enc:aesgcm:v1:";

/// A named 256-bit key.
pub struct NamedKey {
    pub name: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The configured keys.
#[derive(Debug)]
pub struct Cipher {
    keys: Vec<NamedKey>,
}

impl Cipher {
    /// Parses a key file: one `name:base64(32 bytes)` per line (blank lines and `#` comments
    /// ignored); the first key encrypts.
    pub fn from_key_file(text: &str) -> Result<Cipher, AuthError> {
        let mut keys = Vec::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (name, b64) = line
                .split_once(':')
                .ok_or_else(|| AuthError::Key("key line must be name:base64".into()))?;
            let raw = STANDARD
                .decode(b64.trim())
                .map_err(|_| AuthError::Key(format!("key {name:?} is not base64")))?;
            let unbound = UnboundKey::new(&AES_256_GCM, &raw)
                .map_err(|_| AuthError::Key(format!("key {name:?} must be 32 bytes")))?;
            if name.is_empty() || name.contains(':') {
                return Err(AuthError::Key(format!("bad key name {name:?}")));
            }
            keys.push(NamedKey {
                name: name.to_string(),
                key: LessSafeKey::new(unbound),
            });
        }
        if keys.is_empty() {
            return Err(AuthError::Key("no key in key file".into()));
        }
        Ok(Cipher { keys })
    }

    /// A new key file text with one random key named `name`.
    pub fn generate_key_file(name: &str) -> Result<String, AuthError> {
        let mut raw = [0u8; 32];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| AuthError::Key("no randomness".into()))?;
        Ok(format!("{name}:{}\n", STANDARD.encode(raw)))
    }

    /// Encrypts `plaintext` stored under `aad` (the storage key).
    pub fn encrypt(&self, plaintext: &[u8], aad: &str) -> Result<String, AuthError> {
        let k = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| AuthError::Key("no randomness".into()))?;
        let mut buf = plaintext.to_vec();
        k.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .map_err(|_| AuthError::Key("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}:{}", k.name, STANDARD.encode(out)))
    }

    /// Decrypts a value [`Cipher::encrypt`] produced for the same `aad`.
    pub fn decrypt(&self, value: &str, aad: &str) -> Result<Vec<u8>, AuthError> {
        let bad = |m: &str| AuthError::Key(m.to_string());
        let rest = value
            .strip_prefix(PREFIX)
            .ok_or_else(|| bad("not an encrypted value"))?;
        let (name, b64) = rest.split_once(':').ok_or_else(|| bad("no key name"))?;
        let k = self
            .keys
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| bad(&format!("no key named {name:?}")))?;
        let raw = STANDARD.decode(b64).map_err(|_| bad("not base64"))?;
        if raw.len() < NONCE_LEN {
            return Err(bad("too short"));
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad("nonce"))?;
        let mut buf = sealed.to_vec();
        let plain = k
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| bad("decryption failed"))?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_rotation_and_binding_to_key() {
        let old = Cipher::generate_key_file("key1").unwrap();
        let c1 = Cipher::from_key_file(&old).unwrap();
        let v = c1.encrypt(b"hello", "core/secrets/default/a").unwrap();
        assert!(v.starts_with("k8s:enc:aesgcm:v1:key1:"));
        assert!(!v.contains("hello"));
        assert_eq!(c1.decrypt(&v, "core/secrets/default/a").unwrap(), b"hello");
        assert!(c1.decrypt(&v, "core/secrets/default/b").is_err());
        // a new first key encrypts; the old one still decrypts
        let both = format!("{}{old}", Cipher::generate_key_file("key2").unwrap());
        let c2 = Cipher::from_key_file(&both).unwrap();
        assert_eq!(c2.decrypt(&v, "core/secrets/default/a").unwrap(), b"hello");
        assert!(c2.encrypt(b"x", "k").unwrap().contains(":key2:"));
        assert!(Cipher::from_key_file("k:c2hvcnQ=").is_err());
    }
}
