//! The part of SPDY/3.1 that `kubectl port-forward` speaks: frames, and
//! header blocks compressed with zlib over the protocol's fixed dictionary.
//!
//! kubectl tunnels a SPDY session through the WebSocket's binary messages
//! (sub-protocol `SPDY/3.1+portforward.k8s.io`), so the session is a plain
//! byte stream to this module. Every frame starts with eight bytes: a control
//! frame has the high bit set, the version (3) and a type, then flags and a
//! 24-bit length; a data frame has a 31-bit stream id, flags and the length.
//! Header blocks of one direction form a single zlib stream for the whole
//! session, each block ending at a sync flush.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Set on the last frame a side sends on a stream.
pub const FLAG_FIN: u8 = 0x01;

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// A frame's length is 24 bits.
pub const MAX_FRAME_DATA: usize = 0x00ff_ffff;

/// RST_STREAM status: the stream was cancelled.
pub const RST_CANCEL: u32 = 5;

/// Errors of a SPDY session.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    /// A control frame of another SPDY version.
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    /// A frame too short for its type.
    #[error("truncated {0} frame")]
    Truncated(&'static str),
    /// A header block that does not decompress or parse.
    #[error("bad header block: {0}")]
    Headers(String),
}

/// One frame, decoded.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A new stream opened by the peer, with its headers.
    SynStream {
        /// The stream.
        stream_id: u32,
        /// Lower-case header names; multiple values joined by NUL as sent.
        headers: BTreeMap<String, String>,
        /// The peer sends nothing more on it.
        fin: bool,
    },
    /// The answer to a stream this side opened.
    SynReply {
        /// The stream.
        stream_id: u32,
    },
    /// More headers on a stream.
    Headers {
        /// The stream.
        stream_id: u32,
    },
    /// The peer aborted a stream.
    RstStream {
        /// The stream.
        stream_id: u32,
        /// Why.
        status: u32,
    },
    /// Session settings (nothing here depends on them).
    Settings,
    /// A ping to answer with the same id.
    Ping {
        /// Its id.
        id: u32,
    },
    /// The peer ends the session.
    GoAway,
    /// Flow-control credit (the Kubernetes peers do not enforce windows).
    WindowUpdate,
    /// Data on a stream.
    Data {
        /// The stream.
        stream_id: u32,
        /// Its bytes.
        data: Vec<u8>,
        /// The peer sends nothing more on it.
        fin: bool,
    },
    /// A control frame type this side ignores.
    Unknown(u16),
}

/// The zlib dictionary of SPDY/3 header blocks (1,423 bytes): the words
/// below, each after its length as a big-endian u32, then a run of common
/// values. Both ends must use exactly these bytes.
static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    const WORDS: &[&str] = &[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const TAIL: &str = concat!(
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
        "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
        "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
        "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
        "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
        "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
    );
    let mut dictionary = Vec::with_capacity(1423);
    for word in WORDS {
        dictionary.extend_from_slice(&(word.len() as u32).to_be_bytes());
        dictionary.extend_from_slice(word.as_bytes());
    }
    dictionary.extend_from_slice(TAIL.as_bytes());
    dictionary
});

/// Decodes frames from the session's bytes as they arrive.
pub struct Decoder {
    buffer: Vec<u8>,
    inflate: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Self {
            buffer: Vec::new(),
            inflate: Decompress::new(true),
        }
    }
}

impl Decoder {
    /// Adds bytes read from the session.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SpdyError> {
        if self.buffer.len() < 8 {
            return Ok(None);
        }
        let length =
            u32::from_be_bytes([0, self.buffer[5], self.buffer[6], self.buffer[7]]) as usize;
        if self.buffer.len() < 8 + length {
            return Ok(None);
        }
        let head: [u8; 8] = self.buffer[..8].try_into().unwrap_or_default();
        let payload: Vec<u8> = self.buffer[8..8 + length].to_vec();
        self.buffer.drain(..8 + length);
        let flags = head[4];
        let fin = flags & FLAG_FIN != 0;
        if head[0] & 0x80 == 0 {
            return Ok(Some(Frame::Data {
                stream_id: word(&head[0..4]),
                data: payload,
                fin,
            }));
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return Err(SpdyError::Version(version));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let need = |n: usize, name: &'static str| {
            if payload.len() < n {
                Err(SpdyError::Truncated(name))
            } else {
                Ok(())
            }
        };
        Ok(Some(match kind {
            SYN_STREAM => {
                need(10, "SYN_STREAM")?;
                let headers = self.headers(&payload[10..])?;
                Frame::SynStream {
                    stream_id: word(&payload[0..4]),
                    headers,
                    fin,
                }
            }
            SYN_REPLY => {
                need(4, "SYN_REPLY")?;
                self.headers(&payload[4..])?;
                Frame::SynReply {
                    stream_id: word(&payload[0..4]),
                }
            }
            HEADERS => {
                need(4, "HEADERS")?;
                self.headers(&payload[4..])?;
                Frame::Headers {
                    stream_id: word(&payload[0..4]),
                }
            }
            RST_STREAM => {
                need(8, "RST_STREAM")?;
                Frame::RstStream {
                    stream_id: word(&payload[0..4]),
                    status: word(&payload[4..8]),
                }
            }
            SETTINGS => Frame::Settings,
            PING => {
                need(4, "PING")?;
                Frame::Ping {
                    id: u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]),
                }
            }
            GOAWAY => Frame::GoAway,
            WINDOW_UPDATE => Frame::WindowUpdate,
            other => Frame::Unknown(other),
        }))
    }

    /// Inflates one header block (continuing the session's zlib stream)
    /// and parses its name/value pairs.
    fn headers(&mut self, block: &[u8]) -> Result<BTreeMap<String, String>, SpdyError> {
        let mut plain = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            if plain.capacity() - plain.len() < 256 {
                plain.reserve(4096);
            }
            let before_in = self.inflate.total_in();
            let result = self
                .inflate
                .decompress_vec(input, &mut plain, FlushDecompress::Sync);
            let consumed = (self.inflate.total_in() - before_in) as usize;
            input = &input[consumed..];
            match result {
                Ok(Status::StreamEnd) => break,
                Ok(_) if input.is_empty() && plain.capacity() > plain.len() => break,
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(&DICTIONARY)
                        .map_err(|e| SpdyError::Headers(e.to_string()))?;
                }
                Err(e) => return Err(SpdyError::Headers(e.to_string())),
            }
        }
        parse_pairs(&plain)
    }
}

fn word(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0] & 0x7f, bytes[1], bytes[2], bytes[3]])
}

fn parse_pairs(plain: &[u8]) -> Result<BTreeMap<String, String>, SpdyError> {
    let bad = |what: &str| SpdyError::Headers(what.to_owned());
    let mut at = 0;
    let mut take = |n: usize| -> Result<&[u8], SpdyError> {
        let bytes = plain
            .get(at..at + n)
            .ok_or_else(|| bad("block ends early"))?;
        at += n;
        Ok(bytes)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad("count"))?);
    let mut headers = BTreeMap::new();
    for _ in 0..count {
        let len = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad("name length"))?);
        let name = String::from_utf8_lossy(take(len as usize)?).to_ascii_lowercase();
        let len = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad("value length"))?);
        let value = String::from_utf8_lossy(take(len as usize)?).into_owned();
        headers.insert(name, value);
    }
    Ok(headers)
}

/// Encodes the frames this side sends.
pub struct Encoder {
    deflate: Compress,
}

impl Default for Encoder {
    fn default() -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        // Cannot fail on a fresh stream; without it the peer could still
        // read the blocks (its reader only checks a dictionary it was asked for).
        let _ = deflate.set_dictionary(&DICTIONARY);
        Self { deflate }
    }
}

impl Encoder {
    /// SYN_REPLY accepting a stream, with the given headers.
    pub fn syn_reply(&mut self, stream_id: u32, headers: &[(&str, &str)]) -> Vec<u8> {
        let block = self.header_block(headers);
        let mut payload = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
        payload.extend_from_slice(&block);
        control(SYN_REPLY, 0, &payload)
    }

    /// RST_STREAM aborting a stream.
    pub fn rst_stream(&self, stream_id: u32, status: u32) -> Vec<u8> {
        let mut payload = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
        payload.extend_from_slice(&status.to_be_bytes());
        control(RST_STREAM, 0, &payload)
    }

    /// PING, to answer the peer's.
    pub fn ping(&self, id: u32) -> Vec<u8> {
        control(PING, 0, &id.to_be_bytes())
    }

    fn header_block(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut plain = (headers.len() as u32).to_be_bytes().to_vec();
        for (name, value) in headers {
            plain.extend_from_slice(&(name.len() as u32).to_be_bytes());
            plain.extend_from_slice(name.as_bytes());
            plain.extend_from_slice(&(value.len() as u32).to_be_bytes());
            plain.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut input = plain.as_slice();
        loop {
            out.reserve(256);
            let before = self.deflate.total_in();
            if self
                .deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .is_err()
            {
                break;
            }
            input = &input[(self.deflate.total_in() - before) as usize..];
            // Done once all input is taken and the flush left spare room.
            if input.is_empty() && out.capacity() > out.len() {
                break;
            }
        }
        out
    }
}

/// A data frame; `data` must fit in [`MAX_FRAME_DATA`].
pub fn data_frame(stream_id: u32, data: &[u8], fin: bool) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + data.len());
    frame.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
    frame.push(if fin { FLAG_FIN } else { 0 });
    frame.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(data);
    frame
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + payload.len());
    frame.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    frame.extend_from_slice(&kind.to_be_bytes());
    frame.push(flags);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a client sends: SYN_STREAM with compressed headers.
    fn client_syn_stream(
        encoder: &mut Encoder,
        stream_id: u32,
        headers: &[(&str, &str)],
    ) -> Vec<u8> {
        let block = encoder.header_block(headers);
        let mut payload = stream_id.to_be_bytes().to_vec();
        payload.extend_from_slice(&0u32.to_be_bytes());
        payload.extend_from_slice(&[0, 0]);
        payload.extend_from_slice(&block);
        control(SYN_STREAM, 0, &payload)
    }

    #[test]
    fn the_dictionary_has_the_protocols_length() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert!(DICTIONARY.starts_with(b"\x00\x00\x00\x07options"));
        assert!(DICTIONARY.ends_with(b"enq=0."));
    }

    #[test]
    fn header_blocks_round_trip_across_one_zlib_stream() {
        let mut client = Encoder::default();
        let mut server = Decoder::default();
        let mut bytes = client_syn_stream(
            &mut client,
            1,
            &[
                ("streamType", "error"),
                ("port", "8080"),
                ("requestID", "0"),
            ],
        );
        bytes.extend(client_syn_stream(
            &mut client,
            3,
            &[("streamType", "data"), ("port", "8080"), ("requestID", "0")],
        ));
        bytes.extend(data_frame(3, b"GET / HTTP/1.0\r\n\r\n", true));
        // Arriving in small pieces changes nothing.
        for chunk in bytes.chunks(5) {
            server.push(chunk);
        }
        let Some(Frame::SynStream {
            stream_id, headers, ..
        }) = server.next_frame().expect("frame")
        else {
            panic!("not a SYN_STREAM")
        };
        assert_eq!(stream_id, 1);
        assert_eq!(headers["streamtype"], "error");
        assert_eq!(headers["port"], "8080");
        let Some(Frame::SynStream {
            stream_id, headers, ..
        }) = server.next_frame().expect("frame")
        else {
            panic!("not a SYN_STREAM")
        };
        assert_eq!((stream_id, headers["streamtype"].as_str()), (3, "data"));
        assert_eq!(
            server.next_frame().expect("frame"),
            Some(Frame::Data {
                stream_id: 3,
                data: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
                fin: true
            })
        );
        assert_eq!(server.next_frame().expect("frame"), None);
    }

    #[test]
    fn replies_pings_and_resets_decode() {
        let mut server = Encoder::default();
        let mut client = Decoder::default();
        client.push(&server.syn_reply(5, &[]));
        client.push(&server.ping(7));
        client.push(&server.rst_stream(5, RST_CANCEL));
        assert_eq!(
            client.next_frame().unwrap(),
            Some(Frame::SynReply { stream_id: 5 })
        );
        assert_eq!(client.next_frame().unwrap(), Some(Frame::Ping { id: 7 }));
        assert_eq!(
            client.next_frame().unwrap(),
            Some(Frame::RstStream {
                stream_id: 5,
                status: RST_CANCEL
            })
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = Decoder::default();
        d.push(&[0x80, 0x02, 0, 1, 0, 0, 0, 0]);
        assert!(matches!(d.next_frame(), Err(SpdyError::Version(2))));
        let mut d = Decoder::default();
        d.push(&[0x80, 0x03, 0, 1, 0, 0, 0, 2, 0, 0]);
        assert!(matches!(d.next_frame(), Err(SpdyError::Truncated(_))));
        let mut d = Decoder::default();
        let mut bad = control(SYN_STREAM, 0, &[0; 10]);
        bad[7] = 14;
        bad.extend_from_slice(&[1, 2, 3, 4]);
        d.push(&bad);
        assert!(matches!(d.next_frame(), Err(SpdyError::Headers(_))));
    }
}
