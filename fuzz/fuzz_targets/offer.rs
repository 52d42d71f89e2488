#![no_main]
//! Hostile offers: header parsing, authenticated open under a fixed key,
//! typed decoding of arbitrary plaintext, and the key exchange's handler.

use chantry_core::entropy::SeededEntropy;
use chantry_core::exchange::{ExchangeConfig, KeyExchange};
use chantry_core::secret::Key32;
use chantry_core::time::{Instant, Now};
use chantry_core::wire::offer::{self, Offer, OfferHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = Key32::new([3; 32]);
    let _ = offer::classify(data);
    if let Ok(h) = OfferHeader::parse(data) {
        assert_eq!(&h.to_bytes()[..], &data[..offer::HEADER_LEN]);
    }
    let _ = Offer::open(data, &key);
    if data.len() >= offer::HEADER_LEN + offer::DATA_LEN {
        if let Ok(h) = OfferHeader::parse(data) {
            let mut d = [0u8; offer::DATA_LEN];
            d.copy_from_slice(&data[offer::HEADER_LEN..offer::HEADER_LEN + offer::DATA_LEN]);
            let o = Offer::from_parts(h, d, [0; offer::EXTRA_LEN]);
            let _ = o.body();
        }
    }
    let mut ex = KeyExchange::with_instance_id(ExchangeConfig::default(), key, 1);
    ex.set_peer_known(true);
    let mut rng = SeededEntropy::from_u64(0);
    let _ = ex.handle_offer(data, Now::new(Instant::from_secs(1), 1_767_225_600), &mut rng);
});
