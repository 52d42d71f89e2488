//! The messages between chantryd and its clients (the desktop app,
//! chantryctl), and the frame codec that carries them.
//!
//! Sans-IO like the rest of the crate: nothing here reads a socket. The
//! service and the clients feed received bytes into a [`FrameDecoder`],
//! decode each frame with [`decode_message`], and write what
//! [`encode_message`] returns.
//!
//! A connection goes like this (each line one frame, JSON):
//! 1. the client sends [`ClientHello`] with [`PROTOCOL_VERSION`];
//! 2. the service answers [`ServerMessage::Hello`] (or an error with
//!    [`ErrorCode::Version`] and closes);
//! 3. the client sends [`RequestFrame`]s, each answered by a
//!    [`ServerMessage::Response`] or [`ServerMessage::Error`] with the same
//!    id; after [`Request::Subscribe`] the service also sends
//!    [`ServerMessage::Event`]s.
//!
//! * [`frame`]: the length-delimited framing and its limits.
//! * [`message`]: the typed requests, responses and events.
//! * [`stats`]: a running tunnel's numbers.

pub mod frame;
pub mod message;
pub mod stats;

pub use frame::{
    FrameDecoder, FrameError, LEN_PREFIX, MAX_FRAME, decode_frame, decode_message, encode_frame,
    encode_message,
};
pub use message::{
    ClientHello, ErrorCode, ErrorReply, Event, EventRecord, ExportedProfile, ImportRequest,
    KeyMaterial, LogLine, PROTOCOL_VERSION, Passphrase, Privilege, ProfileInfo, Request,
    RequestFrame, Response, ServerHello, ServerMessage, Settings, TunnelState, TunnelStatus,
    VicarImportRequest,
};
pub use stats::{Counters, PathKind, Stage, StatsSample, TunnelStats};

#[cfg(test)]
mod tests;
