//! The remembrance list: up to 32 cathedral addresses a client may fail
//! over to (behaviour.md §7.3), as carried by a REMEMBRANCE offer and kept
//! on disk in the 192-byte file of files.md §6.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::wire::offer::{REMEMBRANCE_SLOTS, RemembranceBody};

/// Length of the remembrance file: 32 IPv4 addresses then 32 ports.
pub const REMEMBRANCE_FILE_LEN: usize = REMEMBRANCE_SLOTS * 6;

/// Why a remembrance file was not loaded (the reference ignores it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RemembranceFileError {
    /// Fewer than 192 bytes.
    #[error("remembrance file has {0} bytes, need {REMEMBRANCE_FILE_LEN}")]
    TooShort(usize),
}

/// The file form of a REMEMBRANCE body: the wire bytes of the ip list
/// (network order) followed by the port list (network order).
pub fn remembrance_file_bytes(body: &RemembranceBody) -> [u8; REMEMBRANCE_FILE_LEN] {
    let mut out = [0u8; REMEMBRANCE_FILE_LEN];
    let (ips, ports) = out.split_at_mut(REMEMBRANCE_SLOTS * 4);
    for (chunk, ip) in ips.chunks_exact_mut(4).zip(body.ips.iter()) {
        chunk.copy_from_slice(&ip.octets());
    }
    for (chunk, port) in ports.chunks_exact_mut(2).zip(body.ports.iter()) {
        chunk.copy_from_slice(&port.to_be_bytes());
    }
    out
}

/// Parses a remembrance file (trailing bytes beyond 192 are ignored, as
/// the reference reads exactly 192).
pub fn parse_remembrance_file(file: &[u8]) -> Result<RemembranceBody, RemembranceFileError> {
    let bytes: &[u8; REMEMBRANCE_FILE_LEN] = file
        .get(..REMEMBRANCE_FILE_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(RemembranceFileError::TooShort(file.len()))?;
    let (ips, ports) = bytes.split_at(REMEMBRANCE_SLOTS * 4);
    let mut body = RemembranceBody {
        ips: [Ipv4Addr::UNSPECIFIED; REMEMBRANCE_SLOTS],
        ports: [0; REMEMBRANCE_SLOTS],
    };
    for (ip, chunk) in body.ips.iter_mut().zip(ips.chunks_exact(4)) {
        *ip = Ipv4Addr::new(chunk[0], chunk[1], chunk[2], chunk[3]);
    }
    for (port, chunk) in body.ports.iter_mut().zip(ports.chunks_exact(2)) {
        *port = u16::from_be_bytes([chunk[0], chunk[1]]);
    }
    Ok(body)
}

/// The usable entries of a list: those before the first slot whose ip or
/// port is zero (at most 32).
pub fn remembrance_entries(body: &RemembranceBody) -> Vec<SocketAddrV4> {
    body.entries()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_roundtrip_and_layout() {
        let mut body = RemembranceBody {
            ips: [Ipv4Addr::UNSPECIFIED; REMEMBRANCE_SLOTS],
            ports: [0; REMEMBRANCE_SLOTS],
        };
        body.ips[0] = Ipv4Addr::new(10, 99, 0, 254);
        body.ports[0] = 4500;
        body.ips[1] = Ipv4Addr::new(192, 0, 2, 7);
        body.ports[1] = 4600;
        body.ips[3] = Ipv4Addr::new(192, 0, 2, 9);
        body.ports[3] = 1;
        let file = remembrance_file_bytes(&body);
        assert_eq!(file[..8], [10, 99, 0, 254, 192, 0, 2, 7]);
        assert_eq!(file[128..132], [0x11, 0x94, 0x11, 0xf8]);
        let back = parse_remembrance_file(&file).unwrap();
        assert_eq!(back, body);
        // Entries stop at the first empty slot (index 2).
        assert_eq!(
            remembrance_entries(&back),
            vec![
                SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 254), 4500),
                SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), 4600),
            ]
        );
        assert_eq!(
            parse_remembrance_file(&file[..191]),
            Err(RemembranceFileError::TooShort(191))
        );
        let mut longer = file.to_vec();
        longer.push(0xff);
        assert_eq!(parse_remembrance_file(&longer).unwrap(), body);
    }
}
