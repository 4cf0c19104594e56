//! The protobuf wire format at its lowest level: varints, keys and
//! length-delimited slices, with every length checked against the input so
//! hostile bodies end in an error, never a panic.

use super::Error;

/// How a field's value is laid out on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WireType {
    /// A base-128 varint (ints, bools, enums).
    Varint,
    /// Eight little-endian bytes.
    Fixed64,
    /// A varint length, then that many bytes (strings, bytes, messages, packed lists).
    Len,
    /// Four little-endian bytes.
    Fixed32,
}

impl WireType {
    fn from_bits(bits: u64) -> Result<Self, Error> {
        match bits {
            0 => Ok(Self::Varint),
            1 => Ok(Self::Fixed64),
            2 => Ok(Self::Len),
            5 => Ok(Self::Fixed32),
            // 3 and 4 are proto1 groups, which Kubernetes never emits.
            other => Err(Error::Malformed(format!("unsupported wire type {other}"))),
        }
    }
}

/// A cursor over one message's bytes.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads `buf` from its start.
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Whether all bytes were consumed.
    pub(super) fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Reads one varint (at most 10 bytes, as protobuf allows).
    pub(super) fn varint(&mut self) -> Result<u64, Error> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self.buf.get(self.pos).ok_or(Error::Truncated)?;
            self.pos += 1;
            // The tenth byte may only carry the top bit of a u64.
            if i == 9 && byte > 1 {
                return Err(Error::Malformed("varint overflows 64 bits".into()));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::Malformed("varint longer than 10 bytes".into()))
    }

    /// Reads a field key: its number and wire type.
    pub(super) fn key(&mut self) -> Result<(u32, WireType), Error> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .map_err(|_| Error::Malformed(format!("field number {} out of range", key >> 3)))?;
        if number == 0 {
            return Err(Error::Malformed("field number 0".into()));
        }
        Ok((number, WireType::from_bits(key & 7)?))
    }

    /// Reads a length-delimited slice.
    pub(super) fn len_delimited(&mut self) -> Result<&'a [u8], Error> {
        let len = usize::try_from(self.varint()?).map_err(|_| Error::Truncated)?;
        let end = self.pos.checked_add(len).ok_or(Error::Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    /// Skips a value of an unknown field.
    pub(super) fn skip(&mut self, wire: WireType) -> Result<(), Error> {
        match wire {
            WireType::Varint => self.varint().map(drop),
            WireType::Len => self.len_delimited().map(drop),
            WireType::Fixed64 => self.advance(8),
            WireType::Fixed32 => self.advance(4),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated)?;
        if end > self.buf.len() {
            return Err(Error::Truncated);
        }
        self.pos = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_decode_and_reject_overflow() {
        assert_eq!(Reader::new(&[0x96, 0x01]).varint().ok(), Some(150));
        // -1 as int32/int64: ten bytes, sign-extended.
        let minus_one = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&minus_one).varint().ok(), Some(u64::MAX));
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(matches!(
            Reader::new(&overflow).varint(),
            Err(Error::Malformed(_))
        ));
        let endless = [0x80; 11];
        assert!(matches!(
            Reader::new(&endless).varint(),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            Reader::new(&[0x80]).varint(),
            Err(Error::Truncated)
        ));
    }

    #[test]
    fn keys_and_slices_are_bounds_checked() {
        let mut r = Reader::new(&[0x0a, 0x02, b'h', b'i']);
        assert_eq!(r.key().ok(), Some((1, WireType::Len)));
        assert_eq!(r.len_delimited().ok(), Some(&b"hi"[..]));
        assert!(r.done());
        // A length pointing past the end.
        let mut r = Reader::new(&[0x0a, 0x05, b'h']);
        assert!(r.key().is_ok());
        assert!(matches!(r.len_delimited(), Err(Error::Truncated)));
        // A huge length must not overflow the position.
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(matches!(r.len_delimited(), Err(Error::Truncated)));
        // Field 0 and groups are invalid.
        assert!(matches!(
            Reader::new(&[0x02]).key(),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            Reader::new(&[0x0b]).key(),
            Err(Error::Malformed(_))
        ));
        // Skipping fixed-width values checks the length too.
        let mut r = Reader::new(&[1, 2, 3]);
        assert!(matches!(r.skip(WireType::Fixed32), Err(Error::Truncated)));
        let mut r = Reader::new(&[1, 2, 3, 4]);
        assert!(r.skip(WireType::Fixed32).is_ok());
        assert!(r.done());
    }
}
