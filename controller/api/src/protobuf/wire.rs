//! The protobuf wire format: varints, fixed 32/64-bit values and length-delimited payloads.

use super::DecodeError;

/// How a field's value is laid out on the wire (the low 3 bits of its key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

impl WireType {
    /// The name protobuf's documentation uses, for error messages.
    pub fn name(self) -> &'static str {
        match self {
            WireType::Varint => "varint",
            WireType::Fixed64 => "fixed64",
            WireType::Len => "bytes",
            WireType::Fixed32 => "fixed32",
        }
    }
}

/// One field read off the wire.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// A varint, or a fixed 32/64-bit value widened to 64 bits.
    Int(u64),
    /// A length-delimited payload.
    Bytes(&'a [u8]),
}

/// A cursor over one message's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Reads a base-128 varint (at most 10 bytes).
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or(DecodeError::UnexpectedEof)?;
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError::UnexpectedEof)?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// Reads the next field: its number, wire type and value. Groups (wire types 3 and 4,
    /// unused by Kubernetes) and field number 0 are errors.
    pub fn field(&mut self) -> Result<(u32, WireType, Value<'a>), DecodeError> {
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(DecodeError::BadFieldNumber(number));
        }
        let (wire, value) = match key & 7 {
            0 => (WireType::Varint, Value::Int(self.varint()?)),
            1 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (WireType::Fixed64, Value::Int(u64::from_le_bytes(a)))
            }
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| DecodeError::UnexpectedEof)?;
                (WireType::Len, Value::Bytes(self.take(len)?))
            }
            5 => {
                let b = self.take(4)?;
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                (
                    WireType::Fixed32,
                    Value::Int(u64::from(u32::from_le_bytes(a))),
                )
            }
            w => return Err(DecodeError::BadWireType(w as u8)),
        };
        Ok((number as u32, wire, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_numbers_and_limits() {
        assert_eq!(Reader::new(&[0x96, 0x01]).varint().unwrap(), 150);
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&max).varint().unwrap(), u64::MAX);
        let too_long = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(matches!(
            Reader::new(&too_long).varint(),
            Err(DecodeError::VarintOverflow)
        ));
        assert!(matches!(
            Reader::new(&[0x80]).varint(),
            Err(DecodeError::UnexpectedEof)
        ));
    }

    #[test]
    fn fields_of_each_wire_type() {
        // 1: varint 5, 2: "hi", 3: fixed64 1, 4: fixed32 2
        let buf = [
            0x08, 5, 0x12, 2, b'h', b'i', 0x19, 1, 0, 0, 0, 0, 0, 0, 0, 0x25, 2, 0, 0, 0,
        ];
        let mut r = Reader::new(&buf);
        assert!(matches!(
            r.field().unwrap(),
            (1, WireType::Varint, Value::Int(5))
        ));
        assert!(matches!(
            r.field().unwrap(),
            (2, WireType::Len, Value::Bytes(b"hi"))
        ));
        assert!(matches!(
            r.field().unwrap(),
            (3, WireType::Fixed64, Value::Int(1))
        ));
        assert!(matches!(
            r.field().unwrap(),
            (4, WireType::Fixed32, Value::Int(2))
        ));
        assert!(r.is_empty());
    }

    #[test]
    fn truncated_and_bad_keys_are_errors() {
        assert!(matches!(
            Reader::new(&[0x12, 5, b'a']).field(),
            Err(DecodeError::UnexpectedEof)
        ));
        assert!(matches!(
            Reader::new(&[0x0b]).field(),
            Err(DecodeError::BadWireType(3))
        ));
        assert!(matches!(
            Reader::new(&[0x00, 1]).field(),
            Err(DecodeError::BadFieldNumber(0))
        ));
    }
}
