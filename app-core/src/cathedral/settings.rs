//! The cathedral settings file (files.md §4): flocks with their `allow`
//! entries and ambry bundle, `xflock` pairs, `federate` peers. Bad lines
//! are reported and skipped, never fatal (as in the reference).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use crate::kdf::FLOCK_DOMAIN_MASK;

/// Longest line the reference reads (longer ones are skipped here).
pub const MAX_LINE: usize = 256;
/// Most federation peers.
pub const MAX_FEDERATE: usize = 31;

/// One `allow ID spi N BW` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allow {
    /// Cathedral identity (`cathedral_id` of the device).
    pub identity: u32,
    /// Tunnel owner id the identity may register (`tunnel >> 8`).
    pub owner: u8,
    /// Mbit/s relayed to this identity's tunnels; 0..7 = unlimited.
    pub bandwidth: u32,
}

/// One `flock <id> { ... }` block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlockSettings {
    /// Its allow lines in file order.
    pub allows: Vec<Allow>,
    /// The flock's own ambry bundle.
    pub ambry: Option<PathBuf>,
}

/// A parsed settings file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Flocks by id (domain byte cleared).
    pub flocks: BTreeMap<u64, FlockSettings>,
    /// Cross-flock pairs (ids, domain cleared) with their bundle path.
    pub xflocks: Vec<(u64, u64, PathBuf)>,
    /// Federation peers.
    pub federate: Vec<SocketAddrV4>,
}

/// A skipped line: its number (from 1) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsProblem {
    /// Line number, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Settings {
    /// Is `allow` permitting `identity` to register tunnels owned by
    /// `owner` in `flock_id`? Returns the bandwidth of the first match.
    pub fn allowed(&self, flock_id: u64, identity: u32, owner: u8) -> Option<u32> {
        self.flocks
            .get(&(flock_id & FLOCK_DOMAIN_MASK))?
            .allows
            .iter()
            .find(|a| a.identity == identity && a.owner == owner)
            .map(|a| a.bandwidth)
    }

    /// Is there an `xflock` for the two flocks (either order)?
    pub fn xflock(&self, a: u64, b: u64) -> bool {
        let (a, b) = (a & FLOCK_DOMAIN_MASK, b & FLOCK_DOMAIN_MASK);
        self.xflocks
            .iter()
            .any(|(x, y, _)| (*x == a && *y == b) || (*x == b && *y == a))
    }
}

/// Parses the text of a settings file. Lines that do not parse are
/// skipped and reported; the rest is kept.
pub fn parse_settings(text: &str) -> (Settings, Vec<SettingsProblem>) {
    let mut s = Settings::default();
    let mut problems = Vec::new();
    let mut open: Option<u64> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let mut bad = |message: String| problems.push(SettingsProblem { line, message });
        if raw.len() >= MAX_LINE {
            bad(format!("line longer than {MAX_LINE} bytes"));
            continue;
        }
        let l = raw.replace('\t', " ");
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        match (words[0], open) {
            ("}", Some(_)) if words.len() == 1 => open = None,
            ("flock", None) => match words.as_slice() {
                [_, id, "{"] => match hex(id, 64) {
                    Some(id) => {
                        let id = id & FLOCK_DOMAIN_MASK;
                        s.flocks.entry(id).or_default();
                        open = Some(id);
                    }
                    None => bad(format!("bad flock id `{id}`")),
                },
                _ => bad("expected `flock <hex> {`".into()),
            },
            ("allow", Some(f)) => match words.as_slice() {
                [_, id, "spi", owner, bw] => {
                    match (hex(id, 32), hex(owner, 8), bw.parse::<u32>()) {
                        (Some(identity), Some(owner), Ok(bandwidth)) => {
                            if let Some(fl) = s.flocks.get_mut(&f) {
                                fl.allows.push(Allow {
                                    identity: identity as u32,
                                    owner: owner as u8,
                                    bandwidth,
                                });
                            }
                        }
                        _ => bad("expected `allow <hex32> spi <hex8> <mbit>`".into()),
                    }
                }
                _ => bad("expected `allow <hex32> spi <hex8> <mbit>`".into()),
            },
            ("ambry", Some(f)) => match words.as_slice() {
                [_, path] => {
                    if let Some(fl) = s.flocks.get_mut(&f) {
                        fl.ambry = Some(PathBuf::from(path));
                    }
                }
                _ => bad("expected `ambry <path>`".into()),
            },
            ("xflock", None) => match words.as_slice() {
                [_, a, b, path] => match (hex(a, 64), hex(b, 64)) {
                    (Some(a), Some(b)) => {
                        let (a, b) = (a & FLOCK_DOMAIN_MASK, b & FLOCK_DOMAIN_MASK);
                        if s.flocks.contains_key(&a) && s.flocks.contains_key(&b) {
                            s.xflocks.push((a, b, PathBuf::from(path)));
                        } else {
                            bad("xflock names a flock not defined above".into());
                        }
                    }
                    _ => bad("bad xflock flock id".into()),
                },
                _ => bad("expected `xflock <hex> <hex> <path>`".into()),
            },
            ("federate", None) => match words.as_slice() {
                [_, ip, port] => match (ip.parse::<Ipv4Addr>(), port.parse::<u16>()) {
                    (Ok(ip), Ok(port)) if s.federate.len() < MAX_FEDERATE => {
                        s.federate.push(SocketAddrV4::new(ip, port));
                    }
                    (Ok(_), Ok(_)) => bad(format!("more than {MAX_FEDERATE} federation peers")),
                    _ => bad("expected `federate <ipv4> <port>`".into()),
                },
                _ => bad("expected `federate <ipv4> <port>`".into()),
            },
            (kw @ ("allow" | "ambry"), None) => bad(format!("`{kw}` outside a flock block")),
            (kw, Some(_)) => bad(format!("`{kw}` not allowed inside a flock block")),
            (kw, None) => bad(format!("unknown keyword `{kw}`")),
        }
    }
    if open.is_some() {
        problems.push(SettingsProblem {
            line: text.lines().count(),
            message: "flock block not closed".into(),
        });
    }
    (s, problems)
}

/// Hex with an optional `0x`, at most `bits` wide.
fn hex(s: &str, bits: u32) -> Option<u64> {
    let d = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if d.is_empty() || d.len() > 16 {
        return None;
    }
    let v = u64::from_str_radix(d, 16).ok()?;
    (bits == 64 || v < (1u64 << bits)).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file() {
        let text = "# comment\nfederate 10.0.0.1 4500\nflock cafeba01 {\n\tallow 0badf00d spi 01 80\n\
                    allow 0x2 spi 0x02 0\n ambry /x/bundle\n}\nflock 1100 {\n}\n\
                    xflock cafeba00 1100 /x/xb\n";
        let (s, p) = parse_settings(text);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.federate, vec!["10.0.0.1:4500".parse().unwrap()]);
        let f = &s.flocks[&0xcafe_ba00];
        assert_eq!(f.allows.len(), 2);
        assert_eq!(f.ambry.as_deref(), Some(std::path::Path::new("/x/bundle")));
        assert_eq!(s.allowed(0xcafe_ba05, 0x0bad_f00d, 1), Some(80));
        assert_eq!(s.allowed(0xcafe_ba00, 0x0bad_f00d, 2), None);
        assert_eq!(s.allowed(0xcafe_ba00, 2, 2), Some(0));
        assert!(s.xflock(0x1100, 0xcafe_ba00));
        assert!(!s.xflock(0x1100, 0x2200));
    }

    #[test]
    fn bad_lines_are_skipped_not_fatal() {
        let text = "allow 1 spi 1 1\nflock zz {\nflock 10 {\nallow 1 spi 100 1\nallow 1 spi 2 x\n\
                    federate 1.2.3.4 1\n}\nxflock 10 2000 /p\nbogus\n";
        let (s, p) = parse_settings(text);
        let lines: Vec<usize> = p.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![1, 2, 4, 5, 6, 8, 9]);
        assert!(s.flocks[&0].allows.is_empty());
        assert!(s.federate.is_empty() && s.xflocks.is_empty());
    }
}
