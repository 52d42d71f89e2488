//! Checkers for the data packets sealed by the reference bless and opened by
//! the reference confess (data_packet.json).

use chantry_core::aead::Cipher;
use chantry_core::sa::{ReplayError, RxError, RxSa, RxSlots, TxSa};
use chantry_core::time::Instant;
use chantry_core::wire::data::{self, DataConfig, Header, Next, PAYLOAD_OFFSET, Salt};
use chantry_core::wire::grace::Grace;

use crate::common::{arr, hexa, hexv, key32, load_json, num};

/// Every vector of data_packet.json: our seal gives the reference's exact
/// bytes (header/AAD, nonce, ciphertext, tag), and our receive path opens
/// the reference's packet to what the reference confess delivered.
pub fn data_packet() -> usize {
    let file = load_json("data_packet.json");
    let mut checked = 0;
    for v in arr(&file, "vectors") {
        let note = v["note"].as_str().unwrap_or("?");
        let spi = u32::try_from(num(v, "spi")).expect("spi fits u32");
        let salt: Salt = hexa(v, "salt_wire_bytes");
        let pn = num(v, "pn");
        let (flock_src, flock_dst) = (num(v, "flock_src"), num(v, "flock_dst"));
        let next = Next::from_u8(u8::try_from(num(v, "tail_next")).expect("next fits u8"))
            .expect("known next");
        let tfc = v["tfc"].as_bool().expect("tfc is a bool");
        let tfc_mtu = tfc.then(|| usize::try_from(num(v, "tun_mtu")).expect("tun_mtu fits"));
        let inner = hexv(v, "inner_packet");
        let wire = hexv(v, "wire");
        let body = hexv(v, "plaintext_encrypted_inner_pad_tail");
        assert_eq!(
            wire.len() as u64,
            num(v, "wire_length"),
            "{note}: wire_length"
        );

        // Seal with the bare helpers and compare every byte.
        let sender = DataConfig {
            flock_src,
            flock_dst,
            tfc_mtu,
        };
        let header = sender.header(spi, pn);
        assert_eq!(
            header.to_bytes()[..],
            hexv(v, "aad_header")[..],
            "{note}: header/AAD"
        );
        assert_eq!(
            header.nonce(&salt)[..],
            hexv(v, "nonce")[..],
            "{note}: nonce"
        );
        let mut buf = vec![0u8; data::sealed_len(inner.len(), tfc_mtu).expect("length fits")];
        buf[PAYLOAD_OFFSET..PAYLOAD_OFFSET + inner.len()].copy_from_slice(&inner);
        let cipher = Cipher::new(&key32(v, "session_key"));
        let len = data::seal_in_place(
            &cipher,
            &salt,
            &header,
            next,
            tfc_mtu,
            &mut buf,
            inner.len(),
        )
        .expect("seal");
        assert_eq!(len, wire.len(), "{note}: sealed length");
        assert_eq!(
            hex::encode(&buf[..len]),
            hex::encode(&wire),
            "{note}: sealed packet"
        );

        // A TX SA gives the same packet when its counter is at this pn.
        if pn == 1 {
            let mut tx = TxSa::new(key32(v, "session_key"), spi, salt, Instant::ZERO);
            let mut buf2 = vec![0u8; len];
            buf2[PAYLOAD_OFFSET..PAYLOAD_OFFSET + inner.len()].copy_from_slice(&inner);
            let sealed = tx
                .seal(&sender, Instant::ZERO, next, &mut buf2, inner.len())
                .expect("TX SA seal");
            assert_eq!((sealed.len, sealed.pn), (len, 1), "{note}: TX SA");
            assert_eq!(buf2, wire, "{note}: TX SA packet");
        }

        // The plaintext the reference encrypted (payload, padding, tail).
        let mut opened = wire.clone();
        let parsed = Header::parse(&opened).expect("header parses");
        assert_eq!(parsed, header, "{note}: parsed header");
        let tail = data::open_in_place(&cipher, &salt, &parsed, &mut opened).expect("opens");
        assert_eq!(
            opened[PAYLOAD_OFFSET..len - data::TAG_LEN],
            body[..],
            "{note}: plaintext body"
        );
        assert_eq!(tail.next(), Ok(next), "{note}: tail");

        // Receive as the peer: our flocks are the sender's crossed.
        let receiver = DataConfig {
            flock_src: flock_dst,
            flock_dst: flock_src,
            tfc_mtu,
        };
        let mut rx = RxSlots::new();
        rx.install(RxSa::new(key32(v, "session_key"), spi, salt, Instant::ZERO));
        let mut packet = wire.clone();
        let got = rx
            .open(&receiver, &mut packet)
            .unwrap_or_else(|e| panic!("{note}: open: {e}"));
        assert_eq!(got.spi, spi, "{note}");
        assert_eq!(got.pn, pn, "{note}");
        assert!(got.first_on_sa && !got.promoted, "{note}");
        assert_eq!(
            u64::from(got.next.to_u8()),
            num(v, "decrypted_type"),
            "{note}: decrypted type"
        );
        assert_eq!(
            hex::encode(&packet[got.payload.clone()]),
            hex::encode(hexv(v, "decrypted_by_reference_confess")),
            "{note}: decrypted payload"
        );
        if next == Next::Grace {
            let grace = Grace::parse(&packet[got.payload.clone()]).expect("grace parses");
            assert_eq!(grace.to_vec(), inner, "{note}: grace re-encodes");
        }
        // The same packet again is a replay.
        assert_eq!(
            rx.open(&receiver, &mut wire.clone()),
            Err(RxError::Replay {
                spi,
                pn,
                reason: ReplayError::Duplicate
            }),
            "{note}: replay"
        );
        // With the flocks not crossed it is dropped (unless they are equal).
        if flock_src != flock_dst {
            let mut fresh = RxSlots::new();
            fresh.install(RxSa::new(key32(v, "session_key"), spi, salt, Instant::ZERO));
            assert!(
                matches!(
                    fresh.open(&sender, &mut wire.clone()),
                    Err(RxError::FlockMismatch { .. })
                ),
                "{note}: flock check"
            );
        }
        checked += 1;
    }
    checked
}

/// Sizes of the data-path structs, for struct_sizes.json (filled in with the data path).
pub fn struct_sizes() -> Vec<(&'static str, usize)> {
    use chantry_core::wire::{data, grace};
    vec![
        ("struct sanctum_proto_hdr", data::HEADER_LEN),
        ("struct sanctum_proto_tail", data::TAIL_LEN),
        (
            "struct sanctum_grace",
            grace::Grace::Heartbeat.encoded_len(),
        ),
        (
            "struct sanctum_grace_mtu",
            grace::Grace::MtuAck { size: 0 }.encoded_len(),
        ),
    ]
}
