//! Template hashes: FNV-32a over a canonical serialization plus the collision count, encoded
//! with upstream's `rand.SafeEncodeString` alphabet (no vowels, no look-alikes), as
//! `pod-template-hash` and ControllerRevision names use.

use serde::Serialize;

const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-32a of `bytes`.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// upstream `rand.SafeEncodeString`: every character mapped into the safe alphabet.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// The hash of `value` (serialized as JSON with sorted map keys) and `collision_count`.
pub fn compute_hash<T: Serialize>(value: &T, collision_count: Option<i32>) -> String {
    let json = serde_json::to_value(value)
        .map(|v| canonical(&v))
        .unwrap_or_default();
    let mut bytes = json.into_bytes();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(&c.to_le_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

fn canonical(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{:?}:{}", k, canonical(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(a) => {
            format!(
                "[{}]",
                a.iter().map(canonical).collect::<Vec<_>>().join(",")
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_safe_and_changes_with_collisions() {
        let a = serde_json::json!({"b": 1, "a": [1, 2]});
        let b = serde_json::json!({"a": [1, 2], "b": 1});
        assert_eq!(compute_hash(&a, None), compute_hash(&b, None));
        assert_ne!(compute_hash(&a, None), compute_hash(&a, Some(1)));
        let h = compute_hash(&a, None);
        assert!(h.bytes().all(|c| ALPHANUMS.contains(&c)), "{h}");
        assert_eq!(fnv32a(b"a"), 0xe40c292c);
    }
}
