//! The error of the configuration parser: file, line, keyword, problem.

use std::path::{Path, PathBuf};

/// What class of problem a [`ConfigError`] is, for callers that want to
/// react to it (a GUI highlighting a line, say). The text is in
/// [`ConfigError::message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The file could not be read ([`crate::config::Config::load`] only).
    Read,
    /// A line that cannot be a configuration line at all: longer than the
    /// reference's 8191-byte line buffer, a NUL byte, invalid UTF-8.
    Lexical,
    /// The first word of a line is not a keyword.
    UnknownKeyword,
    /// A keyword with nothing after it.
    MissingValue,
    /// The value does not have the keyword's syntax.
    InvalidValue,
    /// A number or length outside what the keyword allows.
    OutOfRange,
    /// A keyword that may appear once appears again.
    Repeated,
    /// A keyword that needs another one on an earlier line (`spi` before
    /// `cathedral`, `mode cathedral` before `secretdir`, ...).
    Order,
    /// A keyword that the configured mode does not use or allow.
    WrongMode,
    /// A keyword the mode requires is absent.
    Missing,
    /// Two settings that cannot be combined.
    Conflict,
    /// A file named by the configuration is missing, unreadable or malformed
    /// ([`crate::config::Config::check_files`]).
    File,
}

/// A configuration error: `file:line: keyword: problem`, or
/// `file: keyword: problem` when no single line is to blame (a required
/// keyword is missing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.path, *.line, .keyword.as_deref(), .message))]
pub struct ConfigError {
    /// The configuration file, as given to the parser.
    pub path: PathBuf,
    /// 1-based line number, if one line is to blame.
    pub line: Option<usize>,
    /// The keyword concerned (for an unknown keyword: the word as written,
    /// escaped and shortened). `None` only for [`ErrorKind::Read`].
    pub keyword: Option<String>,
    /// The class of problem.
    pub kind: ErrorKind,
    /// The problem, in words.
    pub message: String,
}

impl ConfigError {
    /// An error on one line.
    pub(crate) fn at(
        path: &Path,
        line: usize,
        keyword: &str,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.to_owned(),
            line: Some(line),
            keyword: Some(keyword.to_owned()),
            kind,
            message: message.into(),
        }
    }

    /// An error about a keyword, with the line if it appeared.
    pub(crate) fn about(
        path: &Path,
        line: Option<usize>,
        keyword: &str,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.to_owned(),
            line,
            keyword: Some(keyword.to_owned()),
            kind,
            message: message.into(),
        }
    }
}

fn render(path: &Path, line: Option<usize>, keyword: Option<&str>, message: &str) -> String {
    let mut s = path.display().to_string();
    if let Some(line) = line {
        s.push(':');
        s.push_str(&line.to_string());
    }
    if let Some(keyword) = keyword {
        s.push_str(": ");
        s.push_str(keyword);
    }
    s.push_str(": ");
    s.push_str(message);
    s
}

/// Longest piece of user text echoed in a message, in characters.
const ECHO_MAX: usize = 64;

/// `text` quoted and escaped for a message, shortened to [`ECHO_MAX`]
/// characters so a garbage line cannot flood a log.
pub(crate) fn quoted(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(ECHO_MAX).collect();
    if chars.next().is_some() {
        format!("{head:?}...")
    } else {
        format!("{head:?}")
    }
}

/// A word from the file shown where a keyword goes: escaped, shortened, not
/// quoted (it is the keyword position of the message).
pub(crate) fn shown_word(word: &str) -> String {
    let mut out = String::new();
    for (i, c) in word.chars().enumerate() {
        if i == 32 {
            out.push_str("...");
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_line() {
        let p = Path::new("/etc/x.conf");
        let e = ConfigError::at(
            p,
            7,
            "tunnel",
            ErrorKind::OutOfRange,
            "mtu 400 out of range (623..=1422)",
        );
        assert_eq!(
            e.to_string(),
            "/etc/x.conf:7: tunnel: mtu 400 out of range (623..=1422)"
        );
        let e = ConfigError::about(p, None, "instance", ErrorKind::Missing, "missing");
        assert_eq!(e.to_string(), "/etc/x.conf: instance: missing");
    }

    #[test]
    fn echoes_are_escaped_and_bounded() {
        assert_eq!(quoted("a\u{0}b"), "\"a\\0b\"");
        let long = "x".repeat(1000);
        assert_eq!(quoted(&long).len(), ECHO_MAX + 2 + 3);
        assert_eq!(shown_word("ab\tc"), "ab\\tc");
        assert_eq!(shown_word(&long).len(), 35);
    }
}
