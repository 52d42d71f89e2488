//! Hostile bytes into the grace parser (a decrypted payload with next =
//! 0xFC): it must never panic, and what it accepts must re-encode to the
//! same header.
#![no_main]

use chantry_core::wire::grace::{self, Grace};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    let Ok(g) = Grace::parse(payload) else { return };
    match g {
        Grace::Heartbeat => assert_eq!(payload[..2], [1, 0]),
        Grace::MtuProbe { size } => {
            let _ = grace::probe_acceptable(size, 1422);
            let mut out = vec![0u8; usize::from(size)];
            if let Ok(n) = g.write(&mut out) {
                assert_eq!(n, usize::from(size));
                assert_eq!(out[..4], payload[..4]);
            }
        }
        Grace::MtuAck { size } => {
            let _ = grace::ack_acceptable(size);
            assert_eq!(g.to_vec()[..], payload[..4]);
        }
    }
});
