//! Request bodies in Kubernetes' protobuf encoding
//! (`application/vnd.kubernetes.protobuf`), which client-go's typed clients
//! (so `kubectl create ...`) send for built-in types.
//!
//! The body is decoded into the object's Kubernetes JSON so the rest of the
//! server never sees protobuf. Decoding is driven by a schema table
//! ([`schema`]) instead of generated code: the table says, per message and
//! field number, the JSON name, the value type and whether Go's `omitempty`
//! drops a zero value. Responses stay JSON.

mod schema;
mod wire;

use base64::Engine;
use serde_json::{Map, Value};

use crate::error::ApiError;
use schema::{Field, Message, Shape, Ty};
use wire::{Reader, WireType};

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes that open every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

/// Nesting limit; the schema is shallow, so only hostile input gets near it.
const MAX_DEPTH: usize = 64;

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body does not start with `k8s\0`.
    #[error("the protobuf body does not start with the Kubernetes magic number")]
    BadMagic,
    /// A value runs past the end of its message.
    #[error("the protobuf body is truncated")]
    Truncated,
    /// Bytes that are not valid protobuf, or do not fit the schema.
    #[error("malformed protobuf body: {0}")]
    Malformed(String),
    /// A kind the schema table does not cover.
    #[error(
        "the protobuf encoding of {api_version}, Kind={kind} is not supported; send JSON instead"
    )]
    UnsupportedKind {
        /// The envelope's apiVersion.
        api_version: String,
        /// The envelope's kind.
        kind: String,
    },
    /// An envelope with a content encoding (compression) kerno does not read.
    #[error("unsupported protobuf content encoding {0:?}")]
    UnsupportedEncoding(String),
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::UnsupportedKind { .. } | Error::UnsupportedEncoding(_) => {
                ApiError::UnsupportedMediaType(err.to_string())
            }
            Error::BadMagic | Error::Truncated | Error::Malformed(_) => {
                ApiError::BadRequest(err.to_string())
            }
        }
    }
}

/// Whether a `Content-Type` header value names Kubernetes protobuf.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case(MEDIA_TYPE)
}

/// Decodes a Kubernetes protobuf body (magic number plus `runtime.Unknown`
/// envelope) into the object's JSON, `apiVersion` and `kind` included.
pub fn decode(body: &[u8]) -> Result<Value, Error> {
    let (value, skipped) = decode_reporting_skipped(body)?;
    if !skipped.is_empty() {
        // Fields newer than the table are dropped; say which, for debugging.
        tracing::debug!(
            ?skipped,
            "protobuf fields not in the schema table were ignored"
        );
    }
    Ok(value)
}

/// Decodes a body and lists the fields (`Message.number`) skipped because
/// the table does not know them.
fn decode_reporting_skipped(body: &[u8]) -> Result<(Value, Vec<String>), Error> {
    let mut cx = Context::default();
    let value = decode_envelope(body, &mut cx)?;
    Ok((value, cx.skipped))
}

/// State of one decoding: nesting depth and the fields skipped as unknown.
#[derive(Default)]
struct Context {
    depth: usize,
    /// `Message.number` of each skipped field.
    skipped: Vec<String>,
}

fn decode_envelope(body: &[u8], cx: &mut Context) -> Result<Value, Error> {
    let rest = body.strip_prefix(MAGIC).ok_or(Error::BadMagic)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut encoding = String::new();
    let mut r = Reader::new(rest);
    while !r.done() {
        match r.key()? {
            (1, WireType::Len) => {
                let mut meta = Reader::new(r.len_delimited()?);
                while !meta.done() {
                    match meta.key()? {
                        (1, WireType::Len) => api_version = utf8(meta.len_delimited()?)?,
                        (2, WireType::Len) => kind = utf8(meta.len_delimited()?)?,
                        (_, wire) => meta.skip(wire)?,
                    }
                }
            }
            (2, WireType::Len) => raw = r.len_delimited()?,
            (3, WireType::Len) => encoding = utf8(r.len_delimited()?)?,
            (_, wire) => r.skip(wire)?,
        }
    }
    if !encoding.is_empty() {
        return Err(Error::UnsupportedEncoding(encoding));
    }
    if kind.is_empty() {
        return Err(Error::Malformed("the envelope has no kind".into()));
    }
    let message = schema::kind(&api_version, &kind).ok_or_else(|| Error::UnsupportedKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    object.extend(decode_message(message, raw, cx)?);
    Ok(Value::Object(object))
}

/// Decodes one message by its schema into a JSON object.
fn decode_message(
    message: &Message,
    buf: &[u8],
    cx: &mut Context,
) -> Result<Map<String, Value>, Error> {
    cx.depth += 1;
    if cx.depth > MAX_DEPTH {
        return Err(Error::Malformed("messages nested too deeply".into()));
    }
    let mut slots: Vec<Option<Value>> = vec![None; message.fields.len()];
    let mut r = Reader::new(buf);
    while !r.done() {
        let (number, wire) = r.key()?;
        let Some(index) = message.fields.iter().position(|f| f.num == number) else {
            // Fields newer than the table: keep decoding, as Kubernetes does.
            r.skip(wire)?;
            cx.skipped.push(format!("{}.{number}", message.name));
            continue;
        };
        let field = &message.fields[index];
        let context = |e: Error| match e {
            Error::Malformed(m) => {
                Error::Malformed(format!("{}.{}: {m}", message.name, field.name))
            }
            other => other,
        };
        decode_field(field, wire, &mut r, &mut slots[index], cx).map_err(context)?;
    }
    let mut out = Map::new();
    for (field, slot) in message.fields.iter().zip(slots) {
        let Some(value) = slot else { continue };
        match field.shape {
            Shape::Inline => {
                if let Value::Object(inner) = value {
                    out.extend(inner);
                }
            }
            Shape::Single if value.is_null() => {}
            Shape::Single if !field.keep_zero && is_zero(field.ty, &value) => {}
            _ => {
                out.insert(field.name.into(), value);
            }
        }
    }
    cx.depth -= 1;
    Ok(out)
}

/// Decodes one occurrence of a field into its slot (lists and maps accumulate).
fn decode_field(
    field: &Field,
    wire: WireType,
    r: &mut Reader<'_>,
    slot: &mut Option<Value>,
    cx: &mut Context,
) -> Result<(), Error> {
    match field.shape {
        Shape::Single | Shape::Inline => *slot = Some(decode_value(field.ty, wire, r, cx)?),
        Shape::Repeated => {
            let list = match slot.get_or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(list) => list,
                _ => return Err(Error::Malformed("list slot holds a non-list".into())),
            };
            if wire == WireType::Len && is_varint(field.ty) {
                // A packed list of numbers.
                let mut packed = Reader::new(r.len_delimited()?);
                while !packed.done() {
                    list.push(decode_value(field.ty, WireType::Varint, &mut packed, cx)?);
                }
            } else {
                list.push(decode_value(field.ty, wire, r, cx)?);
            }
        }
        Shape::Map => {
            expect(wire, WireType::Len)?;
            let mut entry = Reader::new(r.len_delimited()?);
            let mut key = String::new();
            let mut value = None;
            while !entry.done() {
                match entry.key()? {
                    (1, WireType::Len) => key = utf8(entry.len_delimited()?)?,
                    (2, wire) => value = Some(decode_value(field.ty, wire, &mut entry, cx)?),
                    (_, wire) => entry.skip(wire)?,
                }
            }
            let value = value.unwrap_or_else(|| empty(field.ty));
            match slot.get_or_insert_with(|| Value::Object(Map::new())) {
                Value::Object(map) => {
                    map.insert(key, value);
                }
                _ => return Err(Error::Malformed("map slot holds a non-map".into())),
            }
        }
    }
    Ok(())
}

/// Decodes one value of a type (a message type, or a scalar).
fn decode_value(
    ty: Ty,
    wire: WireType,
    r: &mut Reader<'_>,
    cx: &mut Context,
) -> Result<Value, Error> {
    if is_varint(ty) {
        expect(wire, WireType::Varint)?;
        let v = r.varint()?;
        // int32 negatives arrive sign-extended to 64 bits; truncation is the
        // protobuf rule for int32.
        return Ok(match ty {
            Ty::Bool => Value::Bool(v != 0),
            Ty::Int32 => Value::from(v as i64 as i32),
            _ => Value::from(v as i64),
        });
    }
    expect(wire, WireType::Len)?;
    let bytes = r.len_delimited()?;
    Ok(match ty {
        Ty::String => Value::String(utf8(bytes)?),
        Ty::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        Ty::Message(message) => Value::Object(decode_message(message, bytes, cx)?),
        Ty::Time => time(bytes)?,
        Ty::Quantity => {
            let mut s = String::new();
            let mut q = Reader::new(bytes);
            while !q.done() {
                match q.key()? {
                    (1, WireType::Len) => s = utf8(q.len_delimited()?)?,
                    (_, wire) => q.skip(wire)?,
                }
            }
            Value::String(s)
        }
        Ty::IntOrString => int_or_string(bytes)?,
        Ty::Raw => raw(bytes, cx)?,
        Ty::Bool | Ty::Int32 | Ty::Int64 => {
            return Err(Error::Malformed(
                "number in a length-delimited value".into(),
            ));
        }
    })
}

fn is_varint(ty: Ty) -> bool {
    matches!(ty, Ty::Bool | Ty::Int32 | Ty::Int64)
}

fn expect(got: WireType, want: WireType) -> Result<(), Error> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Malformed(format!(
            "wire type {got:?} where {want:?} was expected"
        )))
    }
}

fn utf8(bytes: &[u8]) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::Malformed("string is not valid UTF-8".into()))
}

/// Whether Go's `omitempty` would drop this value.
fn is_zero(ty: Ty, value: &Value) -> bool {
    match ty {
        Ty::String | Ty::Bytes | Ty::Quantity => value.as_str() == Some(""),
        Ty::Bool => value.as_bool() == Some(false),
        Ty::Int32 | Ty::Int64 => value.as_i64() == Some(0),
        // The zero IntOrString is the integer 0 (or an empty string).
        Ty::IntOrString => value.as_i64() == Some(0) || value.as_str() == Some(""),
        Ty::Message(_) | Ty::Time | Ty::Raw => false,
    }
}

/// The value of a map entry whose value field was left out.
fn empty(ty: Ty) -> Value {
    match ty {
        Ty::Bool => Value::Bool(false),
        Ty::Int32 | Ty::Int64 => Value::from(0),
        Ty::Message(_) => Value::Object(Map::new()),
        Ty::Time | Ty::Raw => Value::Null,
        Ty::IntOrString => Value::from(0),
        Ty::String | Ty::Bytes | Ty::Quantity => Value::String(String::new()),
    }
}

/// `metav1.Time` {1 seconds, 2 nanos} as RFC 3339 in UTC with whole seconds
/// (as Go marshals it); the zero time is encoded as an empty message and
/// becomes null (dropped).
fn time(bytes: &[u8]) -> Result<Value, Error> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let (mut seconds, mut nanos) = (0i64, 0i64);
    let mut r = Reader::new(bytes);
    while !r.done() {
        match r.key()? {
            (1, WireType::Varint) => seconds = r.varint()? as i64,
            (2, WireType::Varint) => nanos = i64::from(r.varint()? as i64 as i32),
            (_, wire) => r.skip(wire)?,
        }
    }
    let nanos =
        u32::try_from(nanos).map_err(|_| Error::Malformed(format!("invalid nanos {nanos}")))?;
    let at = chrono::DateTime::from_timestamp(seconds, nanos)
        .ok_or_else(|| Error::Malformed(format!("time out of range: {seconds}s {nanos}ns")))?;
    Ok(Value::String(
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ))
}

/// `intstr.IntOrString` {1 type (0 int, 1 string), 2 intVal, 3 strVal}.
fn int_or_string(bytes: &[u8]) -> Result<Value, Error> {
    let (mut kind, mut int_val, mut str_val) = (0u64, 0i32, String::new());
    let mut r = Reader::new(bytes);
    while !r.done() {
        match r.key()? {
            (1, WireType::Varint) => kind = r.varint()?,
            (2, WireType::Varint) => int_val = r.varint()? as i64 as i32,
            (3, WireType::Len) => str_val = utf8(r.len_delimited()?)?,
            (_, wire) => r.skip(wire)?,
        }
    }
    match kind {
        0 => Ok(Value::from(int_val)),
        1 => Ok(Value::String(str_val)),
        other => Err(Error::Malformed(format!("IntOrString type {other}"))),
    }
}

/// `runtime.RawExtension`/`FieldsV1` {1 raw}: JSON bytes, or an embedded
/// protobuf object in its own envelope.
fn raw(bytes: &[u8], cx: &mut Context) -> Result<Value, Error> {
    let mut raw: &[u8] = &[];
    let mut r = Reader::new(bytes);
    while !r.done() {
        match r.key()? {
            (1, WireType::Len) => raw = r.len_delimited()?,
            (_, wire) => r.skip(wire)?,
        }
    }
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(MAGIC) {
        return decode_envelope(raw, cx);
    }
    serde_json::from_slice(raw)
        .map_err(|e| Error::Malformed(format!("embedded raw object is not JSON: {e}")))
}

#[cfg(test)]
mod tests;
