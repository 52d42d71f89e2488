#![no_main]
//! Hostile datagrams through the shroud envelope: unshrouding never panics,
//! and whatever it accepts lies inside the datagram.

use chantry_core::secret::Key32;
use chantry_core::wire::shroud;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = Key32::new([0x42; 32]);
    let mut buf = data.to_vec();
    if let Ok(r) = shroud::unshroud_in_place(&key, &mut buf) {
        assert!(r.end <= buf.len() && r.len() >= shroud::MIN_INNER);
    }
    let _ = shroud::ShroudHeader::parse(data);
});
