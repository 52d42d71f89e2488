//! How a request fails: the [`ErrorReply`] a request handler returns,
//! built the same way by every handler.

use chantry_core::ipc::{ErrorCode, ErrorReply};

/// A refusal or failure of class `code`.
pub fn fail(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        code,
        message: message.into(),
        line: None,
    }
}

/// [`ErrorCode::Invalid`] about a configuration, naming the line at fault
/// if one is.
pub fn invalid_at(message: impl Into<String>, line: Option<u32>) -> ErrorReply {
    ErrorReply {
        line,
        ..fail(ErrorCode::Invalid, message)
    }
}

/// [`ErrorCode::Internal`]: the service failed (logged as an error).
pub fn internal(e: impl std::fmt::Display) -> ErrorReply {
    tracing::error!("{e}");
    fail(ErrorCode::Internal, e.to_string())
}

/// [`ErrorCode::NotFound`] for a profile name.
pub fn not_found(name: &str) -> ErrorReply {
    fail(ErrorCode::NotFound, format!("no profile named `{name}`"))
}
