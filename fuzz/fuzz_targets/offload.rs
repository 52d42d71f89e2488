//! Hostile bytes through TUN offload: a virtio-net header and packet into
//! `gso::split` (what a local program can make the kernel hand over), and
//! packets into the GRO coalescer (a peer's decrypted traffic). Neither may
//! panic; every segment must fit the scratch buffer, and the coalescer
//! never writes more packets than it was given.
#![no_main]

use chantry_core::offload::gro::Coalescer;
use chantry_core::offload::{VNET_HDR_LEN, VnetHdr, gso};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let Ok(hdr) = VnetHdr::parse(rest) else { return };
        let mut packet = rest[VNET_HDR_LEN..].to_vec();
        let mut segment = vec![0u8; 1500];
        let mut seen = 0;
        let n = gso::split(&hdr, &mut packet, &mut segment, |s| {
            assert!(s.len() <= 1500 || s.len() == rest.len() - VNET_HDR_LEN);
            seen += 1;
        });
        if let Ok(n) = n {
            assert_eq!(n, seen);
        }
    } else {
        let mut c = Coalescer::new(usize::from(mode >> 4));
        let mut written = 0u64;
        let mut write = |f: &[u8]| {
            assert!(f.len() >= VNET_HDR_LEN);
            written += 1;
        };
        // Packets separated by a length byte.
        let mut rest = rest;
        while let Some((&len, tail)) = rest.split_first() {
            let n = usize::from(len).min(tail.len());
            let mut frame = vec![0u8; VNET_HDR_LEN];
            frame.extend_from_slice(&tail[..n]);
            c.push(&mut frame, &mut write);
            rest = &tail[n..];
        }
        c.flush(&mut write);
        assert!(written <= c.stats().packets_in);
        assert_eq!(written, c.stats().packets_out);
    }
});
