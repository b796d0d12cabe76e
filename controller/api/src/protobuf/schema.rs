//! The shape of the generated schema table (`schema_table.rs`) and look-ups into it.

use super::schema_table::{FIELDS, KINDS, MESSAGES, NAMES};

/// What a field holds and how its JSON form is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    String,
    Bool,
    Int32,
    Int64,
    Double,
    /// `bytes`: base64 in JSON.
    Bytes,
    /// A message of the table (`Field::msg`).
    Message,
    /// `metav1.Time`: seconds+nanos, RFC 3339 to the second; the zero time is `null`.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with 6 fraction digits; the zero time is `null`.
    MicroTime,
    /// `resource.Quantity`: a message holding the quantity's string.
    Quantity,
    /// `intstr.IntOrString`: `type` (0 int, 1 string), `intVal`, `strVal`.
    IntOrString,
    /// `runtime.RawExtension`, `metav1.FieldsV1`, apiextensions `JSON`: `raw` JSON bytes.
    RawJson,
    /// A Go `[]string` wrapped in a message (`ExtraValue`): `items` as a JSON array.
    StringList,
    /// apiextensions `JSONSchemaPropsOrArray` (`Field::msg` is `JSONSchemaProps`).
    SchemaOrArray,
    /// apiextensions `JSONSchemaPropsOrBool`.
    SchemaOrBool,
    /// apiextensions `JSONSchemaPropsOrStringArray`.
    SchemaOrStringArray,
}

/// `repeated`: a JSON array.
pub const REPEATED: u8 = 1;
/// `map<string, kind>`: a JSON object.
pub const MAP: u8 = 2;
/// A Go struct embedded with `json:",inline"`: its fields go into the parent object.
pub const INLINE: u8 = 4;
/// A Go value field (not a pointer) tagged `omitempty`: omitted when zero or empty.
pub const OMIT_EMPTY: u8 = 8;
/// A Go value field without `omitempty`: written even when zero (lists and maps as `null`).
pub const ALWAYS: u8 = 16;

/// A Go pointer without `omitempty`: `null` when not on the wire.
pub const NULLABLE: u8 = 32;

/// One field of a message. Fields with neither `OMIT_EMPTY` nor `ALWAYS` are Go pointers
/// or structs: written exactly when they are on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub tag: u16,
    name_off: u16,
    name_len: u8,
    pub kind: Kind,
    /// Index in `MESSAGES` of the message kinds refer to.
    pub msg: u16,
    pub flags: u8,
}

impl Field {
    /// The JSON name (empty for inline fields).
    pub fn name(&self) -> &'static str {
        name(self.name_off, self.name_len)
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// One message: its name and its run of `FIELDS`.
#[derive(Debug, Clone, Copy)]
pub struct Message {
    name_off: u16,
    name_len: u8,
    first: u16,
    count: u8,
}

impl Message {
    /// The message's name (`PodSpec`), for error messages.
    pub fn name(&self) -> &'static str {
        name(self.name_off, self.name_len)
    }

    /// The fields, sorted by number.
    pub fn fields(&self) -> &'static [Field] {
        let first = usize::from(self.first);
        &FIELDS[first..first + usize::from(self.count)]
    }

    /// The field with number `tag`, if the schema knows it.
    pub fn field(&self, tag: u32) -> Option<(usize, &'static Field)> {
        let fields = self.fields();
        fields
            .binary_search_by_key(&tag, |f| u32::from(f.tag))
            .ok()
            .map(|i| (i, &fields[i]))
    }
}

fn name(off: u16, len: u8) -> &'static str {
    let off = usize::from(off);
    &NAMES[off..off + usize::from(len)]
}

/// Table row constructor for a field (keeps the generated table short).
pub const fn f(tag: u16, name_off: u16, name_len: u8, kind: Kind, msg: u16, flags: u8) -> Field {
    Field {
        tag,
        name_off,
        name_len,
        kind,
        msg,
        flags,
    }
}

/// Table row constructor for a message.
pub const fn m(name_off: u16, name_len: u8, first: u16, count: u8) -> Message {
    Message {
        name_off,
        name_len,
        first,
        count,
    }
}

/// The message at `index` in the table.
pub fn message(index: u16) -> &'static Message {
    &MESSAGES[usize::from(index)]
}

/// The message of a top-level kind. `DeleteOptions` is registered in every group version
/// upstream, so it is found under any `apiVersion`.
pub fn message_for_kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    KINDS
        .iter()
        .find(|(v, k, _)| *k == kind && (*v == api_version || kind == "DeleteOptions"))
        .map(|(_, _, i)| message(*i))
}
