//! Length-delimited frames: a big-endian `u32` payload length, then the
//! payload (one JSON document). A frame longer than the decoder's limit
//! (at most [`MAX_FRAME`]) or an empty one is an error the moment its
//! length prefix is seen, before its body is buffered.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// The largest payload either side accepts: 1 MiB.
pub const MAX_FRAME: usize = 1 << 20;

/// Bytes that are not a valid frame or message. After any of these the
/// connection is out of step and is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the limit.
    #[error("frame of {len} bytes is larger than the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The length prefix is zero: no message is empty.
    #[error("empty frame")]
    Empty,
    /// The payload is not the JSON of the expected message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The peer closed the stream in the middle of a frame.
    #[error("stream ended inside a frame ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes of the unfinished frame that had arrived.
        buffered: usize,
    },
}

/// Prefixes `payload` with its length.
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    if payload.is_empty() {
        return Err(FrameError::Empty);
    }
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME)
        .ok_or(FrameError::TooLarge {
            len: payload.len() as u64,
            max: MAX_FRAME,
        })?;
    let mut out = Vec::with_capacity(LEN_PREFIX + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Serializes `msg` as JSON and frames it.
pub fn encode_message<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let json = serde_json::to_vec(msg).map_err(|e| FrameError::Malformed(e.to_string()))?;
    encode_frame(&json)
}

/// Parses one payload as a `T`.
pub fn decode_message<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(payload).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Looks for one whole frame at the start of `buf`, with payloads limited
/// to `max` bytes (clamped to [`MAX_FRAME`]). `Ok(None)`: more bytes are
/// needed. `Ok(Some((payload, used)))`: the payload and how many bytes of
/// `buf` the frame took.
pub fn decode_frame(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    let max = max.min(MAX_FRAME);
    let Some((prefix, rest)) = buf.split_first_chunk::<LEN_PREFIX>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > max {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max,
        });
    }
    Ok(rest
        .get(..len)
        .map(|payload| (payload, LEN_PREFIX.saturating_add(len))))
}

/// Collects bytes from a stream and cuts them into frames. It never holds
/// more than one unfinished frame plus what the last [`extend`] added.
///
/// [`extend`]: FrameDecoder::extend
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder that accepts payloads of at most `max` bytes (clamped to
    /// [`MAX_FRAME`]).
    pub fn new(max: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            max: max.min(MAX_FRAME),
        }
    }

    /// Adds received bytes. Call [`FrameDecoder::next_frame`] until it
    /// returns `Ok(None)` after each call.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole payload, `Ok(None)` if more bytes are needed, or the
    /// reason the stream is not valid (the decoder should then be dropped
    /// with its connection).
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some((payload, used)) = decode_frame(&self.buf, self.max)? else {
            return Ok(None);
        };
        let payload = payload.to_vec();
        self.buf.drain(..used);
        Ok(Some(payload))
    }

    /// Bytes waiting for the rest of their frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Called when the stream ended: an error if it ended inside a frame.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated {
                buffered: self.buf.len(),
            })
        }
    }
}
