//! Strings shared between cached objects.
//!
//! Many cached pods hold equal short strings: the type, status and reason of a condition
//! (`PodScheduled`, `False`, `Unschedulable`), and the message the scheduler writes on every
//! pod it cannot place (`0/100 nodes are available: ...`). As `String`s each was an
//! allocation of its own (at least 32 bytes with glibc's malloc, a message about 100): about
//! 300 bytes per unschedulable pod. A [`Text`] is an `Arc<str>`, and a string equal to one a
//! cached object already holds is that object's `Arc`. Readers see a `&str` (`Deref`,
//! comparisons with `&str` and `String`), and it reads and writes as the same JSON string.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A shared, immutable string (see the module docs).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(Arc<str>);

/// Most strings the table remembers. When it is full, the strings no cached object holds any
/// more are forgotten; a string that still finds it full of live strings is not shared.
pub const TABLE_SIZE: usize = 1024;

/// The strings handed out (each also held by the table).
static TABLE: Mutex<Option<HashSet<Arc<str>>>> = Mutex::new(None);

impl Text {
    /// `s` as a [`Text`]: the one already handed out for an equal string if the table has
    /// it, else a new one (remembered if the table has room).
    pub fn new(s: &str) -> Text {
        let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        let table = table.get_or_insert_with(HashSet::new);
        if let Some(shared) = table.get(s) {
            return Text(shared.clone());
        }
        let text: Arc<str> = Arc::from(s);
        if table.len() >= TABLE_SIZE {
            table.retain(|t| Arc::strong_count(t) > 1);
        }
        if table.len() < TABLE_SIZE {
            table.insert(text.clone());
        }
        Text(text)
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` and `other` are the same allocation (not only equal strings).
    pub fn shares(&self, other: &Text) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::new(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::new(&s)
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Text, E> {
                Ok(Text::new(s))
            }
        }
        d.deserialize_str(Visit)
    }
}
