//! shroud.json and struct_sizes.json.

use chantry_core::kdf;
use chantry_core::wire::offer::{self, OfferBody};
use chantry_core::wire::shroud::{self, ShroudHeader};

use crate::common::*;

pub fn shroud() -> usize {
    let j = load_json("shroud.json");
    let mut n = 0;
    for v in arr(&j, "shroud_keys") {
        let (fs, fd) = (num(v, "cathedral_flock"), num(v, "cathedral_flock_dst"));
        let peer = kdf::peer_shroud_key(&key32(v, "shared_secret"), fs, fd);
        assert_eq!(peer.expose(), &hexa::<32>(v, "peer_shroud_key"));
        let cath = kdf::cathedral_shroud_key(&key32(v, "cathedral_secret"), fs, fd);
        assert_eq!(cath.expose(), &hexa::<32>(v, "cathedral_shroud_key"));
        n += 1;
    }
    for v in arr(&j, "identities") {
        let base = kdf::shroud_base_identity(
            num(v, "cathedral_flock"),
            num(v, "cathedral_flock_dst"),
            num(v, "cathedral_id") as u32,
        );
        assert_eq!(base, hexa::<16>(v, "base_identity"));
        let id = kdf::shroud_identity(&base, &hexa(v, "seed"));
        assert_eq!(id, hexa::<16>(v, "identity"));
        assert!(shroud::ShroudIdentity::matches(
            &base,
            &id,
            &hexa(v, "seed")
        ));
        n += 1;
    }
    for v in arr(&j, "packets") {
        let key = key32(v, "shroud_key");
        let header = ShroudHeader {
            id: hexa(v, "shroud_hdr_id"),
            seed_id: hexa(v, "shroud_hdr_seed_id"),
            seed_data: hexa(v, "shroud_hdr_seed_data"),
        };
        let input = hexv(v, "input_packet");
        let pad = num(v, "pad_zero_bytes") as usize;
        let mtu = num(v, "mtu_size") as usize;
        // The recorded padding is a legal draw for this MTU.
        assert!(pad == 0 || shroud::OVERHEAD + input.len() + pad < mtu);
        let mut body = input.clone();
        body.push(0xff);
        body.resize(input.len() + 1 + pad, 0);
        assert_eq!(body, hexv(v, "body_before_mask"));
        let mut mask = vec![0u8; num(v, "mask_length") as usize];
        kdf::shroud_mask(&key, &header.to_bytes(), &mut mask);
        assert_eq!(hex::encode(&mask), hex::encode(hexv(v, "mask")));
        let mut buf = vec![0u8; shroud::OVERHEAD + input.len() + pad];
        buf[shroud::HEADER_LEN..shroud::HEADER_LEN + input.len()].copy_from_slice(&input);
        let len = shroud::shroud_in_place(&key, &header, &mut buf, input.len(), pad).expect("room");
        let wire = hexv(v, "wire");
        assert_eq!(len, num(v, "wire_length") as usize);
        assert_eq!(hex::encode(&buf), hex::encode(&wire), "{:?}", v["note"]);
        let mut rx = wire.clone();
        let r = shroud::unshroud_in_place(&key, &mut rx).expect("unshroud");
        assert_eq!(&rx[r], hexv(v, "unshrouded_by_reference").as_slice());
        n += 1;
    }
    n
}

/// Size of a union member: encode it with every field set to all-ones
/// bytes and find the last byte written.
fn member_len(body: &OfferBody) -> usize {
    let h = offer::OfferHeader::new(offer::Magic::Katedral, 0, 0, 0, [0; 64]);
    let o = offer::Offer::new(h, 0, body, [0; 64]);
    let union = &o.data()[9..];
    union.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
}

pub fn struct_sizes() -> usize {
    use chantry_core::secret::Key32;
    use chantry_core::wire::offer::*;
    use std::net::Ipv4Addr;
    let j = load_json("struct_sizes.json");
    let ones = Ipv4Addr::new(255, 255, 255, 255);
    let mut checks: Vec<(&str, usize)> = vec![
        ("struct sanctum_offer", OFFER_LEN),
        ("struct sanctum_offer_hdr", HEADER_LEN),
        ("struct sanctum_offer_data", DATA_LEN),
        ("struct sanctum_exchange_offer", UNION_LEN),
        ("struct sanctum_shroud_hdr", shroud::HEADER_LEN),
    ];
    let bodies: Vec<(&str, OfferBody)> = vec![
        (
            "struct sanctum_key_offer",
            OfferBody::Key(KeyBody {
                id: u64::MAX,
                salt: [0xff; 4],
                key: Key32::new([0xff; 32]),
            }),
        ),
        (
            "struct sanctum_info_offer",
            OfferBody::Info(InfoBody {
                flags: u32::MAX,
                peer_ip: ones,
                peer_port: u16::MAX,
                local_ip_raw: [0xff; 4],
                local_port_raw: [0xff; 2],
                tunnel: u16::MAX,
                ambry_generation: u32::MAX,
                rx_active: u32::MAX,
                rx_pending: u32::MAX,
                instance: u64::MAX,
            }),
        ),
        (
            "struct sanctum_ambry_offer",
            OfferBody::Ambry(AmbryBody {
                tunnel: u16::MAX,
                expires: u16::MAX,
                generation: u32::MAX,
                seed: [0xff; 64],
                key: [0xff; 32],
                tag: [0xff; 16],
            }),
        ),
        (
            "struct sanctum_liturgy_offer",
            OfferBody::Liturgy(LiturgyBody {
                id: 0xff,
                group: u16::MAX,
                peers: [0xff; 255],
                hidden: 0xff,
                flags: u32::MAX,
            }),
        ),
        (
            "struct sanctum_remembrance_offer",
            OfferBody::Remembrance(RemembranceBody {
                ips: [ones; 32],
                ports: [u16::MAX; 32],
            }),
        ),
        (
            "struct sanctum_p2p_info_offer",
            OfferBody::P2pInfo(P2pInfoBody {
                ip: ones,
                port: u16::MAX,
                tunnel: u16::MAX,
                flags: u32::MAX,
            }),
        ),
    ];
    let sizes: Vec<(&str, usize)> = bodies.iter().map(|(n, b)| (*n, member_len(b))).collect();
    checks.extend(sizes);
    checks.extend(crate::data_vectors::struct_sizes());
    checks.extend(crate::ambry_vectors::struct_sizes());
    let mut n = 0;
    for (name, ours) in &checks {
        assert_eq!(num(&j, name) as usize, *ours, "{name}");
        n += 1;
    }
    let frag = &j["mlkem1024_fragments"];
    assert_eq!(num(frag, "public_key_bytes") as usize, KEM_LEN);
    assert_eq!(num(frag, "ciphertext_bytes") as usize, KEM_LEN);
    assert_eq!(num(frag, "fragments") as usize, KEM_FRAGMENTS);
    assert_eq!(num(frag, "fragment_size") as usize, KEM_FRAGMENT_LEN);
    assert_eq!(num(frag, "offset_of_exchange_kem_in_offer"), 151);
    let offs = &j["offsets_in_struct_sanctum_offer"];
    assert_eq!(num(offs, "hdr"), 0);
    assert_eq!(num(offs, "data") as usize, DATA_OFFSET);
    assert_eq!(num(offs, "extra") as usize, EXTRA_OFFSET);
    assert_eq!(num(offs, "tag") as usize, TAG_OFFSET);
    // Every struct named in the file was compared.
    let named = j
        .as_object()
        .expect("object")
        .keys()
        .filter(|k| k.starts_with("struct "))
        .count();
    assert_eq!(
        named,
        checks.len(),
        "struct_sizes.json names structs we did not compare"
    );
    n + 2
}
