#![no_main]
//! Offers from hostile bytes: the header parser, `Offer::open` under a
//! fixed key, `Offer::body` of fuzzer-built plaintexts, and the key
//! exchange and shrine fed both raw bytes and fuzzer plaintexts sealed
//! under the right key (so the state machine itself is reached, not only
//! the AEAD check). Nothing may panic.

use chantry_core::entropy::SeededEntropy;
use chantry_core::exchange::{ExchangeConfig, KeyExchange};
use chantry_core::kdf::{self, OfferLabel};
use chantry_core::pilgrim::Shrine;
use chantry_core::secret::Key32;
use chantry_core::time::{Instant, Now};
use chantry_core::wire::offer::{DATA_LEN, EXTRA_LEN, Magic, Offer, OfferHeader, TIMESTAMP_WINDOW};
use libfuzzer_sys::fuzz_target;

/// Bytes of fuzzer input that make one plaintext offer: data and extra.
const PLAIN_LEN: usize = DATA_LEN + EXTRA_LEN;

const MAGICS: [Magic; 4] = [
    Magic::Sacrament,
    Magic::Katedral,
    Magic::Ciborium,
    Magic::Catacomb,
];

fn secret() -> Key32 {
    Key32::new([0x5a; 32])
}

/// An offer whose data and extra parts are `chunk` (zero-padded), with a
/// SACRAMNT header whose SPI and seed come from the chunk too; a non-zero
/// `offer_type` overrides the type byte.
fn offer_from(chunk: &[u8], offer_type: u8) -> Offer {
    let mut plain = [0u8; PLAIN_LEN];
    let n = chunk.len().min(PLAIN_LEN);
    plain[..n].copy_from_slice(&chunk[..n]);
    let mut data = [0u8; DATA_LEN];
    data.copy_from_slice(&plain[..DATA_LEN]);
    if offer_type != 0 {
        data[0] = offer_type;
    }
    if offer_type == 6 {
        // A valid state (PK/CT) and fragment index, so every chunk reaches
        // the fragment logic; bad values are covered by the decode above.
        data[25] = 1 + (data[25] & 1);
        data[26] &= 3;
    }
    let mut extra = [0u8; EXTRA_LEN];
    extra.copy_from_slice(&plain[DATA_LEN..]);
    let mut seed = [0u8; 64];
    seed.copy_from_slice(&extra);
    let spi = u32::from_be_bytes([data[9], data[10], data[11], data[12]]);
    Offer::from_parts(
        OfferHeader::new(Magic::Sacrament, 0, 0, spi, seed),
        data,
        extra,
    )
}

fuzz_target!(|input: &[u8]| {
    // The parsers on raw bytes.
    let _ = OfferHeader::parse(input);
    let fixed = Key32::new([0x11; 32]);
    if let Ok(o) = Offer::open(input, &fixed) {
        let _ = o.body();
    }

    // Body decoding of arbitrary plaintext under every magic.
    for (i, chunk) in input.chunks(PLAIN_LEN).take(8).enumerate() {
        let mut o = offer_from(chunk, 0);
        let mut h = *o.header();
        h.magic = MAGICS[i % MAGICS.len()];
        o.set_header(h);
        let _ = o.body();
        let _ = o.offer_type();
        let _ = o.check_timestamp(o.timestamp(), TIMESTAMP_WINDOW);
        let key = Key32::new([i as u8; 32]);
        let sealed = o.seal(&key);
        let back = Offer::open(&sealed, &key).expect("own seal opens");
        assert_eq!(back.data(), o.data());
    }

    // The exchange: raw bytes, then each chunk as an authentic EXCHANGE
    // offer (timestamp accepted), polling in between; the same chunk as a
    // KEY offer at a shrine.
    let mut rng = SeededEntropy::from_u64(u64::from(input.first().copied().unwrap_or(0)));
    let mut x = KeyExchange::with_instance_id(ExchangeConfig::default(), secret(), 0x1111);
    x.set_peer_known(true);
    let mut shrine = Shrine::new(secret());
    let mut mono = Instant::from_secs(100);
    let _ = x.handle_offer(input, Now::new(mono, 1_767_225_600), &mut rng);
    for chunk in input.chunks(PLAIN_LEN).take(16) {
        let o = offer_from(chunk, 6);
        let now = Now::new(mono, o.timestamp());
        let seed = o.header().seed;
        let sacrament = kdf::offer_key(&secret(), OfferLabel::Sacrament, &seed, 0, 0);
        let _ = x.handle_offer(&o.seal(&sacrament), now, &mut rng);
        let k = offer_from(chunk, 1);
        let pilgrimage = kdf::offer_key(&secret(), OfferLabel::Pilgrimage, &seed, 0, 0);
        let _ = shrine.handle_offer(&k.seal(&pilgrimage), now);
        x.poll(now, &mut rng);
        while x.poll_transmit().is_some() {}
        while x.poll_key().is_some() {}
        while x.poll_event().is_some() {}
        let _ = x.next_deadline();
        mono += core::time::Duration::from_millis(700);
    }
});
