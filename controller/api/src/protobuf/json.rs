//! A message's bytes to its upstream JSON form, driven by the schema table.

use base64::Engine;
use chrono::DateTime;
use serde_json::{Map, Number, Value};

use super::schema::{
    message, Field, Kind, Message, ALWAYS, INLINE, MAP, NULLABLE, OMIT_EMPTY, REPEATED,
};
use super::wire::{self, Reader, WireType};
use super::DecodeError;

/// Nesting deeper than this is refused (JSONSchemaProps is recursive).
const MAX_DEPTH: usize = 100;

/// `time.Time{}` as Unix seconds: `metav1.Time`'s zero value, written as `null`.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// Decodes `buf` as `msg` into `out` (an existing object: inline fields and repeated
/// occurrences of a message field merge into it, as protobuf merges).
pub fn decode_message(
    buf: &[u8],
    msg: &'static Message,
    out: &mut Map<String, Value>,
    depth: usize,
) -> Result<(), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep(MAX_DEPTH));
    }
    // Values seen per field, in field order; the JSON is assembled after the whole message
    // is read, because presence rules need to know what was absent.
    let mut slots: Vec<Option<Value>> = vec![None; msg.fields().len()];
    let mut reader = Reader::new(buf);
    while !reader.is_empty() {
        let (tag, wire_type, value) = reader.field()?;
        let Some((i, field)) = msg.field(tag) else {
            continue; // unknown fields are skipped, as upstream's decoder does
        };
        let at = |e: DecodeError| e.at(msg.name(), field.name());
        if field.has(REPEATED) {
            let items = slots[i].get_or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(items) = items else {
                unreachable!("repeated slots hold arrays")
            };
            if let (wire::Value::Bytes(packed), true) = (value, is_packable(field.kind)) {
                let mut r = Reader::new(packed);
                while !r.is_empty() {
                    let v = r.varint().map_err(at)?;
                    items.push(scalar(field.kind, wire::Value::Int(v)).map_err(at)?);
                }
            } else {
                check_wire(field, wire_type).map_err(at)?;
                items.push(single(field, value, depth).map_err(at)?);
            }
        } else if field.has(MAP) {
            check_wire(field, wire_type).map_err(at)?;
            let entries = slots[i].get_or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(entries) = entries else {
                unreachable!("map slots hold objects")
            };
            let (k, v) = map_entry(field, bytes(value), depth).map_err(at)?;
            entries.insert(k, v);
        } else {
            check_wire(field, wire_type).map_err(at)?;
            match (field.kind, &mut slots[i]) {
                (Kind::Message, Some(Value::Object(existing))) => {
                    decode_message(bytes(value), message(field.msg), existing, depth + 1)
                        .map_err(at)?
                }
                (_, slot) => *slot = Some(single(field, value, depth).map_err(at)?),
            }
        }
    }
    for (field, slot) in msg.fields().iter().zip(slots) {
        if field.has(INLINE) {
            if let Some(Value::Object(inner)) = slot {
                out.extend(inner);
            }
            continue;
        }
        if let Some(v) = present(field, slot) {
            out.insert(field.name().to_string(), v);
        }
    }
    Ok(())
}

/// The JSON value a field gets, if any, by upstream's JSON presence rules.
fn present(field: &Field, slot: Option<Value>) -> Option<Value> {
    let list = field.has(REPEATED) || field.has(MAP);
    match slot {
        Some(v) if field.has(OMIT_EMPTY) && is_empty(&v) => None,
        Some(v) if list && is_empty(&v) && field.has(ALWAYS) => Some(Value::Null),
        Some(v) => Some(v),
        None if field.has(NULLABLE) => Some(Value::Null),
        None if field.has(ALWAYS) => Some(if list { Value::Null } else { zero(field.kind) }),
        None => None,
    }
}

/// Go's "empty" for `omitempty`: zero numbers, false, "", empty lists and maps.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The JSON of a Go zero value of a scalar kind.
fn zero(kind: Kind) -> Value {
    match kind {
        Kind::String => Value::String(String::new()),
        Kind::Bool => Value::Bool(false),
        Kind::Int32 | Kind::Int64 | Kind::Double => Value::Number(0.into()),
        _ => Value::Null,
    }
}

fn is_packable(kind: Kind) -> bool {
    matches!(kind, Kind::Bool | Kind::Int32 | Kind::Int64)
}

fn expected_wire(kind: Kind) -> WireType {
    match kind {
        Kind::Bool | Kind::Int32 | Kind::Int64 => WireType::Varint,
        Kind::Double => WireType::Fixed64,
        _ => WireType::Len,
    }
}

fn check_wire(field: &Field, got: WireType) -> Result<(), DecodeError> {
    let want = if field.has(MAP) {
        WireType::Len
    } else {
        expected_wire(field.kind)
    };
    if got == want {
        Ok(())
    } else {
        Err(DecodeError::WrongWireType {
            got: got.name(),
            want: want.name(),
        })
    }
}

fn bytes(value: wire::Value<'_>) -> &[u8] {
    match value {
        wire::Value::Bytes(b) => b,
        wire::Value::Int(_) => &[],
    }
}

/// One (non-repeated or one element of a repeated) value of `field`.
fn single(field: &Field, value: wire::Value<'_>, depth: usize) -> Result<Value, DecodeError> {
    match field.kind {
        Kind::String | Kind::Bool | Kind::Int32 | Kind::Int64 | Kind::Double | Kind::Bytes => {
            scalar(field.kind, value)
        }
        _ => special(field, bytes(value), depth),
    }
}

fn scalar(kind: Kind, value: wire::Value<'_>) -> Result<Value, DecodeError> {
    Ok(match (kind, value) {
        (Kind::Bool, wire::Value::Int(v)) => Value::Bool(v != 0),
        // Go truncates varints to the field's width.
        (Kind::Int32, wire::Value::Int(v)) => Value::Number((v as i32).into()),
        (Kind::Int64, wire::Value::Int(v)) => Value::Number((v as i64).into()),
        (Kind::Double, wire::Value::Int(v)) => Number::from_f64(f64::from_bits(v))
            .map(Value::Number)
            .ok_or(DecodeError::NotFinite)?,
        (Kind::String, wire::Value::Bytes(b)) => Value::String(String::from_utf8_lossy(b).into()),
        (Kind::Bytes, wire::Value::Bytes(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        _ => unreachable!("wire types are checked before scalar decoding"),
    })
}

/// A message-typed value: table messages and the types with their own JSON form.
fn special(field: &Field, buf: &[u8], depth: usize) -> Result<Value, DecodeError> {
    if field.kind == Kind::Message {
        return schema(buf, field, depth);
    }
    let fields = Fields::read(buf)?;
    Ok(match field.kind {
        // Upstream writes the zero time as an empty message; `Time` drops nanos when
        // decoding (its JSON has whole seconds).
        Kind::Time | Kind::MicroTime if buf.is_empty() => Value::Null,
        Kind::Time => time(fields.int(1).unwrap_or(0) as i64, 0, false)?,
        Kind::MicroTime => {
            let nanos = fields.int(2).unwrap_or(0) as i32;
            time(fields.int(1).unwrap_or(0) as i64, nanos, true)?
        }
        Kind::Quantity => match fields.bytes(1) {
            Some(s) if !s.is_empty() => Value::String(String::from_utf8_lossy(s).into()),
            _ => Value::String("0".into()),
        },
        Kind::IntOrString => {
            if fields.int(1) == Some(1) {
                Value::String(String::from_utf8_lossy(fields.bytes(3).unwrap_or(&[])).into())
            } else {
                Value::Number((fields.int(2).unwrap_or(0) as i32).into())
            }
        }
        Kind::RawJson => match fields.bytes(1) {
            Some(raw) if !raw.is_empty() => {
                serde_json::from_slice(raw).map_err(|e| DecodeError::RawJson(e.to_string()))?
            }
            _ => Value::Null,
        },
        Kind::StringList => Value::Array(fields.strings(1)),
        Kind::SchemaOrArray => {
            let array = fields.all_bytes(2);
            if !array.is_empty() {
                let items = array
                    .into_iter()
                    .map(|b| schema(b, field, depth))
                    .collect::<Result<_, _>>()?;
                Value::Array(items)
            } else if let Some(b) = fields.bytes(1) {
                schema(b, field, depth)?
            } else {
                Value::Null
            }
        }
        Kind::SchemaOrBool => match fields.bytes(2) {
            Some(b) => schema(b, field, depth)?,
            None => Value::Bool(fields.int(1).unwrap_or(0) != 0),
        },
        Kind::SchemaOrStringArray => {
            let property = fields.strings(2);
            if !property.is_empty() {
                Value::Array(property)
            } else if let Some(b) = fields.bytes(1) {
                schema(b, field, depth)?
            } else {
                Value::Null
            }
        }
        Kind::Message
        | Kind::String
        | Kind::Bool
        | Kind::Int32
        | Kind::Int64
        | Kind::Double
        | Kind::Bytes => unreachable!("handled above or not messages"),
    })
}

/// A table message (`field.msg`) as a JSON object.
fn schema(buf: &[u8], field: &Field, depth: usize) -> Result<Value, DecodeError> {
    let mut out = Map::new();
    decode_message(buf, message(field.msg), &mut out, depth + 1)?;
    Ok(Value::Object(out))
}

/// `metav1.Time` (RFC 3339, seconds) or `MicroTime` (RFC 3339, microseconds) in UTC;
/// Go's zero time is `null`.
fn time(seconds: i64, nanos: i32, micro: bool) -> Result<Value, DecodeError> {
    if seconds == GO_ZERO_TIME_SECONDS && nanos == 0 {
        return Ok(Value::Null);
    }
    let nanos = u32::try_from(nanos).map_err(|_| DecodeError::BadTime(seconds, nanos))?;
    let t = DateTime::from_timestamp(seconds, nanos)
        .filter(|_| nanos < 1_000_000_000)
        .ok_or(DecodeError::BadTime(seconds, nanos as i32))?;
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(Value::String(t.format(format).to_string()))
}

/// A map entry: key 1 (string), value 2 of the field's kind.
fn map_entry(field: &Field, buf: &[u8], depth: usize) -> Result<(String, Value), DecodeError> {
    let mut key = String::new();
    let mut value = None;
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        match r.field()? {
            (1, WireType::Len, wire::Value::Bytes(b)) => key = String::from_utf8_lossy(b).into(),
            (2, w, v) => {
                let want = expected_wire(field.kind);
                if w != want {
                    return Err(DecodeError::WrongWireType {
                        got: w.name(),
                        want: want.name(),
                    });
                }
                value = Some(single(field, v, depth)?);
            }
            _ => {}
        }
    }
    let value = match value {
        Some(v) => v,
        None => match field.kind {
            Kind::String | Kind::Bool | Kind::Int32 | Kind::Int64 | Kind::Double => {
                zero(field.kind)
            }
            Kind::Bytes => Value::String(String::new()),
            _ => special(field, &[], depth)?,
        },
    };
    Ok((key, value))
}

/// The fields of a small fixed-shape message (Time, Quantity, ...), last occurrence wins.
struct Fields<'a>(Vec<(u32, wire::Value<'a>)>);

impl<'a> Fields<'a> {
    fn read(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let mut v = Vec::new();
        while !r.is_empty() {
            let (n, _, value) = r.field()?;
            v.push((n, value));
        }
        Ok(Fields(v))
    }

    fn int(&self, n: u32) -> Option<u64> {
        self.0.iter().rev().find_map(|(k, v)| match v {
            wire::Value::Int(i) if *k == n => Some(*i),
            _ => None,
        })
    }

    fn bytes(&self, n: u32) -> Option<&'a [u8]> {
        self.all_bytes(n).pop()
    }

    fn all_bytes(&self, n: u32) -> Vec<&'a [u8]> {
        self.0
            .iter()
            .filter_map(|(k, v)| match v {
                wire::Value::Bytes(b) if *k == n => Some(*b),
                _ => None,
            })
            .collect()
    }

    fn strings(&self, n: u32) -> Vec<Value> {
        self.all_bytes(n)
            .into_iter()
            .map(|b| Value::String(String::from_utf8_lossy(b).into()))
            .collect()
    }
}
