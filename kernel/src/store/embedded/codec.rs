//! Byte layouts of the embedded store's tables.
//!
//! A hand-written, fixed layout (little-endian integers, length-prefixed byte
//! strings) keeps the on-disk format explicit and independent of any serde
//! format's evolution.

use bytes::Bytes;

use crate::store::{Event, EventKind, KeyValue, Revision};

/// Why a stored record could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("corrupt record: {0}")]
pub(crate) struct CorruptRecord(&'static str);

/// Encodes a row of the keys table: create revision, mod revision, value.
pub(crate) fn encode_row(
    create_revision: Revision,
    mod_revision: Revision,
    value: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + value.len());
    out.extend_from_slice(&create_revision.to_le_bytes());
    out.extend_from_slice(&mod_revision.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// Decodes a row of the keys table into a [`KeyValue`] for `key`.
pub(crate) fn decode_row(key: &str, row: &[u8]) -> Result<KeyValue, CorruptRecord> {
    let mut reader = Reader(row);
    let create_revision = reader.i64()?;
    let mod_revision = reader.i64()?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(reader.0),
        create_revision,
        mod_revision,
    })
}

/// Encodes an event of the revision log.
pub(crate) fn encode_event(event: &Event) -> Vec<u8> {
    let prev_len = event.prev_kv.as_ref().map_or(0, |p| 20 + p.value.len());
    let mut out = Vec::with_capacity(30 + event.kv.key.len() + event.kv.value.len() + prev_len);
    out.push(match event.kind {
        EventKind::Put => 0,
        EventKind::Delete => 1,
    });
    put_bytes(&mut out, event.kv.key.as_bytes());
    out.extend_from_slice(&event.kv.create_revision.to_le_bytes());
    out.extend_from_slice(&event.kv.mod_revision.to_le_bytes());
    put_bytes(&mut out, &event.kv.value);
    match &event.prev_kv {
        None => out.push(0),
        Some(prev) => {
            out.push(1);
            out.extend_from_slice(&prev.create_revision.to_le_bytes());
            out.extend_from_slice(&prev.mod_revision.to_le_bytes());
            put_bytes(&mut out, &prev.value);
        }
    }
    out
}

/// Decodes an event of the revision log.
pub(crate) fn decode_event(bytes: &[u8]) -> Result<Event, CorruptRecord> {
    let mut reader = Reader(bytes);
    let kind = match reader.u8()? {
        0 => EventKind::Put,
        1 => EventKind::Delete,
        _ => return Err(CorruptRecord("unknown event kind")),
    };
    let key = String::from_utf8(reader.bytes()?.to_vec())
        .map_err(|_| CorruptRecord("key is not utf-8"))?;
    let create_revision = reader.i64()?;
    let mod_revision = reader.i64()?;
    let value = Bytes::copy_from_slice(reader.bytes()?);
    let prev_kv = match reader.u8()? {
        0 => None,
        1 => {
            let create_revision = reader.i64()?;
            let mod_revision = reader.i64()?;
            Some(KeyValue {
                key: key.clone(),
                value: Bytes::copy_from_slice(reader.bytes()?),
                create_revision,
                mod_revision,
            })
        }
        _ => return Err(CorruptRecord("bad previous-value marker")),
    };
    Ok(Event {
        kind,
        kv: KeyValue {
            key,
            value,
            create_revision,
            mod_revision,
        },
        prev_kv,
    })
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Values are bounded far below 4 GiB by the API layer; saturate rather than wrap.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CorruptRecord> {
        if self.0.len() < n {
            return Err(CorruptRecord("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, CorruptRecord> {
        Ok(self.take(1)?[0])
    }

    fn i64(&mut self) -> Result<i64, CorruptRecord> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(buf))
    }

    fn bytes(&mut self) -> Result<&'a [u8], CorruptRecord> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        let len = u32::from_le_bytes(buf) as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(value: &'static str, create: Revision, modified: Revision) -> KeyValue {
        KeyValue {
            key: "/registry/core/pods/ns/a".into(),
            value: Bytes::from_static(value.as_bytes()),
            create_revision: create,
            mod_revision: modified,
        }
    }

    #[test]
    fn row_round_trips() {
        let row = encode_row(3, 9, b"{\"a\":1}");
        let decoded = decode_row("/k", &row).unwrap();
        assert_eq!(decoded.create_revision, 3);
        assert_eq!(decoded.mod_revision, 9);
        assert_eq!(&decoded.value[..], b"{\"a\":1}");
        assert!(decode_row("/k", &row[..10]).is_err());
    }

    #[test]
    fn events_round_trip() {
        let update = Event {
            kind: EventKind::Put,
            kv: kv("new", 2, 5),
            prev_kv: Some(kv("old", 2, 2)),
        };
        assert_eq!(decode_event(&encode_event(&update)).unwrap(), update);
        let delete = Event {
            kind: EventKind::Delete,
            kv: kv("", 2, 6),
            prev_kv: Some(kv("new", 2, 5)),
        };
        assert_eq!(decode_event(&encode_event(&delete)).unwrap(), delete);
        let create = Event {
            kind: EventKind::Put,
            kv: kv("x", 7, 7),
            prev_kv: None,
        };
        let bytes = encode_event(&create);
        assert_eq!(decode_event(&bytes).unwrap(), create);
        assert!(decode_event(&bytes[..bytes.len() - 1]).is_err());
    }
}
