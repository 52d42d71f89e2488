//! kmac256.json, base_key.json, offer_key.json, session_key.json.

use chantry_core::kdf::{self, OfferLabel, Purpose};
use chantry_core::secret::Key32;

use crate::common::*;

pub fn kmac256() -> usize {
    let j = load_json("kmac256.json");
    let mut n = 0;
    for v in arr(&j, "vectors") {
        let key = hexv(v, "key");
        let custom = v["customization"]
            .as_str()
            .expect("customization")
            .as_bytes();
        let input = hexv(v, "input");
        let want = hexv(v, "output");
        assert_eq!(num(v, "output_length") as usize, want.len());
        let mut out = vec![0u8; want.len()];
        kdf::kmac256(&key, custom, &[&input], &mut out);
        assert_eq!(
            hex::encode(&out),
            hex::encode(&want),
            "kmac256 case {:?}",
            v["note"]
        );
        // Streaming in two pieces gives the same answer.
        if input.len() > 1 {
            let mut k = kdf::Kmac256::new(&key, custom);
            k.update(&input[..1]);
            k.update(&input[1..]);
            let mut out2 = vec![0u8; want.len()];
            k.finalize_into(&mut out2);
            assert_eq!(out2, want);
        }
        n += 1;
    }
    n
}

pub fn base_key() -> usize {
    let j = load_json("base_key.json");
    let secret = key32(&j, "secret");
    let mut n = 0;
    for v in arr(&j, "vectors") {
        let purpose = Purpose::from_number(num(v, "purpose") as u8).expect("known purpose");
        assert_eq!(
            purpose.label(),
            v["label"].as_str().expect("label").as_bytes()
        );
        let (fs, fd) = (num(v, "flock_src"), num(v, "flock_dst"));
        let want = hexa::<32>(v, "base_key");
        assert_eq!(
            kdf::base_key(&secret, fs, fd, purpose).expose(),
            &want,
            "{v}"
        );
        assert_eq!(
            kdf::base_key(&secret, fd, fs, purpose).expose(),
            &want,
            "swapped {v}"
        );
        n += 1;
    }
    n
}

pub fn offer_key() -> usize {
    let j = load_json("offer_key.json");
    let mut n = 0;
    for v in arr(&j, "vectors") {
        let secret = key32(v, "secret");
        let label = OfferLabel::from_label(v["label"].as_str().expect("label").as_bytes())
            .expect("known label");
        assert_eq!(label.base_purpose() as u64, num(v, "base_key_purpose"));
        let (fa, fb) = (num(v, "flock_a"), num(v, "flock_b"));
        let seed = hexa::<64>(v, "seed");
        let base = kdf::base_key(&secret, fa, fb, label.base_purpose());
        assert_eq!(base.expose(), &hexa::<32>(v, "base_key"), "{:?}", v["note"]);
        let key = kdf::offer_key(&secret, label, &seed, fa, fb);
        assert_eq!(key.expose(), &hexa::<32>(v, "offer_key"), "{:?}", v["note"]);
        n += 1;
    }
    n
}

/// The raw traffic KDF with the recorded inputs, plus X25519 of the
/// recorded private/public pair.
pub fn session_key() -> usize {
    let j = load_json("session_key.json");
    let mut n = 0;
    for v in arr(&j, "vectors") {
        let ss = key32(v, "shared_secret");
        let k = &v["kdf"];
        let purpose = Purpose::from_number(num(k, "purpose") as u8).expect("purpose");
        let base = kdf::base_key(&ss, num(k, "flock_src"), num(k, "flock_dst"), purpose);
        assert_eq!(base.expose(), &hexa::<32>(k, "traffic_base_key"));
        let private = x25519_dalek::StaticSecret::from(hexa::<32>(k, "x25519_private"));
        let remote = x25519_dalek::PublicKey::from(hexa::<32>(k, "x25519_remote_public"));
        let ecdh = Key32::new(private.diffie_hellman(&remote).to_bytes());
        assert_eq!(ecdh.expose(), &hexa::<32>(k, "ecdh_ss"));
        let key = kdf::traffic_kdf(
            &base,
            &ecdh,
            &key32(k, "kem_ss"),
            &hexa(k, "pub1"),
            &hexa(k, "pub2"),
            &hexa(k, "random"),
        );
        assert_eq!(
            key.expose(),
            &hexa::<32>(k, "session_key"),
            "{:?} {:?}",
            v["scenario"],
            v["which"]
        );
        n += 1;
    }
    n
}
