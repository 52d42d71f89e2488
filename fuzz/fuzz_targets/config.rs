#![no_main]
//! Hostile bytes through the sanctum.conf parser and the remembrance file:
//! parsing never panics, and whatever is accepted keeps the invariants the
//! daemon relies on.

use chantry_core::config::{Config, InitialPeer, Mode, Mtu, Remembrance};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Config::parse_bytes("fuzz.conf", data) {
        assert!(c.missing_run_lines().is_empty());
        assert!(!c.instance().is_empty());
        let mtu = c.tun_mtu();
        assert!((623..=1500 - c.overhead()).contains(&mtu) || c.mode() == Mode::Liturgy);
        if c.tfc() && c.mode() != Mode::Liturgy {
            assert!(matches!(c.mtu(), Mtu::Fixed(_)));
        }
        if let InitialPeer::Fixed(a) = c.effective_peer() {
            assert!(!a.ip().is_unspecified());
        }
        let _ = (
            c.peer_auto(),
            c.advertised_address(),
            c.cathedral_flock_dst(),
            c.roles_needed(),
        );
    }
    // The same bytes as text, invalid UTF-8 replaced.
    let _ = Config::parse("fuzz.conf", &String::from_utf8_lossy(data));

    if let Some(r) = Remembrance::parse(data) {
        assert!(r.cathedrals().len() <= 32);
        let again = Remembrance::parse(&r.encode());
        assert_eq!(again.as_ref(), Some(&r));
    }
});
