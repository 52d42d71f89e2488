//! Parsers for the argument syntaxes of files.md §1.2. Each returns a
//! [`Problem`] (kind and words) that the caller places at a line and keyword.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::error::{ErrorKind, quoted};
use super::types::{Ipv4Net, Mtu};

/// A problem with a value, not yet tied to a file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub kind: ErrorKind,
    pub message: String,
}

impl Problem {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidValue,
            message: message.into(),
        }
    }

    pub(crate) fn range(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::OutOfRange,
            message: message.into(),
        }
    }
}

pub(crate) type Parsed<T> = Result<T, Problem>;

/// Smallest tunnel MTU: the size of an offer (623 bytes), which must fit
/// in one packet.
pub const MTU_MIN: u16 = 623;
/// Largest MTU of the underlying path the MTU math assumes.
pub const PATH_MTU: u16 = 1500;
/// Per-datagram overhead: IPv4 20 + UDP 8 + header 32 + tail 2 + tag 16.
pub const OVERHEAD: u16 = 78;
/// Overhead with shroud: [`OVERHEAD`] + shroud header 48 + trailer 1.
pub const SHROUD_OVERHEAD: u16 = 127;
/// Largest tunnel MTU without shroud (also the `auto` starting value).
pub const MTU_MAX: u16 = PATH_MTU - OVERHEAD;
/// Largest tunnel MTU with shroud (also the `auto` starting value).
pub const SHROUD_MTU_MAX: u16 = PATH_MTU - SHROUD_OVERHEAD;

/// The value as a single word, or an error naming the extra text.
pub(crate) fn one_word(value: &str) -> Parsed<&str> {
    match value.split_once(' ') {
        None => Ok(value),
        Some((word, rest)) => Err(Problem::invalid(format!(
            "unexpected text {} after {}",
            quoted(rest.trim_start()),
            quoted(word)
        ))),
    }
}

/// Hex number of at most `bits` bits, `0x`/`0X` optional (the reference's
/// `%x`, without its silent truncation and trailing garbage).
pub(crate) fn hex(value: &str, bits: u32) -> Parsed<u64> {
    let word = one_word(value)?;
    let digits = word
        .strip_prefix("0x")
        .or_else(|| word.strip_prefix("0X"))
        .unwrap_or(word);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Problem::invalid(format!(
            "{} is not a hex number (expected a {bits}-bit hex value, 0x optional)",
            quoted(word)
        )));
    }
    let significant = digits.trim_start_matches('0');
    let max = u64::MAX.checked_shr(64 - bits).unwrap_or(0);
    match u64::from_str_radix(
        if significant.is_empty() {
            "0"
        } else {
            significant
        },
        16,
    ) {
        Ok(v) if v <= max && significant.len() <= 16 => Ok(v),
        _ => Err(Problem::range(format!(
            "{} does not fit in {bits} bits (at most {max:#x})",
            quoted(word)
        ))),
    }
}

/// Decimal number in `min..=max` (the reference's `%hu`, strictly).
pub(crate) fn decimal(value: &str, what: &str, min: u64, max: u64) -> Parsed<u64> {
    let word = one_word(value)?;
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::invalid(format!(
            "{what} {} is not a decimal number",
            quoted(word)
        )));
    }
    let significant = word.trim_start_matches('0');
    match significant.parse::<u64>() {
        _ if significant.is_empty() && min == 0 => Ok(0),
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(Problem::range(format!(
            "{what} {} out of range ({min}..={max})",
            shown_number(word)
        ))),
    }
}

/// A number from the file for a range message: as written, shortened.
fn shown_number(word: &str) -> String {
    let w = word.trim_start_matches('0');
    let w = if w.is_empty() { "0" } else { w };
    if w.len() > 20 {
        format!("{}...", &w[..20])
    } else {
        w.to_owned()
    }
}

/// Dotted-quad IPv4 address (the reference's `inet_pton`: exactly four
/// decimal octets, no leading zeros).
pub(crate) fn ipv4(text: &str) -> Parsed<Ipv4Addr> {
    text.parse::<Ipv4Addr>()
        .map_err(|_| Problem::invalid(format!("invalid IPv4 address {}", quoted(text))))
}

/// `<ipv4>/<prefix>`.
pub(crate) fn ipv4_net(value: &str) -> Parsed<Ipv4Net> {
    let word = one_word(value)?;
    let Some((ip, prefix)) = word.split_once('/') else {
        return Err(Problem::invalid(format!(
            "{} has no /prefix (expected <ipv4>/<prefix>)",
            quoted(word)
        )));
    };
    let ip = ipv4(ip)?;
    let prefix = decimal(prefix, "prefix length", 0, 32)?;
    u8::try_from(prefix)
        .ok()
        .and_then(|p| Ipv4Net::new(ip, p))
        .ok_or_else(|| Problem::range(format!("prefix length {prefix} out of range (0..=32)")))
}

/// `<ipv4>:<port>`, port 0..=65535.
pub(crate) fn ipv4_port(value: &str) -> Parsed<SocketAddrV4> {
    let word = one_word(value)?;
    let Some((ip, port)) = word.split_once(':') else {
        return Err(Problem::invalid(format!(
            "{} has no :port (expected <ipv4>:<port>)",
            quoted(word)
        )));
    };
    let ip = ipv4(ip)?;
    Ok(SocketAddrV4::new(ip, port_number(port)?))
}

/// A decimal UDP port, 0..=65535.
pub(crate) fn port_number(text: &str) -> Parsed<u16> {
    let port = decimal(text, "port", 0, u64::from(u16::MAX))?;
    u16::try_from(port).map_err(|_| Problem::range(format!("port {port} out of range (0..=65535)")))
}

/// One of two words, for the yes/no and on/off switches.
pub(crate) fn switch(value: &str, on: &str, off: &str) -> Parsed<bool> {
    match value {
        v if v == on => Ok(true),
        v if v == off => Ok(false),
        v => Err(Problem::invalid(format!(
            "{} is neither `{on}` nor `{off}`",
            quoted(v)
        ))),
    }
}

/// `instance`/`descr` names: `[A-Za-z0-9-]`, at most 31 characters (the
/// reference's 32-byte buffer).
pub(crate) fn label(value: &str) -> Parsed<String> {
    if let Some(c) = value
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
    {
        return Err(Problem::invalid(format!(
            "{} contains {c:?}; only letters, digits and '-' are allowed",
            quoted(value)
        )));
    }
    if value.len() > 31 {
        return Err(Problem::range(format!(
            "{} is {} characters long (at most 31)",
            quoted(value),
            value.len()
        )));
    }
    Ok(value.to_owned())
}

/// A user name for `run` and `control`: 1..=31 bytes (the reference's
/// `%31s`, which would silently truncate), printable ASCII, no `:` or `/`,
/// not starting with `-`.
pub(crate) fn user(text: &str) -> Parsed<String> {
    if text.len() > 31 {
        return Err(Problem::range(format!(
            "user name {} is {} bytes long (at most 31)",
            quoted(text),
            text.len()
        )));
    }
    let bad = |c: char| !c.is_ascii_graphic() || c == ':' || c == '/';
    if text.is_empty() || text.starts_with('-') || text.chars().any(bad) {
        return Err(Problem::invalid(format!(
            "invalid user name {}",
            quoted(text)
        )));
    }
    Ok(text.to_owned())
}

/// Largest interface name (Linux `IFNAMSIZ` - 1).
pub const IFNAME_MAX: usize = 15;

/// A network interface name as Linux accepts it (`dev_valid_name`): 1..=15
/// bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub(crate) fn ifname(value: &str) -> Parsed<String> {
    if value.len() > IFNAME_MAX {
        return Err(Problem::range(format!(
            "interface name {} is {} bytes long (at most {IFNAME_MAX})",
            quoted(value),
            value.len()
        )));
    }
    let bad = |c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control();
    if value == "." || value == ".." || value.chars().any(bad) {
        return Err(Problem::invalid(format!(
            "invalid interface name {}",
            quoted(value)
        )));
    }
    Ok(value.to_owned())
}

/// Host name or IPv4 literal of a `cathedral` line: 1..=253 characters of
/// `[A-Za-z0-9._-]`.
pub(crate) fn host(text: &str) -> Parsed<String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if text.is_empty() || text.len() > 253 || !text.chars().all(ok) {
        return Err(Problem::invalid(format!(
            "invalid host {} (expected an IPv4 address or host name)",
            quoted(text)
        )));
    }
    Ok(text.to_owned())
}

/// The MTU of a `tunnel` line or `cathedral_mtu`: `auto` (if allowed) or a
/// number in [`MTU_MIN`]..=[`MTU_MAX`] (shroud, which lowers the maximum,
/// is checked once the whole file is read).
pub(crate) fn mtu(text: &str, allow_auto: bool) -> Parsed<Mtu> {
    if allow_auto && text == "auto" {
        return Ok(Mtu::Auto);
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        let expected = if allow_auto {
            "a number or `auto`"
        } else {
            "a number"
        };
        return Err(Problem::invalid(format!(
            "mtu {} is not {expected}",
            quoted(text)
        )));
    }
    let value = decimal(text, "mtu", u64::from(MTU_MIN), u64::from(MTU_MAX))?;
    u16::try_from(value)
        .map(Mtu::Fixed)
        .map_err(|_| Problem::range(format!("mtu {value} out of range")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn msg<T: core::fmt::Debug>(r: Parsed<T>) -> String {
        r.unwrap_err().message
    }

    #[test]
    fn hex_numbers() {
        assert_eq!(hex("0x0102", 16), Ok(0x0102));
        assert_eq!(hex("0102", 16), Ok(0x0102));
        assert_eq!(hex("0XfE", 16), Ok(0xfe));
        assert_eq!(hex("0x00000000000000000000ff", 8), Ok(0xff));
        assert_eq!(hex("ffffffffffffffff", 64), Ok(u64::MAX));
        assert_eq!(
            msg(hex("0x10000", 16)),
            "\"0x10000\" does not fit in 16 bits (at most 0xffff)"
        );
        assert_eq!(
            msg(hex("1ffffffffffffffff", 64)),
            "\"1ffffffffffffffff\" does not fit in 64 bits (at most 0xffffffffffffffff)"
        );
        assert_eq!(
            msg(hex("0xzz", 16)),
            "\"0xzz\" is not a hex number (expected a 16-bit hex value, 0x optional)"
        );
        assert!(hex("0x", 16).is_err());
        assert!(hex("+12", 16).is_err());
        assert!(hex("-1", 32).is_err());
        assert_eq!(msg(hex("12 34", 16)), "unexpected text \"34\" after \"12\"");
    }

    #[test]
    fn decimals() {
        assert_eq!(decimal("4501", "port", 0, 65535), Ok(4501));
        assert_eq!(decimal("0", "port", 0, 65535), Ok(0));
        assert_eq!(decimal("000", "port", 0, 65535), Ok(0));
        assert_eq!(
            msg(decimal("65536", "port", 0, 65535)),
            "port 65536 out of range (0..=65535)"
        );
        assert_eq!(
            msg(decimal(&"9".repeat(40), "port", 0, 65535)),
            "port 99999999999999999999... out of range (0..=65535)"
        );
        assert_eq!(
            msg(decimal("+5", "port", 0, 65535)),
            "port \"+5\" is not a decimal number"
        );
        assert_eq!(
            msg(decimal("0", "mtu", 623, 1422)),
            "mtu 0 out of range (623..=1422)"
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(ipv4_net("10.0.0.1/30").unwrap().to_string(), "10.0.0.1/30");
        assert_eq!(
            msg(ipv4_net("10.0.0.1")),
            "\"10.0.0.1\" has no /prefix (expected <ipv4>/<prefix>)"
        );
        assert_eq!(
            msg(ipv4_net("10.0.0.1/33")),
            "prefix length 33 out of range (0..=32)"
        );
        assert_eq!(
            msg(ipv4_net("10.0.0.1/")),
            "prefix length \"\" is not a decimal number"
        );
        assert_eq!(
            msg(ipv4_net("10.0.0.300/24")),
            "invalid IPv4 address \"10.0.0.300\""
        );
        assert!(ipv4("010.0.0.1").is_err());
        assert!(ipv4("::1").is_err());
        assert_eq!(
            ipv4_port("1.2.3.4:4500").unwrap(),
            "1.2.3.4:4500".parse().unwrap()
        );
        assert_eq!(
            msg(ipv4_port("1.2.3.4")),
            "\"1.2.3.4\" has no :port (expected <ipv4>:<port>)"
        );
        assert_eq!(
            msg(ipv4_port("1.2.3.4:99999")),
            "port 99999 out of range (0..=65535)"
        );
        assert!(ipv4_port("1.2.3.4:1:2").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(label("hymn-01-02"), Ok("hymn-01-02".into()));
        assert_eq!(
            msg(label("a_b")),
            "\"a_b\" contains '_'; only letters, digits and '-' are allowed"
        );
        assert_eq!(
            msg(label(&"a".repeat(32))),
            format!(
                "{} is 32 characters long (at most 31)",
                quoted(&"a".repeat(32))
            )
        );
        assert!(user("_sanctum").is_ok());
        assert!(user("-x").is_err());
        assert!(user("a:b").is_err());
        assert!(ifname("br0").is_ok());
        assert!(ifname("..").is_err());
        assert!(ifname("br 0").is_err());
        assert!(ifname("abcdefghijklmnop").is_err());
        assert!(host("cathedral.example.org").is_ok());
        assert!(host("").is_err());
        assert!(host("a b").is_err());
    }

    #[test]
    fn mtus() {
        assert_eq!(mtu("auto", true), Ok(Mtu::Auto));
        assert_eq!(msg(mtu("auto", false)), "mtu \"auto\" is not a number");
        assert_eq!(mtu("1422", true), Ok(Mtu::Fixed(1422)));
        assert_eq!(msg(mtu("400", true)), "mtu 400 out of range (623..=1422)");
        assert_eq!(msg(mtu("1423", true)), "mtu 1423 out of range (623..=1422)");
        assert_eq!(
            msg(mtu("70000", true)),
            "mtu 70000 out of range (623..=1422)"
        );
        assert_eq!(
            msg(mtu("12a", true)),
            "mtu \"12a\" is not a number or `auto`"
        );
    }
}
