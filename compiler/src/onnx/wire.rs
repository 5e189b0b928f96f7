//! A minimal reader of the protobuf wire format: varints, 32- and 64-bit fixed values and
//! length-delimited fields (strings, bytes, sub-messages and packed repeated scalars).
//!
//! Every length is checked against the bytes present before anything is sliced or allocated,
//! and every error carries the byte offset in the file where it happened. Groups (wire types 3
//! and 4, deprecated and unused by ONNX) are refused. Nesting is bounded by the schema the
//! callers decode (`proto.rs` never descends into a message it does not know), and
//! additionally by [`MAX_DEPTH`].

use std::fmt;

/// Deepest message nesting a reader accepts.
pub const MAX_DEPTH: usize = 16;

/// A malformed protobuf byte string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    /// Offset in the file where the problem starts.
    pub offset: usize,
    /// What is wrong.
    pub what: String,
}

impl std::error::Error for WireError {}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {}: {}", self.offset, self.what)
    }
}

/// One field's value as found on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (little-endian 64 bits).
    Fixed64(u64),
    /// Wire type 2: a sub-message, string, bytes or packed scalars, with its file offset.
    Bytes(&'a [u8], usize),
    /// Wire type 5 (little-endian 32 bits).
    Fixed32(u32),
}

/// Reads the fields of one message in order.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// File offset of `buf[0]`.
    base: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    /// A reader of a whole file (a top-level message).
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
            depth: 0,
        }
    }

    /// A reader of a nested message found at `offset` in the file.
    pub fn nested(&self, buf: &'a [u8], offset: usize) -> Result<Self, WireError> {
        if self.depth + 1 > MAX_DEPTH {
            return Err(WireError {
                offset,
                what: format!("messages nested more than {MAX_DEPTH} deep"),
            });
        }
        Ok(Reader {
            buf,
            pos: 0,
            base: offset,
            depth: self.depth + 1,
        })
    }

    /// The file offset of the next byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn error(&self, what: impl Into<String>) -> WireError {
        WireError {
            offset: self.offset(),
            what: what.into(),
        }
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.offset();
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(WireError {
                    offset: start,
                    what: "truncated varint (the file ends inside a number)".into(),
                });
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(WireError {
                    offset: start,
                    what: "varint longer than 64 bits".into(),
                });
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError {
            offset: start,
            what: "varint longer than 10 bytes".into(),
        })
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WireError> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(self.error(format!(
                "truncated {what}: {n} bytes declared, {left} present"
            )));
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    /// The next field number and value, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, WireError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let at = self.offset();
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(WireError {
                offset: at,
                what: format!("field number {field} is not valid"),
            });
        }
        let field = field as u32;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                let b = self.take(8, "fixed64 value")?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Fixed64(u64::from_le_bytes(a))
            }
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                let offset = self.offset();
                Value::Bytes(self.take(len, "length-delimited field")?, offset)
            }
            5 => {
                let b = self.take(4, "fixed32 value")?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            t => {
                return Err(WireError {
                    offset: at,
                    what: format!("wire type {t} of field {field} is not supported"),
                })
            }
        };
        Ok(Some((field, value)))
    }

    /// A reader of the sub-message in `value`.
    pub fn message(&self, value: Value<'a>, name: &str) -> Result<Reader<'a>, WireError> {
        match value {
            Value::Bytes(b, offset) => self.nested(b, offset),
            _ => Err(self.error(format!("`{name}` is not a message"))),
        }
    }
}

/// A UTF-8 string field.
pub fn string(value: Value<'_>, name: &str) -> Result<String, WireError> {
    match value {
        Value::Bytes(b, offset) => {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| WireError {
                    offset,
                    what: format!("`{name}` is not UTF-8 text"),
                })
        }
        _ => Err(wrong(value, name, "a string")),
    }
}

/// Raw bytes of a length-delimited field.
pub fn bytes<'a>(value: Value<'a>, name: &str) -> Result<&'a [u8], WireError> {
    match value {
        Value::Bytes(b, _) => Ok(b),
        _ => Err(wrong(value, name, "bytes")),
    }
}

/// A varint field as a signed 64-bit integer (protobuf `int64`/`int32`/enum).
pub fn int(value: Value<'_>, name: &str) -> Result<i64, WireError> {
    match value {
        Value::Varint(v) => Ok(v as i64),
        _ => Err(wrong(value, name, "an integer")),
    }
}

/// A `float` field.
pub fn float(value: Value<'_>, name: &str) -> Result<f32, WireError> {
    match value {
        Value::Fixed32(v) => Ok(f32::from_bits(v)),
        _ => Err(wrong(value, name, "a float")),
    }
}

/// Appends a repeated integer field's values, packed or not.
pub fn push_ints(value: Value<'_>, name: &str, out: &mut Vec<i64>) -> Result<(), WireError> {
    match value {
        Value::Varint(v) => out.push(v as i64),
        Value::Bytes(b, offset) => {
            let mut r = Reader {
                buf: b,
                pos: 0,
                base: offset,
                depth: 0,
            };
            while r.pos < b.len() {
                out.push(r.varint()? as i64);
            }
        }
        _ => return Err(wrong(value, name, "integers")),
    }
    Ok(())
}

/// Appends a repeated `float` field's values, packed or not.
pub fn push_floats(value: Value<'_>, name: &str, out: &mut Vec<f32>) -> Result<(), WireError> {
    match value {
        Value::Fixed32(v) => out.push(f32::from_bits(v)),
        Value::Bytes(b, offset) => {
            if !b.len().is_multiple_of(4) {
                return Err(WireError {
                    offset,
                    what: format!("packed `{name}` has {} bytes, not a multiple of 4", b.len()),
                });
            }
            out.extend(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        }
        _ => return Err(wrong(value, name, "floats")),
    }
    Ok(())
}

/// Appends a repeated `double` field's values, packed or not.
pub fn push_doubles(value: Value<'_>, name: &str, out: &mut Vec<f64>) -> Result<(), WireError> {
    match value {
        Value::Fixed64(v) => out.push(f64::from_bits(v)),
        Value::Bytes(b, offset) => {
            if !b.len().is_multiple_of(8) {
                return Err(WireError {
                    offset,
                    what: format!("packed `{name}` has {} bytes, not a multiple of 8", b.len()),
                });
            }
            out.extend(b.chunks_exact(8).map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                f64::from_le_bytes(a)
            }));
        }
        _ => return Err(wrong(value, name, "doubles")),
    }
    Ok(())
}

fn wrong(value: Value<'_>, name: &str, expected: &str) -> WireError {
    let (offset, found) = match value {
        Value::Varint(_) => (0, "a varint"),
        Value::Fixed64(_) => (0, "a 64-bit value"),
        Value::Bytes(_, o) => (o, "a length-delimited value"),
        Value::Fixed32(_) => (0, "a 32-bit value"),
    };
    WireError {
        offset,
        what: format!("`{name}` should be {expected}, found {found}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests stop on failure")]

    use super::*;

    #[test]
    fn reads_each_wire_type() {
        // field 1 varint 300, field 2 bytes "hi", field 3 fixed32 1.5, field 4 fixed64 7
        let mut buf = vec![0x08, 0xac, 0x02, 0x12, 2, b'h', b'i', 0x1d];
        buf.extend(1.5f32.to_le_bytes());
        buf.push(0x21);
        buf.extend(7u64.to_le_bytes());
        let mut r = Reader::new(&buf);
        assert_eq!(r.next_field().unwrap(), Some((1, Value::Varint(300))));
        assert_eq!(r.next_field().unwrap(), Some((2, Value::Bytes(b"hi", 5))));
        let (_, v) = r.next_field().unwrap().unwrap();
        assert_eq!(float(v, "f").unwrap(), 1.5);
        assert_eq!(r.next_field().unwrap(), Some((4, Value::Fixed64(7))));
        assert_eq!(r.next_field().unwrap(), None);
    }

    #[test]
    fn packed_and_unpacked_repeated_values() {
        let mut out = Vec::new();
        push_ints(Value::Varint(3), "ints", &mut out).unwrap();
        push_ints(Value::Bytes(&[1, 0xac, 0x02], 0), "ints", &mut out).unwrap();
        assert_eq!(out, vec![3, 1, 300]);
        let mut f = Vec::new();
        let packed: Vec<u8> = [1.0f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        push_floats(Value::Bytes(&packed, 0), "floats", &mut f).unwrap();
        assert_eq!(f, vec![1.0, -2.0]);
        assert!(push_floats(Value::Bytes(&packed[..7], 9), "floats", &mut f).is_err());
    }

    #[test]
    fn truncation_and_inflated_lengths_are_errors() {
        // A length of 100 with 2 bytes present.
        let buf = [0x12, 100, b'h', b'i'];
        let err = Reader::new(&buf).next_field().unwrap_err();
        assert_eq!(err.offset, 2);
        assert!(err.what.contains("100 bytes declared, 2 present"), "{err}");
        // A varint cut short.
        let err = Reader::new(&[0x08, 0x80]).next_field().unwrap_err();
        assert!(err.what.contains("truncated varint"), "{err}");
        // A huge length does not allocate or overflow.
        let buf = [
            0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert!(Reader::new(&buf).next_field().is_err());
        // Groups are refused.
        assert!(Reader::new(&[0x0b]).next_field().is_err());
        // Field number 0 is refused.
        assert!(Reader::new(&[0x00, 0x00]).next_field().is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let mut r = Reader::new(b"");
        for _ in 0..MAX_DEPTH {
            r = r.nested(b"", 0).unwrap();
        }
        assert!(r.nested(b"", 0).is_err());
    }
}
