//! key_exchange.json: two reference chapel instances (A id 0x1111..., B id
//! 0x2222...) running one complete hybrid exchange, without and with
//! cathedral flocks and tunnel ids.
//!
//! Per scenario:
//! 1. every recorded offer (A's PK set, B's PK+CT sets, A's CT set) opens
//!    under our offer key, decodes to exactly the recorded fields, and our
//!    seal of those fields reproduces the wire bytes;
//! 2. our [`KeyExchange`] is driven as B (and then as A) with that side's
//!    recorded key material injected and fed the other side's recorded
//!    packets: the keys it installs equal the reference's, and the offers
//!    it sends carry exactly the fields the reference sent (only the random
//!    seed, header filler and extra filler differ). The reference did not
//!    record the ML-KEM encapsulation coins, so the recorded ciphertext and
//!    shared secret are injected with
//!    [`KeyExchange::set_encapsulation_override`];
//! 3. every recorded session-key derivation is recomputed with
//!    `kdf::session_key` from the instance ids and each side's own values,
//!    which checks the role rule (ordering and RX/TX label swap).

use chantry_core::entropy::SeededEntropy;
use chantry_core::exchange::{
    ExchangeConfig, KeyCommand, KeyExchange, KeyInstall, MlKemSecret, NegotiationKeys, Outcome,
};
use chantry_core::kdf::{self, Direction, OfferLabel, Purpose, SessionKeyInputs};
use chantry_core::secret::{Key32, Secret};
use chantry_core::time::{Instant, Now};
use chantry_core::wire::offer::{
    ExchangeBody, ExchangeState, KEM_LEN, Magic, OFFER_LEN, Offer, OfferBody, OfferHeader,
    OfferType,
};
use serde_json::Value;

use crate::common::*;

const STEPS: [&str; 3] = [
    "step1_a_to_b_pk_fragments",
    "step2_b_to_a_pk_and_ct_fragments",
    "step3_a_to_b_ct_fragments",
];

pub fn key_exchange() -> usize {
    let j = load_json("key_exchange.json");
    let mut n = 0;
    for s in arr(&j, "scenarios") {
        n += recorded_offers(s);
        n += drive_a(s);
        n += drive_b(s);
        n += derivations(s);
    }
    n
}

fn name(s: &Value) -> &str {
    s["name"].as_str().unwrap_or("?")
}

fn secret(s: &Value) -> Key32 {
    key32(s, "shared_secret")
}

fn config(side: &Value) -> ExchangeConfig {
    let flock_src = num(side, "cathedral_flock");
    ExchangeConfig {
        flock_src,
        flock_dst: num(side, "cathedral_flock_dst"),
        tunnel_id: u16::try_from(num(side, "tun_spi")).expect("tunnel id fits 16 bits"),
        cathedral: flock_src != 0,
    }
}

fn now(s: &Value) -> Now {
    Now::new(Instant::from_secs(1000), num(s, "clock_realtime"))
}

fn recorded_body(data: &Value) -> ExchangeBody {
    let state = match num(data, "exchange_state") {
        1 => ExchangeState::PublicKey,
        2 => ExchangeState::Ciphertext,
        other => panic!("exchange state {other}"),
    };
    ExchangeBody {
        id: num(data, "exchange_id"),
        spi: num(data, "exchange_spi") as u32,
        salt: hexa(data, "exchange_salt_wire_bytes"),
        state,
        fragment: num(data, "exchange_fragment") as u8,
        ecdh: hexa(data, "exchange_ecdh"),
        kem: hexa(data, "exchange_kem"),
    }
}

/// Part 1: each recorded packet against our parser, key derivation and seal.
fn recorded_offers(s: &Value) -> usize {
    let ss = secret(s);
    let (a, b) = (config(&s["side_a"]), config(&s["side_b"]));
    let mut n = 0;
    for (i, step) in STEPS.iter().enumerate() {
        let sender = if i == 1 { b } else { a };
        for p in arr(s, step) {
            let wire = hexv(p, "wire");
            assert_eq!(wire.len(), OFFER_LEN);
            assert_eq!(num(p, "wire_length") as usize, OFFER_LEN);
            let hp = &p["header_plaintext"];
            let header = OfferHeader::parse(&wire).expect("header parses");
            assert_eq!(header.magic, Magic::Sacrament);
            assert_eq!(header.magic.value(), num(hp, "magic"));
            assert_eq!(header.flock_src, num(hp, "flock_src"));
            assert_eq!(header.flock_dst, num(hp, "flock_dst"));
            assert_eq!(header.spi as u64, num(hp, "spi"));
            assert_eq!(header.seed, hexa::<64>(hp, "seed"));
            assert_eq!(&wire[..92], hexv(p, "aad").as_slice());
            if sender.cathedral {
                assert_eq!(
                    (header.flock_src, header.flock_dst),
                    (sender.flock_src, sender.flock_dst)
                );
            }

            assert_eq!(p["offer_kdf_label"].as_str(), Some("SANCTUM.SACRAMENT.KDF"));
            assert_eq!(
                (num(p, "offer_kdf_flock_a"), num(p, "offer_kdf_flock_b")),
                (sender.flock_src, sender.flock_dst)
            );
            let key = kdf::offer_key(
                &ss,
                OfferLabel::Sacrament,
                &header.seed,
                sender.flock_src,
                sender.flock_dst,
            );
            assert_eq!(key.expose(), &hexa::<32>(p, "offer_key"), "{}", name(s));

            let offer = Offer::open(&wire, &key).expect("recorded offer opens");
            let mut plain = offer.data().to_vec();
            plain.extend_from_slice(offer.extra());
            assert_eq!(plain, hexv(p, "plaintext_data_and_extra"));
            assert_eq!(&wire[607..], hexv(p, "tag").as_slice());

            let d = &p["data"];
            assert_eq!(num(d, "type"), 6);
            assert_eq!(offer.offer_type(), Ok(OfferType::Exchange));
            assert_eq!(offer.timestamp(), num(d, "timestamp"));
            let OfferBody::Exchange(x) = offer.body().expect("body decodes") else {
                panic!("not an exchange body");
            };
            let want = recorded_body(d);
            assert_eq!(x, want, "{} {step}", name(s));
            assert_eq!(offer.extra()[..16], hexa::<16>(d, "extra_random"));
            assert_eq!(offer.extra()[16..], hexa::<48>(d, "extra_unused_tail"));

            // Our seal of the typed fields, and of the raw parts.
            let rebuilt = Offer::new(
                header,
                offer.timestamp(),
                &OfferBody::Exchange(want),
                *offer.extra(),
            );
            assert_eq!(rebuilt.seal(&key).as_slice(), wire.as_slice());
            let raw = Offer::from_parts(header, *offer.data(), *offer.extra());
            assert_eq!(raw.seal(&key).as_slice(), wire.as_slice());
            n += 1;
        }
    }
    n
}

/// Key material of one side as the reference recorded it.
fn recorded_keys(state: &Value) -> NegotiationKeys {
    let l = &state["local"];
    let r = &state["remote"];
    NegotiationKeys {
        local_spi: num(l, "spi") as u32,
        local_salt: hexa(l, "salt_wire_bytes"),
        local_x25519: key32(l, "x25519_private"),
        local_random: hexa(l, "random"),
        remote_x25519: key32(r, "x25519_private"),
        remote_random: hexa(r, "random"),
        mlkem: MlKemSecret::Expanded(Box::new(Secret::new(hexa(l, "mlkem_sk")))),
    }
}

/// Our side with its recorded state injected; the encapsulation override
/// comes from `encap_state.remote` (the ciphertext/secret it produced).
fn side(s: &Value, side: &str, state: &str, encap_state: &str) -> KeyExchange {
    let cfg = config(&s[side]);
    let id = num(&s[side], "local_id");
    assert_eq!(num(&s[state], "local_id"), id);
    let mut x = KeyExchange::with_instance_id(cfg, secret(s), id);
    x.set_peer_known(true);
    x.start_with_keys(now(s).mono, recorded_keys(&s[state]))
        .expect("recorded ML-KEM key is valid");
    let r = &s[encap_state]["remote"];
    x.set_encapsulation_override(&hexa::<KEM_LEN>(r, "mlkem_ct"), key32(r, "mlkem_ss"));
    x
}

fn recorded_install(s: &Value, which: &str) -> KeyInstall {
    let r = &s["result"][which];
    KeyInstall {
        spi: num(r, "spi") as u32,
        salt: hexa(r, "salt_wire_bytes"),
        key: key32(r, "key"),
    }
}

/// Feeds recorded packets; returns the outcomes.
fn feed(x: &mut KeyExchange, s: &Value, step: &str) -> Vec<Outcome> {
    let mut rng = SeededEntropy::from_u64(1);
    arr(s, step)
        .iter()
        .map(|p| {
            x.handle_offer(&hexv(p, "wire"), now(s), &mut rng)
                .unwrap_or_else(|e| panic!("{} {step}: {e}", name(s)))
                .outcome
        })
        .collect()
}

/// Checks that the offers `x` sends now are the recorded ones of `step`
/// (same fields; only the random filler differs). Returns how many.
fn check_sent(x: &mut KeyExchange, s: &Value, step: &str, sender: &str, at: Now) -> usize {
    let cfg = config(&s[sender]);
    let ss = secret(s);
    let mut rng = SeededEntropy::from_u64(2);
    x.poll(at, &mut rng);
    let ours: Vec<[u8; OFFER_LEN]> = core::iter::from_fn(|| x.poll_transmit()).collect();
    let recorded = arr(s, step);
    assert_eq!(ours.len(), recorded.len(), "{} {step}", name(s));
    for (mine, p) in ours.iter().zip(recorded) {
        let header = OfferHeader::parse(mine).expect("our header parses");
        let hp = &p["header_plaintext"];
        assert_eq!(header.spi as u64, num(hp, "spi"));
        if cfg.cathedral {
            assert_eq!(header.flock_src, num(hp, "flock_src"));
            assert_eq!(header.flock_dst, num(hp, "flock_dst"));
        }
        let key = kdf::offer_key(
            &ss,
            OfferLabel::Sacrament,
            &header.seed,
            cfg.flock_src,
            cfg.flock_dst,
        );
        let offer = Offer::open(mine, &key).expect("our offer opens");
        assert_eq!(offer.timestamp(), num(&p["data"], "timestamp"));
        assert_eq!(
            offer.body().expect("our body decodes"),
            OfferBody::Exchange(recorded_body(&p["data"])),
            "{} {step}",
            name(s)
        );
        assert_eq!(offer.extra()[..16], hexa::<16>(&p["data"], "extra_random"));
    }
    ours.len()
}

fn expect_install(x: &mut KeyExchange, s: &Value, rx: &str, tx: Option<&str>) -> usize {
    let mut n = 0;
    assert_eq!(
        x.poll_key(),
        Some(KeyCommand::InstallRx(recorded_install(s, rx))),
        "{} {rx}",
        name(s)
    );
    n += 1;
    if let Some(tx) = tx {
        assert_eq!(
            x.poll_key(),
            Some(KeyCommand::InstallTx(recorded_install(s, tx))),
            "{} {tx}",
            name(s)
        );
        n += 1;
    }
    assert_eq!(x.poll_key(), None);
    n
}

fn done_after(last: Outcome, partial: Outcome) -> Vec<Outcome> {
    vec![partial, partial, partial, last]
}

/// Part 2 for A: sends step 1, receives step 2, sends step 3.
fn drive_a(s: &Value) -> usize {
    let mut a = side(
        s,
        "side_a",
        "a_offer_state_after_create",
        "a_offer_state_after_decapsulate",
    );
    let mut n = check_sent(&mut a, s, STEPS[0], "side_a", now(s));
    let outcomes = feed(&mut a, s, STEPS[1]);
    let (pk, ct) = outcomes.split_at(4);
    assert_eq!(pk, done_after(Outcome::RxKeyDerived, Outcome::PkFragment));
    assert_eq!(ct, done_after(Outcome::TxKeyDerived, Outcome::CtFragment));
    n += expect_install(&mut a, s, "a_rx", Some("a_tx"));
    // Next pulse (1 s later, same wall second): only the CT set, as the
    // reference sent it, since our PK flag is cleared.
    let mut later = now(s);
    later.mono += core::time::Duration::from_secs(1);
    n += check_sent(&mut a, s, STEPS[2], "side_a", later);
    n
}

/// Part 2 for B: receives step 1, sends step 2, receives step 3.
fn drive_b(s: &Value) -> usize {
    let mut b = side(
        s,
        "side_b",
        "b_offer_state_after_encapsulate",
        "b_offer_state_after_encapsulate",
    );
    let outcomes = feed(&mut b, s, STEPS[0]);
    assert_eq!(
        outcomes,
        done_after(Outcome::RxKeyDerived, Outcome::PkFragment)
    );
    let mut n = expect_install(&mut b, s, "b_rx", None);
    n += check_sent(&mut b, s, STEPS[1], "side_b", now(s));
    let outcomes = feed(&mut b, s, STEPS[2]);
    assert_eq!(
        outcomes,
        done_after(Outcome::TxKeyDerived, Outcome::CtFragment)
    );
    assert_eq!(
        b.poll_key(),
        Some(KeyCommand::InstallTx(recorded_install(s, "b_tx")))
    );
    n += 1;
    n
}

/// Part 3: the derivations in the reference's order ([0] B RX, [1] A RX,
/// [2] A TX, [3] B TX), each from the deriving side's own values.
fn derivations(s: &Value) -> usize {
    let ss = secret(s);
    let a_state = &s["a_offer_state_after_decapsulate"];
    let b_state = &s["b_offer_state_final"];
    let order = [
        ("side_b", Direction::Rx, b_state, a_state),
        ("side_a", Direction::Rx, a_state, b_state),
        ("side_a", Direction::Tx, a_state, b_state),
        ("side_b", Direction::Tx, b_state, a_state),
    ];
    let records = arr(s, "session_key_derivations_in_order");
    assert_eq!(records.len(), order.len());
    let mut n = 0;
    for (rec, (who, dir, mine, theirs)) in records.iter().zip(order) {
        let cfg = config(&s[who]);
        let my_id = num(&s[who], "local_id");
        let peer_id = num(
            &s[if who == "side_a" { "side_b" } else { "side_a" }],
            "local_id",
        );
        // RX uses our remote half and the peer's local (PK) half; TX our
        // local half and the peer's remote (CT) half.
        let (my_half, peer_half) = match dir {
            Direction::Rx => (&mine["remote"], &theirs["local"]),
            Direction::Tx => (&mine["local"], &theirs["remote"]),
        };
        let private = x25519_dalek::StaticSecret::from(hexa::<32>(rec, "x25519_private"));
        assert_eq!(hexa::<32>(my_half, "x25519_private"), private.to_bytes());
        let my_pub = x25519_dalek::PublicKey::from(&private).to_bytes();
        assert_eq!(my_pub, hexa::<32>(my_half, "x25519_public"));
        let peer_pub = hexa::<32>(rec, "x25519_remote_public");
        assert_eq!(peer_pub, hexa::<32>(peer_half, "x25519_public"));
        let ecdh = Key32::new(
            private
                .diffie_hellman(&x25519_dalek::PublicKey::from(peer_pub))
                .to_bytes(),
        );
        assert_eq!(ecdh.expose(), &hexa::<32>(rec, "ecdh_ss"));
        let kem_ss = key32(rec, "kem_ss");
        let my_random = hexa::<16>(my_half, "random");
        let peer_random = hexa::<16>(peer_half, "random");

        // The role rule, spelled out, against what the reference fed KMAC.
        let larger = peer_id < my_id;
        let (pub1, pub2) = if larger {
            (my_pub, peer_pub)
        } else {
            (peer_pub, my_pub)
        };
        assert_eq!(hexa::<32>(rec, "pub1"), pub1);
        assert_eq!(hexa::<32>(rec, "pub2"), pub2);
        let rnd = hexa::<32>(rec, "random");
        let (first, second) = if larger {
            (my_random, peer_random)
        } else {
            (peer_random, my_random)
        };
        assert_eq!(rnd[..16], first);
        assert_eq!(rnd[16..], second);
        let purpose = match (larger, dir) {
            (true, Direction::Rx) | (false, Direction::Tx) => Purpose::TrafficRx,
            _ => Purpose::TrafficTx,
        };
        assert_eq!(num(rec, "purpose"), purpose as u64);
        assert_eq!(
            (num(rec, "flock_src"), num(rec, "flock_dst")),
            (cfg.flock_src, cfg.flock_dst)
        );
        let base = kdf::base_key(&ss, cfg.flock_src, cfg.flock_dst, purpose);
        assert_eq!(base.expose(), &hexa::<32>(rec, "traffic_base_key"));

        let key = kdf::session_key(&SessionKeyInputs {
            shared_secret: &ss,
            flock_src: cfg.flock_src,
            flock_dst: cfg.flock_dst,
            direction: dir,
            my_id,
            peer_id,
            my_pub: &my_pub,
            peer_pub: &peer_pub,
            my_random: &my_random,
            peer_random: &peer_random,
            ecdh_ss: &ecdh,
            kem_ss: &kem_ss,
        });
        assert_eq!(
            key.expose(),
            &hexa::<32>(rec, "session_key"),
            "{} {who} {dir:?}",
            name(s)
        );
        n += 1;
    }
    n
}
