//! The errors the front end turns into actions. Each variant carries what
//! the user needs to act: the socket and the group for a permission
//! problem, the file and line for a bad file, the service's code for a
//! refusal. They cross to the front end as JSON (`{"kind": ...}`) and are
//! mapped to sentences there (src/errors.ts).

use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use chantry_core::ipc::{ErrorCode, ErrorReply};
use serde::Serialize;

/// Something the app could not do, in terms the user can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppError {
    /// Nothing listens on the control socket: the service is not running
    /// (or not installed).
    #[error("chantryd is not running ({socket}: {detail})")]
    NotRunning {
        /// The socket the app tried.
        socket: String,
        /// The system's words.
        detail: String,
    },
    /// The socket exists but this user may not open it.
    #[error("permission denied on {socket}")]
    PermissionDenied {
        /// The socket.
        socket: String,
        /// The group the socket is open to, if it could be looked up.
        group: Option<String>,
    },
    /// The service answered with a refusal or failure.
    #[error("{message}")]
    Refused {
        /// The service's class of problem.
        code: ErrorCode,
        /// The service's sentence (a refusal names the group needed).
        message: String,
        /// The line at fault, for a file the service rejected.
        line: Option<u32>,
        /// The file that line is in, if the app sent one.
        file: Option<String>,
        /// The text of that line, if the app has the file.
        line_text: Option<String>,
    },
    /// A file the user picked cannot be used (unreadable, not a
    /// configuration, wrong size).
    #[error("{path}: {detail}")]
    BadFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        detail: String,
        /// The line at fault (1-based), if one is.
        line: Option<u32>,
        /// That line's text.
        line_text: Option<String>,
    },
    /// The OS keyring failed.
    #[error("keyring: {detail}")]
    Keyring {
        /// What it said.
        detail: String,
    },
    /// The connection to the service broke or carried something
    /// unexpected.
    #[error("control connection: {detail}")]
    Protocol {
        /// What happened.
        detail: String,
    },
    /// Anything else the app failed at (a dialog, the autostart entry).
    #[error("{detail}")]
    Other {
        /// What happened.
        detail: String,
    },
}

impl AppError {
    /// The error of a failed connect to `socket`.
    pub fn from_connect(socket: &Path, e: &io::Error) -> AppError {
        let shown = socket.display().to_string();
        match e.kind() {
            io::ErrorKind::PermissionDenied => AppError::PermissionDenied {
                socket: shown,
                group: socket_group(socket),
            },
            _ => AppError::NotRunning {
                socket: shown,
                detail: e.to_string(),
            },
        }
    }

    /// The service's refusal.
    pub fn refused(reply: ErrorReply) -> AppError {
        AppError::Refused {
            code: reply.code,
            message: reply.message,
            line: reply.line,
            file: None,
            line_text: None,
        }
    }

    /// A refusal about a file the app sent: names the file, and quotes
    /// the line the service blamed from `text`.
    pub fn about_file(self, file: &Path, text: &str) -> AppError {
        match self {
            AppError::Refused {
                code,
                message,
                line,
                ..
            } => AppError::Refused {
                code,
                message,
                line,
                file: Some(file.display().to_string()),
                line_text: line.and_then(|l| line_of(text, l)),
            },
            other => other,
        }
    }

    /// A protocol problem.
    pub fn protocol(detail: impl ToString) -> AppError {
        AppError::Protocol {
            detail: detail.to_string(),
        }
    }

    /// Any other failure.
    pub fn other(detail: impl ToString) -> AppError {
        AppError::Other {
            detail: detail.to_string(),
        }
    }
}

/// Line `n` (1-based) of `text`, trimmed and cut to 200 characters.
pub fn line_of(text: &str, n: u32) -> Option<String> {
    let idx = usize::try_from(n).ok()?.checked_sub(1)?;
    let line = text.lines().nth(idx)?.trim();
    Some(line.chars().take(200).collect())
}

/// The name of the group that owns `socket`.
fn socket_group(socket: &Path) -> Option<String> {
    let gid = std::fs::metadata(socket).ok()?.gid();
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_socket_means_the_service_is_not_running() {
        let e = io::Error::from(io::ErrorKind::NotFound);
        let got = AppError::from_connect(Path::new("/nonexistent/chantryd.sock"), &e);
        assert!(
            matches!(got, AppError::NotRunning { ref socket, .. } if socket == "/nonexistent/chantryd.sock")
        );
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            AppError::from_connect(Path::new("/x"), &e),
            AppError::NotRunning { .. }
        ));
    }

    #[test]
    fn permission_denied_names_the_sockets_group() {
        // /etc/passwd belongs to root's group on every Linux.
        let e = io::Error::from(io::ErrorKind::PermissionDenied);
        let got = AppError::from_connect(Path::new("/etc/passwd"), &e);
        assert_eq!(
            got,
            AppError::PermissionDenied {
                socket: "/etc/passwd".into(),
                group: Some("root".into())
            }
        );
    }

    #[test]
    fn a_refusal_about_a_file_quotes_its_line() {
        let reply = ErrorReply {
            code: ErrorCode::Invalid,
            message: "home.conf:2: peer: not an address".into(),
            line: Some(2),
        };
        let got = AppError::refused(reply).about_file(
            Path::new("/home/u/home.conf"),
            "mode tunnel\n  peer nowhere  \n",
        );
        assert_eq!(
            got,
            AppError::Refused {
                code: ErrorCode::Invalid,
                message: "home.conf:2: peer: not an address".into(),
                line: Some(2),
                file: Some("/home/u/home.conf".into()),
                line_text: Some("peer nowhere".into()),
            }
        );
        let json = serde_json::to_value(&got).expect("json");
        assert_eq!(json["kind"], "refused");
        assert_eq!(json["code"], "invalid");
    }

    #[test]
    fn line_numbers_outside_the_text_quote_nothing() {
        assert_eq!(line_of("a\nb", 0), None);
        assert_eq!(line_of("a\nb", 3), None);
        assert_eq!(line_of("a\nb", 2).as_deref(), Some("b"));
    }
}
