#![no_main]
//! Hostile ambry bundles and AMBRY bodies: parsing and unwrapping never
//! panic, and a parsed bundle re-encodes to the same bytes.

use chantry_core::ambry::{Bundle, Unwrapper};
use chantry_core::secret::Key32;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Bundle::parse(data) {
        assert_eq!(b.to_bytes(), data);
        let kek = Key32::new([1; 32]);
        for e in b.entries.iter().take(4) {
            let u = Unwrapper { base_kek: &kek, flock_src: e.flock, flock_dst: e.flock, tunnel: e.tunnel, current_generation: 0 };
            let _ = u.unwrap(&b.offer_body(e), 1_767_225_600);
        }
    }
    let _ = Bundle::parse_for_pair(data, 0xcafeba00, 0xcafeba00);
});
