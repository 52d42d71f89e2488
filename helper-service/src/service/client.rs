//! A blocking client of the control endpoint (chantryctl's).

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use chantry_core::ipc::{
    ClientHello, ErrorReply, Event, FrameDecoder, FrameError, MAX_FRAME, PROTOCOL_VERSION, Request,
    RequestFrame, Response, ServerHello, ServerMessage, decode_message, encode_message,
};

/// Why a call to the service failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket (or pipe) could not be reached.
    #[error("cannot connect to chantryd at {path}: {why}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why (for permission errors: which group the socket is open to).
        why: String,
    },
    /// The service refused or failed the request.
    #[error("{}", .0.message)]
    Refused(ErrorReply),
    /// The stream broke or carried something unexpected.
    #[error("control connection: {0}")]
    Protocol(String),
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        ClientError::Protocol(e.to_string())
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Protocol(e.to_string())
    }
}

/// Events a [`Client`] keeps while it waits for an answer (after a
/// subscribe); beyond this many the oldest are dropped.
pub const PENDING_EVENTS: usize = 4096;

/// One connection to chantryd, past the handshake.
#[derive(Debug)]
pub struct Client {
    stream: super::transport::ClientStream,
    dec: FrameDecoder,
    next_id: u64,
    pending: VecDeque<Event>,
    /// The service's hello.
    pub hello: ServerHello,
}

impl Client {
    /// Connects and says hello.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = super::transport::connect(path).map_err(|why| ClientError::Connect {
            path: path.to_owned(),
            why,
        })?;
        let mut c = Client {
            stream,
            dec: FrameDecoder::new(MAX_FRAME),
            next_id: 1,
            pending: VecDeque::new(),
            hello: ServerHello {
                version: 0,
                server: String::new(),
                privilege: chantry_core::ipc::Privilege::None,
            },
        };
        let hello = ClientHello {
            version: PROTOCOL_VERSION,
            client: concat!("chantryctl ", env!("CARGO_PKG_VERSION")).to_owned(),
        };
        c.stream.write_all(&encode_message(&hello)?)?;
        match c.read()? {
            ServerMessage::Hello(h) => c.hello = h,
            ServerMessage::Error { error, .. } => return Err(ClientError::Refused(error)),
            other => return Err(ClientError::Protocol(format!("unexpected {other:?}"))),
        }
        Ok(c)
    }

    /// Reads the next message.
    pub fn read(&mut self) -> Result<ServerMessage, ClientError> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(f) = self.dec.next_frame()? {
                return Ok(decode_message(&f)?);
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                self.dec.finish()?;
                return Err(ClientError::Protocol(
                    "chantryd closed the connection".into(),
                ));
            }
            self.dec.extend(&buf[..n]);
        }
    }

    /// Sends `request` and waits for its answer. Events that arrive first
    /// are kept (up to [`PENDING_EVENTS`]) for [`Client::next_event`] and
    /// [`Client::take_events`].
    pub fn call(&mut self, request: Request) -> Result<Response, ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.stream
            .write_all(&encode_message(&RequestFrame { id, request })?)?;
        loop {
            match self.read()? {
                ServerMessage::Response { id: got, response } if got == id => return Ok(response),
                ServerMessage::Error { id: got, error } if got == Some(id) || got.is_none() => {
                    return Err(ClientError::Refused(error));
                }
                ServerMessage::Event(e) => {
                    if self.pending.len() >= PENDING_EVENTS {
                        self.pending.pop_front();
                    }
                    self.pending.push_back(e);
                }
                _ => {}
            }
        }
    }

    /// The events that arrived while [`Client::call`] waited, oldest
    /// first; none are kept after this.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.pending.drain(..).collect()
    }

    /// The next event of a subscription (those kept by [`Client::call`]
    /// first).
    pub fn next_event(&mut self) -> Result<Event, ClientError> {
        if let Some(e) = self.pending.pop_front() {
            return Ok(e);
        }
        loop {
            match self.read()? {
                ServerMessage::Event(e) => return Ok(e),
                ServerMessage::Error { error, .. } => return Err(ClientError::Refused(error)),
                _ => {}
            }
        }
    }
}
