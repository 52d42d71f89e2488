//! The client's remembrance file (files.md §6): the cathedral list, exactly
//! the body of a REMEMBRANCE offer.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use super::keyfile::{KeyFileError, open_regular};

/// Slots in a remembrance list.
pub const MAX_CATHEDRALS: usize = 32;
/// Size of the file: 32 IPv4 addresses then 32 ports, network order.
pub const REMEMBRANCE_LEN: usize = MAX_CATHEDRALS * 6;

/// Offset of the port list.
const PORTS_AT: usize = MAX_CATHEDRALS * 4;

/// A list of up to 32 cathedral addresses, none with a zero address or
/// port.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Remembrance {
    cathedrals: Vec<SocketAddrV4>,
}

impl Remembrance {
    /// `None` if there are more than [`MAX_CATHEDRALS`] entries or one has
    /// a zero address or port (it would end the list when read back).
    pub fn new(cathedrals: &[SocketAddrV4]) -> Option<Self> {
        let ok = cathedrals.len() <= MAX_CATHEDRALS
            && cathedrals
                .iter()
                .all(|c| !c.ip().is_unspecified() && c.port() != 0);
        ok.then(|| Self {
            cathedrals: cathedrals.to_vec(),
        })
    }

    /// Reads the list from file (or offer body) bytes: `None` if there are
    /// fewer than [`REMEMBRANCE_LEN`] bytes (the daemon then ignores the
    /// file); bytes after the first 192 are ignored, and so are the entries
    /// from the first one whose address or port is zero.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let body = bytes.get(..REMEMBRANCE_LEN)?;
        let (ips, ports) = body.split_at(PORTS_AT);
        let cathedrals = ips
            .chunks_exact(4)
            .zip(ports.chunks_exact(2))
            .map_while(|(ip, port)| {
                let ip = Ipv4Addr::from(<[u8; 4]>::try_from(ip).ok()?);
                let port = u16::from_be_bytes(<[u8; 2]>::try_from(port).ok()?);
                (!ip.is_unspecified() && port != 0).then_some(SocketAddrV4::new(ip, port))
            })
            .collect();
        Some(Self { cathedrals })
    }

    /// The 192-byte file form; unused slots are zero.
    pub fn encode(&self) -> [u8; REMEMBRANCE_LEN] {
        let mut out = [0u8; REMEMBRANCE_LEN];
        let (ips, ports) = out.split_at_mut(PORTS_AT);
        for ((c, ip), port) in self
            .cathedrals
            .iter()
            .zip(ips.chunks_exact_mut(4))
            .zip(ports.chunks_exact_mut(2))
        {
            ip.copy_from_slice(&c.ip().octets());
            port.copy_from_slice(&c.port().to_be_bytes());
        }
        out
    }

    /// The cathedrals, in order (failover walks them from the first).
    pub fn cathedrals(&self) -> &[SocketAddrV4] {
        &self.cathedrals
    }
}

/// Loads the remembrance file with the key-file open rules (regular file,
/// no symlink). A file shorter than 192 bytes is
/// [`KeyFileError::TooShort`] (the daemon logs and ignores it).
pub fn load_remembrance_file(path: &Path) -> Result<Remembrance, KeyFileError> {
    let (file, meta) = open_regular(path)?;
    let mut bytes = Vec::with_capacity(REMEMBRANCE_LEN);
    file.take(REMEMBRANCE_LEN as u64)
        .read_to_end(&mut bytes)
        .map_err(|source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        })?;
    Remembrance::parse(&bytes).ok_or(KeyFileError::TooShort {
        path: path.to_owned(),
        have: meta.len().min(bytes.len() as u64),
        need: REMEMBRANCE_LEN,
    })
}

/// Writes a remembrance body (as received, so the bytes are kept exactly)
/// the way the daemon does: created with mode 0400 if new, truncated
/// otherwise.
pub fn store_remembrance_file(path: &Path, body: &[u8; REMEMBRANCE_LEN]) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o400);
    }
    let mut file = options.open(path)?;
    file.write_all(body)?;
    file.flush()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddrV4 {
        s.parse().expect("test address")
    }

    #[test]
    fn layout_is_ips_then_ports() {
        let r = Remembrance::new(&[addr("1.2.3.4:4500"), addr("10.0.0.1:258")]).expect("valid");
        let b = r.encode();
        assert_eq!(&b[..8], &[1, 2, 3, 4, 10, 0, 0, 1]);
        assert!(b[8..128].iter().all(|&x| x == 0));
        assert_eq!(&b[128..132], &[0x11, 0x94, 0x01, 0x02]);
        assert!(b[132..].iter().all(|&x| x == 0));
        assert_eq!(Remembrance::parse(&b), Some(r));
    }

    #[test]
    fn stops_at_first_zero_ip_or_port() {
        let mut b = Remembrance::new(&[addr("1.1.1.1:1"), addr("2.2.2.2:2"), addr("3.3.3.3:3")])
            .unwrap()
            .encode();
        b[129 + 2] = 0; // port of entry 1 -> 0x0000
        assert_eq!(
            Remembrance::parse(&b).unwrap().cathedrals(),
            &[addr("1.1.1.1:1")]
        );
        let mut b = Remembrance::new(&[addr("1.1.1.1:1"), addr("2.2.2.2:2")])
            .unwrap()
            .encode();
        b[0..4].copy_from_slice(&[0, 0, 0, 0]);
        assert!(Remembrance::parse(&b).unwrap().cathedrals().is_empty());
    }

    #[test]
    fn full_list_and_lengths() {
        let all: Vec<SocketAddrV4> = (1..=32u8)
            .map(|i| SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, i), 4500))
            .collect();
        let r = Remembrance::new(&all).unwrap();
        let mut b = r.encode().to_vec();
        b.extend_from_slice(b"trailing bytes are ignored");
        assert_eq!(Remembrance::parse(&b).unwrap().cathedrals(), all.as_slice());
        assert_eq!(Remembrance::parse(&b[..191]), None);
        assert_eq!(Remembrance::parse(&[]), None);
        let mut more = all.clone();
        more.push(addr("9.9.9.9:9"));
        assert!(Remembrance::new(&more).is_none());
        assert!(Remembrance::new(&[addr("0.0.0.0:1")]).is_none());
        assert!(Remembrance::new(&[addr("1.1.1.1:0")]).is_none());
    }
}
