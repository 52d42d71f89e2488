//! The line reader of files.md §1.1, shared by every line-oriented sanctum
//! file.

use std::borrow::Cow;

/// The reference reads lines with `fgets` into a `BUFSIZ` (8192 on glibc)
/// buffer: lines of up to 8191 bytes (newline excluded) are read whole,
/// longer ones would be cut into pieces and misparsed, so they are an
/// error here.
pub const MAX_LINE_LEN: usize = 8191;

/// Bytes of a bad line's first word kept for the error message (it is
/// shortened further when shown; a garbage line may be gigabytes long).
const WORD_ECHO_MAX: usize = 128;

/// One meaningful line: the keyword and its value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// 1-based line number.
    pub number: usize,
    /// The first word (up to the first space or tab).
    pub keyword: &'a str,
    /// The rest with surrounding whitespace removed and tabs turned into
    /// spaces; empty if the keyword stands alone.
    pub value: Cow<'a, str>,
}

/// Why a line could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LexError {
    /// Longer than [`MAX_LINE_LEN`] bytes.
    TooLong(usize),
    /// Contains a NUL byte (the reference would silently cut the line there).
    Nul,
    /// Not valid UTF-8.
    NotUtf8,
}

/// A line that failed, with what can be said about its first word.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadLine {
    /// 1-based line number.
    pub number: usize,
    /// The first word, lossily decoded.
    pub word: String,
    /// What is wrong.
    pub error: LexError,
}

/// `isspace` of the C locale.
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn trim_c_space(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if !is_c_space(*first) {
            break;
        }
        b = rest;
    }
    while let [rest @ .., last] = b {
        if !is_c_space(*last) {
            break;
        }
        b = rest;
    }
    b
}

/// Reads `text` line by line: blank lines and lines whose first
/// non-blank character is `#` are skipped; every other line yields its
/// keyword and value, or a [`BadLine`]. Any line (comments included) longer
/// than [`MAX_LINE_LEN`] is a [`BadLine`]: the reference would cut it and
/// parse the rest as a line of its own.
pub(crate) fn lines(text: &[u8]) -> impl Iterator<Item = Result<Line<'_>, BadLine>> {
    text.split(|&b| b == b'\n')
        .enumerate()
        .filter_map(|(i, raw)| lex(i.saturating_add(1), raw))
}

fn lex(number: usize, raw: &[u8]) -> Option<Result<Line<'_>, BadLine>> {
    let body = trim_c_space(raw);
    let word_end = body
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(body.len());
    let (word, rest) = body.split_at(word_end);
    let bad = |error| {
        Some(Err(BadLine {
            number,
            word: String::from_utf8_lossy(word.get(..WORD_ECHO_MAX).unwrap_or(word)).into_owned(),
            error,
        }))
    };
    if raw.len() > MAX_LINE_LEN {
        return bad(LexError::TooLong(raw.len()));
    }
    if body.is_empty() || body.first() == Some(&b'#') {
        return None;
    }
    if body.contains(&0) {
        return bad(LexError::Nul);
    }
    let (Ok(keyword), Ok(rest)) = (
        std::str::from_utf8(word),
        std::str::from_utf8(trim_c_space(rest)),
    ) else {
        return bad(LexError::NotUtf8);
    };
    let value = if rest.contains('\t') {
        Cow::Owned(rest.replace('\t', " "))
    } else {
        Cow::Borrowed(rest)
    };
    Some(Ok(Line {
        number,
        keyword,
        value,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(usize, String, String)> {
        lines(text.as_bytes())
            .map(|l| {
                let l = l.expect("line lexes");
                (l.number, l.keyword.to_owned(), l.value.into_owned())
            })
            .collect()
    }

    #[test]
    fn comments_blanks_and_whitespace() {
        let got = ok(
            "# c\n\n   \t\n  mode   tunnel  \r\n\tspi\t0x0102\t\n  # also c\ninstance a # not a comment\nx",
        );
        assert_eq!(
            got,
            vec![
                (4, "mode".into(), "tunnel".into()),
                (5, "spi".into(), "0x0102".into()),
                (7, "instance".into(), "a # not a comment".into()),
                (8, "x".into(), "".into()),
            ]
        );
    }

    #[test]
    fn inner_tabs_become_spaces() {
        assert_eq!(
            ok("control /tmp/a\tb\troot"),
            vec![(1, "control".into(), "/tmp/a b root".into())]
        );
    }

    #[test]
    fn long_nul_and_non_utf8_lines() {
        let long = format!("descr {}", "a".repeat(MAX_LINE_LEN - 6));
        assert_eq!(ok(&long).len(), 1);
        let too_long = format!("{long}a\n");
        let e = lines(too_long.as_bytes()).next().unwrap().unwrap_err();
        assert_eq!(
            (e.number, e.word.as_str(), e.error),
            (1, "descr", LexError::TooLong(MAX_LINE_LEN + 1))
        );
        let e = lines(b"\nsecret /a\0b").next().unwrap().unwrap_err();
        assert_eq!((e.number, e.error), (2, LexError::Nul));
        let e = lines(b"secret /\xff").next().unwrap().unwrap_err();
        assert_eq!(e.error, LexError::NotUtf8);
        // A comment may hold anything, but not be too long.
        assert_eq!(lines(b"# \xff\0").count(), 0);
        let long_comment = format!("#{}", " ".repeat(MAX_LINE_LEN));
        let e = lines(long_comment.as_bytes()).next().unwrap().unwrap_err();
        assert_eq!(
            (e.word.as_str(), e.error),
            ("#", LexError::TooLong(MAX_LINE_LEN + 1))
        );
    }
}
