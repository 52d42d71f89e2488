//! ambry_tool.json, ambry_unwrap.json and ambry/cafeba00.bundle.

use chantry_core::ambry::{self, Bundle, BundleHead, Entry, Unwrapper};
use chantry_core::kdf::{self, OfferLabel};
use chantry_core::secret::Key32;
use chantry_core::wire::offer::{Offer, OfferBody, OfferHeader, OfferType};
use serde_json::Value;

use crate::common::*;

fn kek_map(j: &Value, key: &str) -> Vec<(u8, Key32)> {
    j[key]
        .as_object()
        .unwrap_or_else(|| panic!("{key} missing"))
        .iter()
        .map(|(id, hexkey)| {
            let id = u8::from_str_radix(id.trim_start_matches("0x"), 16).expect("id");
            (
                id,
                Key32::from_slice(&unhex(hexkey.as_str().expect("hex"))).expect("32 bytes"),
            )
        })
        .collect()
}

fn base_kek(j: &Value, flock: &str, id: u8) -> Key32 {
    kek_map(j, &format!("kek_data_{flock}"))
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, k)| k)
        .expect("kek id")
}

pub fn ambry_tool() -> usize {
    let j = load_json("ambry_tool.json");
    let mut n = 0;
    let now = 1_767_225_600;
    assert_eq!(
        ambry::expires_for(now, 365).expect("days"),
        num(&j, "expires_days_for_365_at_1767225600") as u16
    );
    n += 1;
    for flock in ["00000000cafeba00", "00000000aaaaaa00", "00000000bbbbbb00"] {
        let f = u64::from_str_radix(flock, 16).expect("flock");
        let bases = kek_map(&j, &format!("kek_data_{flock}"));
        assert_eq!(bases.len(), 255, "255 device KEKs for {flock}");
        for (id, derived) in kek_map(&j, &format!("internal_kek_sample_{flock}")) {
            let base = &bases.iter().find(|(i, _)| *i == id).expect("base").1;
            assert_eq!(
                &kdf::derived_kek(base, f, f),
                &derived,
                "internal {flock} {id}"
            );
            n += 1;
        }
    }
    for (id, derived) in kek_map(&j, "external_kek_sample_aaaaaa00_for_bbbbbb00") {
        let base = base_kek(&j, "00000000aaaaaa00", id);
        assert_eq!(kdf::derived_kek(&base, 0xaaaaaa00, 0xbbbbbb00), derived);
        assert_eq!(
            kdf::derived_kek(&base, 0xbbbbbb00, 0xaaaaaa00),
            derived,
            "sorted"
        );
        n += 1;
    }
    for (name, entries) in [
        ("cafeba00.bundle", ambry::SAME_FLOCK_ENTRIES),
        ("ab.bundle", ambry::XFLOCK_ENTRIES),
    ] {
        let b = &j[name];
        let head = BundleHead::parse(&hexv(b, "head_hex")).expect("head");
        assert_eq!(u64::from(head.expires), num(b, "expires"));
        assert_eq!(u64::from(head.generation), num(b, "generation"));
        assert_eq!(head.seed.to_vec(), hexv(b, "seed"));
        assert_eq!(num(b, "entry_count") as usize, entries);
        assert_eq!(
            num(b, "size") as usize,
            ambry::HEAD_LEN + entries * ambry::ENTRY_LEN
        );
        for e in arr(b, "first_entries") {
            let raw = hexv(e, "raw");
            let parsed = Entry::parse(&raw).expect("entry");
            assert_eq!(parsed.flock, num(e, "flock"));
            assert_eq!(u64::from(parsed.tunnel), num(e, "tunnel"));
            assert_eq!(parsed.key.to_vec(), hexv(e, "key_wrapped"));
            assert_eq!(parsed.tag.to_vec(), hexv(e, "tag"));
            assert_eq!(parsed.to_bytes().to_vec(), raw);
            n += 1;
        }
    }
    n
}

pub fn ambry_unwrap() -> usize {
    let j = load_json("ambry_unwrap.json");
    let mut n = 0;
    for v in arr(&j, "vectors") {
        let (fs, fd) = (
            num(v, "client_cathedral_flock"),
            num(v, "client_cathedral_flock_dst"),
        );
        let tunnel = num(v, "client_tun_spi") as u16;
        let kek = key32(v, "device_kek");
        let dkek = kdf::derived_kek(&kek, fs, fd);
        assert_eq!(dkek.expose(), &hexa::<32>(v, "kek_unwrap_base_key"));
        let o = &v["cathedral_ambry_offer"];
        let wire = hexv(o, "wire");
        assert_eq!(wire.len(), num(o, "wire_length") as usize);
        let header = OfferHeader::parse(&wire).expect("header");
        let label =
            OfferLabel::from_label(o["offer_kdf_label"].as_str().expect("label").as_bytes())
                .expect("label");
        assert_eq!(label, OfferLabel::Cathedral);
        assert_eq!(num(o, "offer_kdf_flock_a"), fs);
        assert_eq!(num(o, "offer_kdf_flock_b"), 0);
        // The client's cathedral secret is not part of this file; the
        // recorded offer key is, and the header seed it was derived from.
        let _ = header;
        let offer_key = key32(o, "offer_key");
        let offer =
            Offer::open(&wire, &offer_key).expect("AMBRY offer opens under the recorded key");
        let Ok(OfferBody::Ambry(body)) = offer.body_of(OfferType::Ambry) else {
            panic!("not an AMBRY offer")
        };
        let d = &o["data"];
        assert_eq!(u64::from(body.tunnel), num(d, "ambry_tunnel"));
        assert_eq!(u64::from(body.generation), num(d, "ambry_generation"));
        assert_eq!(body.key.to_vec(), hexv(d, "ambry_key_wrapped"));
        let wk = kdf::ambry_wrap_key(&dkek, &body.seed, fs, fd, body.generation, tunnel);
        assert_eq!(wk.expose(), &hexa::<32>(v, "wrapping_key"));
        let aad = ambry::wrap_aad(tunnel, body.expires, fs, fd, body.generation, &body.seed);
        assert_eq!(aad.to_vec(), hexv(v, "aad"));
        let u = Unwrapper {
            base_kek: &kek,
            flock_src: fs,
            flock_dst: fd,
            tunnel,
            current_generation: 0,
        };
        let secret = u.unwrap(&body, offer.timestamp()).expect("unwraps");
        assert_eq!(secret.expose(), &hexa::<32>(v, "unwrapped_shared_secret"));
        // The bundle entry is the one the offer carries.
        let entry = Entry::parse(&hexv(v, "bundle_entry")).expect("entry");
        assert_eq!(
            (entry.key, entry.tag, entry.tunnel),
            (body.key, body.tag, body.tunnel)
        );
        n += 1;
    }
    n
}

pub fn cafeba00_bundle() -> usize {
    use sha2::Digest;
    let tool = load_json("ambry_tool.json");
    let info = &tool["cafeba00.bundle"];
    let bytes = load_bytes("ambry/cafeba00.bundle");
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&bytes)),
        info["sha256"].as_str().expect("sha256")
    );
    let f = 0xcafeba00u64;
    let bundle = Bundle::parse_for_pair(&bytes, f, f).expect("a cathedral loads it");
    assert_eq!(bundle.entries.len(), ambry::SAME_FLOCK_ENTRIES);
    assert_eq!(bundle.to_bytes(), bytes);
    let mut n = 1;
    // Pairs of tunnels unwrap to the same secret on both sides.
    let now = 1_767_225_600;
    for (t1, t2) in [
        (0x0102u16, 0x0201u16),
        (0x3a7f, 0x7f3a),
        (0x05ff, 0xff05),
        (0x0aa0, 0xa00a),
    ] {
        let secret = |t: u16| {
            let kek = base_kek(&tool, "00000000cafeba00", (t >> 8) as u8);
            let e = bundle.entry(f, t).expect("entry present");
            Unwrapper {
                base_kek: &kek,
                flock_src: f,
                flock_dst: f,
                tunnel: t,
                current_generation: 0,
            }
            .unwrap(&bundle.offer_body(e), now)
            .expect("unwraps")
        };
        assert_eq!(secret(t1), secret(t2), "{t1:04x} / {t2:04x}");
        n += 1;
    }
    // Truncated or altered bundles are refused.
    assert!(Bundle::parse_for_pair(&bytes[..bytes.len() - 1], f, f).is_err());
    assert!(Bundle::parse_for_pair(&bytes[..bytes.len() - ambry::ENTRY_LEN], f, f).is_err());
    let mut flipped = bytes.clone();
    flipped[ambry::HEAD_LEN + 3] ^= 1;
    assert!(matches!(
        Bundle::parse_for_pair(&flipped, f, f),
        Err(ambry::AmbryError::ForeignFlock { index: 0, .. })
    ));
    let mut tampered = bytes;
    tampered[ambry::HEAD_LEN + 20] ^= 1;
    let b2 = Bundle::parse(&tampered).expect("parses");
    let kek = base_kek(&tool, "00000000cafeba00", 1);
    let e = b2.entry(f, 0x0102).expect("entry");
    assert_eq!(
        Unwrapper {
            base_kek: &kek,
            flock_src: f,
            flock_dst: f,
            tunnel: 0x0102,
            current_generation: 0
        }
        .unwrap(&b2.offer_body(e), now),
        Err(ambry::AmbryError::Auth)
    );
    n + 3
}

/// Sizes of the ambry structs, for struct_sizes.json.
pub fn struct_sizes() -> Vec<(&'static str, usize)> {
    vec![
        ("struct sanctum_ambry_head", ambry::HEAD_LEN),
        ("struct sanctum_ambry_entry", ambry::ENTRY_LEN),
        ("struct sanctum_ambry_aad", ambry::AAD_LEN),
    ]
}
