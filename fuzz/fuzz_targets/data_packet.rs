//! Hostile bytes into the data packet header parser and into a tunnel's
//! receive side (RxSlots with a fixed active and pending key), plus a
//! seal/open round trip of fuzzer-chosen payloads that reaches the tail and
//! TFC paths only authenticated packets get to.
#![no_main]

use chantry_core::sa::{RxError, RxSa, RxSlots, TxSa};
use chantry_core::secret::Key32;
use chantry_core::time::Instant;
use chantry_core::wire::data::{self, DataConfig, HEADER_LEN, Header, Next, PAYLOAD_OFFSET};
use libfuzzer_sys::fuzz_target;

const ACTIVE_SPI: u32 = 0x0102_0304;
const PENDING_SPI: u32 = 0x0506_0708;
const SALT: [u8; 4] = [0x94, 0x90, 0xb1, 0x92];

fn slots() -> RxSlots {
    let mut rx = RxSlots::new();
    rx.install(RxSa::new(
        Key32::new([0x11; 32]),
        ACTIVE_SPI,
        SALT,
        Instant::ZERO,
    ));
    rx.install(RxSa::new(
        Key32::new([0x22; 32]),
        PENDING_SPI,
        SALT,
        Instant::ZERO,
    ));
    rx
}

/// The raw input as a received datagram.
fn hostile(input: &[u8], cfg: &DataConfig) {
    if let Ok(h) = Header::parse(input) {
        assert!(input.len() >= data::MIN_PACKET_LEN);
        assert_eq!(h.to_bytes()[..], input[..HEADER_LEN], "header round trip");
    }
    let mut packet = input.to_vec();
    match slots().open(cfg, &mut packet) {
        // Forging a tag is not expected; if the fuzzer does, the range must
        // still be inside the packet.
        Ok(r) => assert!(r.payload.end <= packet.len()),
        Err(RxError::Malformed(_)) => assert!(Header::parse(input).is_err()),
        Err(_) => {}
    }
}

/// `input[0]` picks next/TFC/SA, the rest is a payload sealed under the
/// fixed key and opened again.
fn roundtrip(control: u8, payload: &[u8]) {
    let tfc_mtu = (control & 1 != 0).then_some(usize::from(control >> 2) * 8);
    let next = if control & 2 != 0 {
        Next::Grace
    } else {
        Next::Traffic
    };
    let sender = DataConfig {
        flock_src: 7,
        flock_dst: 9,
        tfc_mtu,
    };
    let receiver = DataConfig {
        flock_src: 9,
        flock_dst: 7,
        tfc_mtu,
    };
    let mut tx = TxSa::new(Key32::new([0x11; 32]), ACTIVE_SPI, SALT, Instant::ZERO);
    let Some(len) = data::sealed_len(payload.len(), tfc_mtu) else {
        return;
    };
    let mut buf = vec![0u8; len];
    buf[PAYLOAD_OFFSET..PAYLOAD_OFFSET + payload.len()].copy_from_slice(payload);
    let Ok(sealed) = tx.seal(&sender, Instant::ZERO, next, &mut buf, payload.len()) else {
        panic!("seal into a sealed_len buffer failed")
    };
    assert_eq!(sealed.len, len);
    let mut rx = slots();
    match rx.open(&receiver, &mut buf) {
        Ok(r) => {
            assert_eq!(
                (r.pn, r.next, r.promoted, r.first_on_sa),
                (1, next, false, true)
            );
            // The payload with its TFC padding; traffic may be trimmed.
            let mut padded = payload.to_vec();
            padded.resize(data::padded_len(payload.len(), tfc_mtu), 0);
            let got = &buf[r.payload.clone()];
            if tfc_mtu.is_none() || next == Next::Grace {
                assert_eq!(got, &padded[..]);
            } else {
                assert_eq!(got, &padded[..got.len()]);
            }
        }
        // Only TFC traffic whose "IPv4 length" does not fit may be refused.
        Err(e) => assert!(
            matches!(e, RxError::BadTfc { .. }) && tfc_mtu.is_some() && next == Next::Traffic,
            "{e}"
        ),
    }
}

fuzz_target!(|input: &[u8]| {
    hostile(input, &DataConfig::default());
    hostile(
        input,
        &DataConfig {
            flock_src: 0,
            flock_dst: 0,
            tfc_mtu: Some(1300),
        },
    );
    if let Some((&control, payload)) = input.split_first() {
        roundtrip(control, payload);
    }
});
