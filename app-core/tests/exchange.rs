//! Behaviour of the key exchange (behaviour.md §3, §4.3) and of pilgrim /
//! shrine keying (§6), with a fake clock and a fake network: two
//! [`KeyExchange`] values wired together through queues, and a tiny model
//! of the data path (active + pending RX SA, TX SA) that turns key
//! commands into "traffic seen" and "last decrypted" reports.

use core::time::Duration;

use chantry_core::entropy::SeededEntropy;
use chantry_core::exchange::{
    Accepted, Event, ExchangeConfig, ExchangeError, FailureReason, IgnoreReason, KeyCommand,
    KeyExchange, KeyInstall, Outcome, RxStatus, StartReason,
};
use chantry_core::kdf::{self, OfferLabel};
use chantry_core::pilgrim::{KeyReason, Pilgrim, PilgrimEvent, Shrine, ShrineError};
use chantry_core::secret::Key32;
use chantry_core::time::{Instant, Now};
use chantry_core::wire::offer::{
    ExchangeBody, ExchangeState, OFFER_LEN, Offer, OfferBody, OfferError, OfferHeader,
};

type Packet = [u8; OFFER_LEN];

const WALL: u64 = 1_767_225_600;
const ID_A: u64 = 0x1111_1111_1111_1111;
const ID_B: u64 = 0x2222_2222_2222_2222;

fn ss() -> Key32 {
    Key32::new([7; 32])
}

fn start() -> Now {
    Now::new(Instant::from_secs(100), WALL)
}

/// One RX SA of the data-path model.
#[derive(Clone, Debug)]
struct Sa {
    k: KeyInstall,
    installed: Instant,
    packets: u64,
}

/// The data path as the exchange sees it: confess's active/pending RX SAs
/// (behaviour.md §3.6) and bless's TX SA.
#[derive(Debug, Default)]
struct DataPath {
    active: Option<Sa>,
    pending: Option<Sa>,
    tx: Option<KeyInstall>,
    rx_installs: usize,
    tx_installs: usize,
    erased: usize,
}

impl DataPath {
    fn apply(&mut self, cmd: KeyCommand, now: Instant) {
        match cmd {
            KeyCommand::InstallRx(k) => {
                self.rx_installs += 1;
                let sa = Sa {
                    k,
                    installed: now,
                    packets: 0,
                };
                if self.active.is_none() {
                    self.active = Some(sa);
                } else {
                    self.pending = Some(sa);
                }
            }
            KeyCommand::InstallTx(k) => {
                self.tx_installs += 1;
                self.tx = Some(k);
            }
            KeyCommand::Erase => {
                self.erased += 1;
                self.active = None;
                self.pending = None;
                self.tx = None;
            }
        }
    }

    /// A packet sealed with `k` arrives; true if it decrypts.
    fn receive(&mut self, k: &KeyInstall) -> bool {
        if let Some(a) = self.active.as_mut().filter(|a| a.k == *k) {
            a.packets += 1;
            return true;
        }
        if self.pending.as_ref().is_some_and(|p| p.k == *k) {
            let mut p = self.pending.take().expect("pending");
            p.packets = 1;
            self.active = Some(p);
            return true;
        }
        false
    }

    fn status(&self) -> Option<RxStatus> {
        self.active.as_ref().map(|a| RxStatus {
            spi: a.k.spi,
            packets: a.packets,
            installed: a.installed,
        })
    }

    /// The RX SA (active or pending) with this SPI.
    fn rx(&self, spi: u32) -> Option<&KeyInstall> {
        [&self.active, &self.pending]
            .into_iter()
            .flatten()
            .map(|s| &s.k)
            .find(|k| k.spi == spi)
    }
}

/// One endpoint: the exchange plus its data path and what came out of it.
#[derive(Debug)]
struct Node {
    x: KeyExchange,
    dp: DataPath,
    events: Vec<Event>,
    outcomes: Vec<Result<Accepted, ExchangeError>>,
}

impl Node {
    fn new(id: u64) -> Self {
        Node::with_config(id, ExchangeConfig::default())
    }

    fn with_config(id: u64, cfg: ExchangeConfig) -> Self {
        let mut x = KeyExchange::with_instance_id(cfg, ss(), id);
        x.set_peer_known(true);
        Node {
            x,
            dp: DataPath::default(),
            events: Vec::new(),
            outcomes: Vec::new(),
        }
    }

    /// Applies key commands, collects events, reports RX status.
    fn drain(&mut self, now: Instant) {
        while let Some(k) = self.x.poll_key() {
            self.dp.apply(k, now);
        }
        while let Some(e) = self.x.poll_event() {
            self.events.push(e);
        }
        self.x.set_rx_status(self.dp.status());
    }

    fn poll(&mut self, now: Now, rng: &mut SeededEntropy) -> Vec<Packet> {
        self.x.poll(now, rng);
        self.drain(now.mono);
        core::iter::from_fn(|| self.x.poll_transmit()).collect()
    }

    fn receive(&mut self, packets: Vec<Packet>, now: Now, rng: &mut SeededEntropy) {
        for p in packets {
            let r = self.x.handle_offer(&p, now, rng);
            self.outcomes.push(r);
        }
        self.drain(now.mono);
    }

    fn started(&self) -> Vec<StartReason> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ExchangeStarted { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }

    fn outcome_count(&self, want: Outcome) -> usize {
        self.outcomes
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|a| a.outcome == want))
            .count()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sender {
    A,
    B,
}

/// Two nodes, a clock and a network that delivers each round's offers.
struct Net {
    now: Now,
    a: Node,
    b: Node,
    rng: SeededEntropy,
}

impl Net {
    fn new() -> Self {
        Net {
            now: start(),
            a: Node::new(ID_A),
            b: Node::new(ID_B),
            rng: SeededEntropy::from_u64(42),
        }
    }

    /// Both poll; `filter` decides what of each batch is delivered.
    fn round_with(&mut self, mut filter: impl FnMut(Sender, Vec<Packet>) -> Vec<Packet>) {
        let from_a = self.a.poll(self.now, &mut self.rng);
        let from_b = self.b.poll(self.now, &mut self.rng);
        let to_b = filter(Sender::A, from_a);
        let to_a = filter(Sender::B, from_b);
        self.b.receive(to_b, self.now, &mut self.rng);
        self.a.receive(to_a, self.now, &mut self.rng);
    }

    fn round(&mut self) {
        self.round_with(|_, p| p);
    }

    /// One data packet each way under the current TX keys.
    fn traffic(&mut self) {
        let mono = self.now.mono;
        let (a_tx, b_tx) = (self.a.dp.tx.clone(), self.b.dp.tx.clone());
        for (tx, to) in [(a_tx, &mut self.b), (b_tx, &mut self.a)] {
            if let Some(k) = tx
                && to.dp.receive(&k)
            {
                to.x.rx_decrypted(mono);
                to.x.set_rx_status(to.dp.status());
            }
        }
    }

    fn advance(&mut self, secs: u64) {
        self.now = self.now.advance(Duration::from_secs(secs));
    }

    fn done(&self) -> bool {
        !self.a.x.negotiating() && !self.b.x.negotiating()
    }

    /// Rounds of 1 s with traffic until both negotiations finished.
    fn run_until_done(&mut self, max_rounds: usize) -> usize {
        self.run_until_done_with(max_rounds, |_, p| p)
    }

    fn run_until_done_with(
        &mut self,
        max_rounds: usize,
        mut filter: impl FnMut(Sender, Vec<Packet>) -> Vec<Packet>,
    ) -> usize {
        for i in 0..max_rounds {
            self.round_with(&mut filter);
            self.traffic();
            self.a.drain(self.now.mono);
            self.b.drain(self.now.mono);
            if i > 0 && self.done() {
                return i;
            }
            self.advance(1);
        }
        panic!(
            "no agreement after {max_rounds} rounds: {:?} {:?}",
            self.a, self.b
        );
    }

    fn assert_agree(&self) {
        let a_tx = self.a.dp.tx.as_ref().expect("A has a TX key");
        let b_tx = self.b.dp.tx.as_ref().expect("B has a TX key");
        assert_eq!(self.b.dp.rx(a_tx.spi), Some(a_tx), "A's TX is B's RX");
        assert_eq!(self.a.dp.rx(b_tx.spi), Some(b_tx), "B's TX is A's RX");
        assert_ne!(a_tx.key, b_tx.key, "each direction has its own key");
    }
}

#[test]
fn two_instances_agree_on_keys_and_finish() {
    let mut net = Net::new();
    net.run_until_done(10);
    net.assert_agree();
    for n in [&net.a, &net.b] {
        assert_eq!(n.started(), vec![StartReason::NoKeys]);
        assert_eq!((n.dp.rx_installs, n.dp.tx_installs), (1, 1));
        assert_eq!(n.count(|e| matches!(e, Event::ExchangeCompleted { .. })), 1);
        assert_eq!(n.x.timeouts(), 0);
    }
    assert_eq!(net.a.x.peer_id(), ID_B);
    assert_eq!(net.b.x.peer_id(), ID_A);
    // Quiet afterwards: nothing to send while keys are fresh.
    net.advance(1);
    net.traffic();
    assert!(net.a.poll(net.now, &mut net.rng).is_empty());
}

#[test]
fn one_side_starting_is_enough() {
    let mut net = Net::new();
    // B does not poll at first: only A's offers arrive.
    let from_a = net.a.poll(net.now, &mut net.rng);
    assert_eq!(from_a.len(), 4);
    net.b.receive(from_a, net.now, &mut net.rng);
    assert_eq!(net.b.started(), vec![StartReason::PeerRenegotiate]);
    assert_eq!(net.b.dp.rx_installs, 1);
    net.run_until_done(10);
    net.assert_agree();
}

/// Position of a packet's fragment and state, by opening it.
fn fragment_of(p: &Packet) -> (ExchangeState, u8) {
    let h = OfferHeader::parse(p).expect("header");
    let key = kdf::offer_key(&ss(), OfferLabel::Sacrament, &h.seed, 0, 0);
    match Offer::open(p, &key).expect("opens").body().expect("body") {
        OfferBody::Exchange(x) => (x.state, x.fragment),
        other => panic!("{other:?}"),
    }
}

#[test]
fn lost_fragments_are_resent_by_the_next_pulse() {
    let mut net = Net::new();
    let mut first_pk = true;
    let mut first_ct = true;
    let rounds = net.run_until_done_with(20, |from, batch| {
        batch
            .into_iter()
            .filter(|p| {
                let (state, frag) = fragment_of(p);
                let drop = match (from, state) {
                    (Sender::A, ExchangeState::PublicKey) if frag == 2 && first_pk => {
                        first_pk = false;
                        true
                    }
                    (Sender::B, ExchangeState::Ciphertext) if frag == 1 && first_ct => {
                        first_ct = false;
                        true
                    }
                    _ => false,
                };
                !drop
            })
            .collect()
    });
    assert!(!first_pk && !first_ct, "both losses happened");
    assert!(rounds > 2, "loss cost at least one extra pulse");
    net.assert_agree();
}

#[test]
fn reordered_fragments_complete() {
    let mut net = Net::new();
    net.run_until_done_with(10, |_, mut batch| {
        batch.reverse();
        if !batch.is_empty() {
            let mid = batch.len() / 2;
            batch.swap(0, mid);
        }
        batch
    });
    net.assert_agree();
}

#[test]
fn duplicated_fragments_are_ignored() {
    let mut net = Net::new();
    net.run_until_done_with(10, |_, batch| batch.iter().flat_map(|p| [*p, *p]).collect());
    net.assert_agree();
    for n in [&net.a, &net.b] {
        // 3 of each set; the completing fragment's copy is "already done".
        assert_eq!(n.outcome_count(Outcome::Duplicate), 6, "{:?}", n.outcomes);
        assert_eq!((n.dp.rx_installs, n.dp.tx_installs), (1, 1));
    }
}

#[test]
fn timestamp_window_is_ten_seconds() {
    let mut rng = SeededEntropy::from_u64(1);
    let mut a = Node::new(ID_A);
    let offers = a.poll(start(), &mut rng);
    let mut b = Node::new(ID_B);
    for (delta, ok) in [(11i64, false), (-11, false), (10, true), (-10, true)] {
        let now = Now::new(start().mono, WALL.wrapping_add_signed(delta));
        let r = b.x.handle_offer(&offers[0], now, &mut rng);
        if ok {
            assert!(r.is_ok(), "{delta}: {r:?}");
        } else {
            assert!(
                matches!(r, Err(ExchangeError::Offer(OfferError::Stale { .. }))),
                "{delta}: {r:?}"
            );
        }
    }
}

#[test]
fn replay_of_own_offer_is_rejected() {
    let mut rng = SeededEntropy::from_u64(1);
    let mut a = Node::new(ID_A);
    let offers = a.poll(start(), &mut rng);
    assert_eq!(
        a.x.handle_offer(&offers[0], start(), &mut rng),
        Err(ExchangeError::ReplayedOwnOffer)
    );
    a.drain(start().mono);
    assert_eq!(a.count(|e| *e == Event::ReplayedOwnOffer), 1);
}

#[test]
fn garbage_and_wrong_keys_are_rejected() {
    let mut rng = SeededEntropy::from_u64(1);
    let mut a = Node::new(ID_A);
    let offers = a.poll(start(), &mut rng);
    let mut b = KeyExchange::with_instance_id(ExchangeConfig::default(), Key32::new([8; 32]), 5);
    assert_eq!(
        b.handle_offer(&offers[0], start(), &mut rng),
        Err(ExchangeError::Offer(OfferError::Auth))
    );
    assert_eq!(
        b.handle_offer(&offers[0][..622], start(), &mut rng),
        Err(ExchangeError::Offer(OfferError::TooShort(622)))
    );
    let mut kat = offers[0];
    kat[..8].copy_from_slice(b"KATEDRAL");
    assert!(matches!(
        b.handle_offer(&kat, start(), &mut rng),
        Err(ExchangeError::NotSacrament(_))
    ));
    // Another cathedral flock pair derives another offer key.
    let mut c = KeyExchange::with_instance_id(
        ExchangeConfig {
            flock_src: 0xaa01,
            flock_dst: 0xaa01,
            ..Default::default()
        },
        ss(),
        6,
    );
    assert_eq!(
        c.handle_offer(&offers[0], start(), &mut rng),
        Err(ExchangeError::Offer(OfferError::Auth))
    );
}

#[test]
fn peer_restart_restarts_the_exchange() {
    let mut net = Net::new();
    // B's CT sets never reach A, B's traffic does: A stops pulsing (its CT
    // was received) but keeps its negotiation, waiting for B's CT.
    for _ in 0..3 {
        net.round_with(|from, batch| match from {
            Sender::A => batch,
            Sender::B => batch
                .into_iter()
                .filter(|p| fragment_of(p).0 == ExchangeState::PublicKey)
                .collect(),
        });
        net.traffic();
        net.advance(1);
    }
    assert_eq!((net.a.dp.tx_installs, net.b.dp.tx_installs), (0, 1));
    assert!(net.a.x.negotiating());
    assert!(net.a.poll(net.now, &mut net.rng).is_empty());
    // B restarts: a new instance id and fresh state.
    net.b = Node::new(0x3333_3333_3333_3333);
    net.run_until_done(10);
    net.assert_agree();
    assert!(net.a.events.contains(&Event::PeerRestarted {
        old_id: ID_B,
        new_id: 0x3333_3333_3333_3333
    }));
    assert_eq!(
        net.a.started(),
        vec![StartReason::NoKeys, StartReason::PeerRestarted]
    );
    assert_eq!(net.a.x.peer_id(), 0x3333_3333_3333_3333);
}

#[test]
fn ttl_expires_after_fifteen_pulses_and_four_timeouts_back_off() {
    let mut rng = SeededEntropy::from_u64(9);
    let mut a = Node::new(ID_A);
    let mut now = start();
    let mut sent = 0;
    // First exchange: pulses at t = 0..14, 4 PK fragments each.
    for t in 0..15 {
        sent += a.poll(now, &mut rng).len();
        let timed_out = a.count(|e| matches!(e, Event::ExchangeTimedOut { .. }));
        assert_eq!(timed_out, usize::from(t == 14), "t={t}");
        now = now.advance(Duration::from_secs(1));
    }
    assert_eq!(sent, 15 * 4);
    assert!(!a.x.negotiating());
    assert_eq!(a.x.timeouts(), 1);

    // Three more, back to back ("no keys" each time), then a 60 s pause.
    // Driven by next_deadline alone: every deadline must lead somewhere.
    let mut polls = 0;
    loop {
        let d = a.x.next_deadline().expect("always something to do");
        if d > now.mono {
            now = now.advance(d.saturating_since(now.mono));
        }
        a.poll(now, &mut rng);
        polls += 1;
        assert!(polls < 100, "busy loop");
        if a.events.iter().any(|e| matches!(e, Event::Backoff { .. })) {
            break;
        }
    }
    // Exchange 1 pulsed at 100..=114, 2 at 115..=129; a deadline-driven
    // caller starts the next one in the poll after a timeout: 3 at
    // 129..=143, 4 at 143..=157.
    let t_backoff = now.mono;
    assert_eq!(t_backoff, Instant::from_secs(157));
    assert_eq!(
        a.events
            .iter()
            .filter_map(|e| match e {
                Event::ExchangeTimedOut { timeouts, .. } => Some(*timeouts),
                _ => None,
            })
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(a.events.contains(&Event::Backoff {
        until: Instant::from_secs(157 + 60)
    }));
    assert_eq!(a.x.next_deadline(), Some(Instant::from_secs(217)));
    let before = a.started().len();
    now = now.advance(Duration::from_secs(59));
    a.poll(now, &mut rng);
    assert_eq!(a.started().len(), before, "still backing off at +59 s");
    now = now.advance(Duration::from_secs(1));
    a.poll(now, &mut rng);
    assert_eq!(a.started().len(), before + 1, "next exchange at +60 s");
    assert_eq!(a.x.timeouts(), 0);
}

/// Puts an RX SA with this status into the node's data path.
fn set_rx(n: &mut Node, status: RxStatus) {
    n.dp.active = Some(Sa {
        k: KeyInstall {
            spi: status.spi,
            salt: [1, 2, 3, 4],
            key: Key32::new([5; 32]),
        },
        installed: status.installed,
        packets: status.packets,
    });
    n.x.set_rx_status(n.dp.status());
}

/// A node with an RX SA as the data path would report it, no negotiation.
fn node_with_rx(status: RxStatus, last_decrypted: Instant) -> Node {
    let mut n = Node::new(ID_A);
    set_rx(&mut n, status);
    n.x.rx_decrypted(last_decrypted);
    n
}

#[test]
fn rekey_triggers_have_the_reference_reasons() {
    let mut rng = SeededEntropy::from_u64(3);
    let t0 = Instant::from_secs(1000);
    let at = |s: u64| Now::new(Instant::from_secs(1000 + s), WALL + s);
    let rx = RxStatus {
        spi: 0x0102_0304,
        packets: 10,
        installed: t0,
    };

    // No keys at all.
    let mut n = Node::new(ID_A);
    n.poll(at(0), &mut rng);
    assert_eq!(n.started(), vec![StartReason::NoKeys]);

    // Nothing decrypted for 30 s (not at 29 s).
    let mut n = node_with_rx(rx, t0);
    assert!(n.poll(at(29), &mut rng).is_empty());
    assert_eq!(n.x.next_deadline(), Some(Instant::from_secs(1030)));
    assert_eq!(n.poll(at(30), &mut rng).len(), 4);
    assert_eq!(n.started(), vec![StartReason::GraceHeartbeatTimeout]);

    // 2^33 packets on the RX SA.
    let mut n = node_with_rx(rx, t0 + Duration::from_secs(5));
    n.poll(at(5), &mut rng);
    assert!(n.started().is_empty());
    set_rx(
        &mut n,
        RxStatus {
            packets: (1 << 33) - 1,
            ..rx
        },
    );
    n.poll(at(5), &mut rng);
    assert!(n.started().is_empty());
    set_rx(
        &mut n,
        RxStatus {
            packets: 1 << 33,
            ..rx
        },
    );
    n.poll(at(5), &mut rng);
    assert_eq!(n.started(), vec![StartReason::SaPacketLimit]);

    // RX SA 3500 s old while traffic flows.
    let mut n = node_with_rx(rx, t0);
    for s in (0..3500).step_by(10) {
        n.x.rx_decrypted(at(s).mono);
        n.poll(at(s), &mut rng);
    }
    assert!(n.started().is_empty());
    n.x.rx_decrypted(at(3499).mono);
    n.poll(at(3500), &mut rng);
    assert_eq!(n.started(), vec![StartReason::SaAgeLimit]);

    // Forced.
    let mut n = node_with_rx(rx, t0);
    n.x.force_exchange();
    n.poll(at(1), &mut rng);
    assert_eq!(n.started(), vec![StartReason::Resync]);
}

#[test]
fn heartbeat_timeout_after_a_real_exchange() {
    let mut net = Net::new();
    net.run_until_done(10);
    let quiet_from = net.now.mono;
    // No more traffic: A rekeys 30 s after the last decrypted packet.
    for _ in 0..29 {
        net.advance(1);
        net.a.poll(net.now, &mut net.rng);
    }
    assert_eq!(net.a.started(), vec![StartReason::NoKeys]);
    net.advance(1);
    net.a.poll(net.now, &mut net.rng);
    assert_eq!(net.now.mono, quiet_from + Duration::from_secs(30));
    assert_eq!(
        net.a.started(),
        vec![StartReason::NoKeys, StartReason::GraceHeartbeatTimeout]
    );
}

#[test]
fn dead_peer_erases_keys_after_120_s() {
    let mut net = Net::new();
    net.run_until_done(10);
    let quiet_from = net.now.mono;
    // The peer vanishes: A keeps trying (and timing out) but decrypts
    // nothing; at 120 s everything is erased.
    for s in 1..=120 {
        net.advance(1);
        net.a.poll(net.now, &mut net.rng);
        let erased = net.a.dp.erased;
        assert_eq!(erased, usize::from(s == 120), "t={s}");
    }
    assert_eq!(net.now.mono, quiet_from + Duration::from_secs(120));
    assert!(net.a.events.contains(&Event::PeerDead));
    assert!(net.a.dp.tx.is_none() && net.a.dp.active.is_none());
    // Right after: a new exchange for lack of keys.
    assert_eq!(net.a.started().last(), Some(&StartReason::NoKeys));
}

#[test]
fn nothing_starts_while_the_peer_is_unknown_or_the_kek_gate_is_closed() {
    let mut rng = SeededEntropy::from_u64(4);
    let mut a = Node::new(ID_A);
    let offers = a.poll(start(), &mut rng);

    let mut b = Node::new(ID_B);
    b.x.set_peer_known(false);
    assert!(b.poll(start(), &mut rng).is_empty());
    assert_eq!(b.x.next_deadline(), None);
    // The offer is still accepted (so the caller learns the address) but
    // starts nothing.
    let r = b.x.handle_offer(&offers[0], start(), &mut rng);
    assert_eq!(
        r,
        Ok(Accepted {
            peer_id: ID_A,
            outcome: Outcome::Ignored(IgnoreReason::NoNegotiation)
        })
    );
    b.x.set_peer_known(true);
    assert!(matches!(
        b.x.handle_offer(&offers[1], start(), &mut rng),
        Ok(Accepted {
            outcome: Outcome::PkFragment,
            ..
        })
    ));

    let mut c = Node::new(ID_B);
    c.x.require_ambry(true);
    assert!(c.poll(start(), &mut rng).is_empty());
    assert_eq!(
        c.x.handle_offer(&offers[0], start(), &mut rng)
            .map(|a| a.outcome),
        Ok(Outcome::Ignored(IgnoreReason::NoNegotiation))
    );
    c.x.ambry_installed();
    assert_eq!(c.poll(start(), &mut rng).len(), 4);
}

#[test]
fn ct_for_another_spi_forces_a_resync() {
    let mut net = Net::new();
    net.round();
    net.advance(1);
    let old_spi = net.b.x.local_spi().expect("B negotiating");
    // B loses its state but keeps its id (as after its negotiation timed
    // out and a new one started): A's CTs for B's old SPI force a re-sync.
    net.b = Node::new(ID_B);
    let from_a = net.a.poll(net.now, &mut net.rng);
    net.b.poll(net.now, &mut net.rng);
    let new_spi = net.b.x.local_spi().expect("B negotiating again");
    net.b.receive(from_a, net.now, &mut net.rng);
    assert_eq!(net.b.outcome_count(Outcome::Resync), 1);
    assert!(net.b.events.contains(&Event::Resync {
        received_spi: old_spi,
        local_spi: new_spi
    }));
    assert!(!net.b.x.negotiating());
    net.b.poll(net.now, &mut net.rng);
    assert_eq!(
        net.b.started(),
        vec![StartReason::NoKeys, StartReason::Resync]
    );
    // A ignores B's new PK sets (same peer id, its PK set is complete)
    // until its own negotiation times out; then they agree. The two poll
    // half a second apart and packets arrive at once: in exact lockstep
    // (both send before either receives) the reference's rules can keep
    // re-syncing, since B's newest SPI is discarded in the very round A
    // adopts it.
    let half = Duration::from_millis(500);
    for _ in 0..40 {
        let from_a = net.a.poll(net.now, &mut net.rng);
        net.b.receive(from_a, net.now, &mut net.rng);
        net.now = net.now.advance(half);
        let from_b = net.b.poll(net.now, &mut net.rng);
        net.a.receive(from_b, net.now, &mut net.rng);
        net.traffic();
        net.now = net.now.advance(half);
        if net.a.dp.tx.is_some() && net.b.dp.tx.is_some() && net.done() {
            break;
        }
    }
    assert!(net.done(), "{:?} {:?}", net.a.x, net.b.x);
    net.assert_agree();
}

#[test]
fn spis_carry_the_tunnel_id_and_headers_the_flocks() {
    let mut rng = SeededEntropy::from_u64(5);
    let cfg_a = ExchangeConfig {
        flock_src: 0xaaaa_aa01,
        flock_dst: 0xbbbb_bb02,
        tunnel_id: 0x0102,
        cathedral: true,
    };
    let cfg_b = ExchangeConfig {
        flock_src: 0xbbbb_bb02,
        flock_dst: 0xaaaa_aa01,
        tunnel_id: 0x0201,
        cathedral: true,
    };
    let mut net = Net::new();
    net.a = Node::with_config(ID_A, cfg_a);
    net.b = Node::with_config(ID_B, cfg_b);
    let offers = net.a.poll(net.now, &mut rng);
    for p in &offers {
        let h = OfferHeader::parse(p).expect("header");
        assert_eq!((h.flock_src, h.flock_dst), (0xaaaa_aa01, 0xbbbb_bb02));
        assert_eq!(h.spi >> 16, 0x0102);
    }
    net.b.receive(offers, net.now, &mut rng);
    net.run_until_done(10);
    net.assert_agree();
    assert_eq!(net.a.dp.tx.as_ref().map(|k| k.spi >> 16), Some(0x0201));
    assert_eq!(net.b.dp.tx.as_ref().map(|k| k.spi >> 16), Some(0x0102));
}

#[test]
fn clock_jump_renews_the_instance_id() {
    let mut rng = SeededEntropy::from_u64(6);
    let mut a = Node::new(ID_A);
    let mut now = start();
    a.poll(now, &mut rng);
    // 59 s of wall time in 1 s of monotonic time: no jump.
    now = Now::new(now.mono + Duration::from_secs(1), now.wall + 59);
    a.poll(now, &mut rng);
    assert_eq!(a.x.instance_id(), ID_A);
    // Long gaps between polls are not jumps either.
    now = now.advance(Duration::from_secs(500));
    a.poll(now, &mut rng);
    assert_eq!(a.x.instance_id(), ID_A);
    now = Now::new(now.mono + Duration::from_secs(1), now.wall + 61);
    a.poll(now, &mut rng);
    assert_ne!(a.x.instance_id(), ID_A);
    assert!(a.events.contains(&Event::ClockJump {
        new_id: a.x.instance_id()
    }));
    assert_eq!(a.started().last(), Some(&StartReason::ClockJump));
}

#[test]
fn ambry_switch_restarts_and_erases_if_the_peer_never_follows() {
    let mut net = Net::new();
    net.a.x.require_ambry(true);
    net.b.x.require_ambry(true);
    net.a.x.ambry_installed();
    net.b.x.ambry_installed();
    net.run_until_done(10);
    // A gets a new ambry; B does not: A's offers no longer authenticate.
    net.a
        .x
        .ambry_switch(net.now, Key32::new([9; 32]), &mut net.rng);
    net.a.drain(net.now.mono);
    assert_eq!(net.a.started().last(), Some(&StartReason::AmbrySwitch));
    let switched = net.now.mono;
    for _ in 0..74 {
        net.advance(1);
        net.round();
        net.traffic();
        assert_eq!(net.a.dp.erased, 0);
    }
    net.advance(1);
    net.a.poll(net.now, &mut net.rng);
    assert_eq!(net.now.mono, switched + Duration::from_secs(75));
    assert_eq!(net.a.dp.erased, 1);
    assert!(net.a.events.contains(&Event::AmbryRenegotiationFailed));
    // Retries during the window were forced re-syncs.
    assert!(net.a.started().contains(&StartReason::Resync));
}

/// Re-seals an offer of `from` after `edit` changed its exchange body.
fn reseal(p: &Packet, edit: impl FnOnce(&mut ExchangeBody)) -> Packet {
    let h = OfferHeader::parse(p).expect("header");
    let key = kdf::offer_key(&ss(), OfferLabel::Sacrament, &h.seed, 0, 0);
    let o = Offer::open(p, &key).expect("opens");
    let OfferBody::Exchange(mut x) = o.body().expect("body") else {
        panic!("not an exchange");
    };
    edit(&mut x);
    Offer::new(h, o.timestamp(), &OfferBody::Exchange(x), *o.extra()).seal(&key)
}

#[test]
fn all_zero_x25519_key_fails_the_exchange() {
    let mut rng = SeededEntropy::from_u64(7);
    let mut a = Node::new(ID_A);
    let offers: Vec<Packet> = a
        .poll(start(), &mut rng)
        .iter()
        .map(|p| reseal(p, |x| x.ecdh = [0; 32]))
        .collect();
    let mut b = Node::new(ID_B);
    b.receive(offers, start(), &mut rng);
    assert_eq!(b.outcome_count(Outcome::Failed(FailureReason::X25519)), 1);
    assert_eq!(b.dp.rx_installs, 0);
    assert!(!b.x.negotiating());
    assert!(
        b.events
            .iter()
            .any(|e| matches!(e, Event::ExchangeFailed { .. }))
    );
}

#[test]
fn zero_spi_is_ignored() {
    let mut rng = SeededEntropy::from_u64(8);
    let mut a = Node::new(ID_A);
    let p = reseal(&a.poll(start(), &mut rng)[0], |x| x.spi = 0);
    let mut b = Node::new(ID_B);
    assert_eq!(
        b.x.handle_offer(&p, start(), &mut rng).map(|a| a.outcome),
        Ok(Outcome::Ignored(IgnoreReason::ZeroSpi))
    );
    assert!(!b.x.negotiating());
}

#[test]
fn retransmitted_pk_after_completion_is_ignored() {
    let mut net = Net::new();
    let mut first = None;
    net.run_until_done_with(10, |from, batch| {
        if from == Sender::A && first.is_none() {
            first = batch.first().copied();
        }
        batch
    });
    let late = first.expect("A sent offers");
    // A's PK fragment of the finished negotiation arrives late at B.
    assert_eq!(
        net.b
            .x
            .handle_offer(&late, net.now, &mut net.rng)
            .map(|a| a.outcome),
        Ok(Outcome::Ignored(IgnoreReason::AlreadyNegotiated))
    );
    assert!(!net.b.x.negotiating());
    net.b.drain(net.now.mono);
    assert_eq!(net.b.dp.rx_installs, 1);
}

// ---------------------------------------------------------------- pilgrim

fn key_of(cmd: Option<KeyCommand>) -> KeyInstall {
    match cmd {
        Some(KeyCommand::InstallTx(k) | KeyCommand::InstallRx(k)) => k,
        other => panic!("expected an install, got {other:?}"),
    }
}

#[test]
fn pilgrim_delivers_and_rotates_keys_to_the_shrine() {
    let mut rng = SeededEntropy::from_u64(11);
    let mut pilgrim = Pilgrim::new(ss(), &mut rng);
    let mut shrine = Shrine::new(ss());
    let mut now = start();

    pilgrim.poll(now, &mut rng);
    let tx = key_of(pilgrim.poll_key());
    assert_eq!(
        pilgrim.poll_event(),
        Some(PilgrimEvent::NewKey {
            reason: KeyReason::NoKeys,
            spi: tx.spi
        })
    );
    let first = pilgrim.poll_transmit().expect("first pulse at once");
    assert!(pilgrim.poll_transmit().is_none());
    assert_eq!(shrine.handle_offer(&first, now), Ok(tx.spi));
    assert_eq!(key_of(shrine.poll_key()), tx);
    assert_eq!(
        shrine.handle_offer(&first, now),
        Err(ShrineError::KnownSpi(tx.spi))
    );

    // 115 pulses, 30 s apart (driven by next_deadline), then silence.
    let mut pulses = 1;
    let mut last_pulse = now.mono;
    loop {
        let d = pilgrim.next_deadline();
        now = now.advance(d.saturating_since(now.mono));
        pilgrim.poll(now, &mut rng);
        if pilgrim.poll_key().is_some() {
            break;
        }
        while let Some(p) = pilgrim.poll_transmit() {
            assert_eq!(
                now.mono.saturating_since(last_pulse),
                Duration::from_secs(30)
            );
            last_pulse = now.mono;
            pulses += 1;
            assert_eq!(
                shrine.handle_offer(&p, now),
                Err(ShrineError::KnownSpi(tx.spi))
            );
        }
    }
    assert_eq!(pulses, 115);
    assert_eq!(
        last_pulse,
        start().mono + Duration::from_secs(114 * 30),
        "last pulse at 3420 s"
    );
    // The rotation happened at 3500 s with a new key.
    assert_eq!(now.mono, start().mono + Duration::from_secs(3500));
    let events: Vec<PilgrimEvent> = core::iter::from_fn(|| pilgrim.poll_event()).collect();
    assert!(events.contains(&PilgrimEvent::OfferExpired { spi: tx.spi }));
    let new_spi = match events.last() {
        Some(PilgrimEvent::NewKey {
            reason: KeyReason::SaAgeLimit,
            spi,
        }) => *spi,
        other => panic!("{other:?}"),
    };
    assert_ne!(new_spi, tx.spi);
    let p = pilgrim.poll_transmit().expect("new key announced at once");
    assert_eq!(shrine.handle_offer(&p, now), Ok(new_spi));
    let rx = key_of(shrine.poll_key());
    assert_eq!(rx.spi, new_spi);
    assert_ne!(rx.key, tx.key);
}

#[test]
fn shrine_rejects_padded_offers_and_old_timestamps() {
    let mut rng = SeededEntropy::from_u64(12);
    let offer_at = |seed: u64| {
        let mut rng = SeededEntropy::from_u64(seed);
        let mut p = Pilgrim::new(ss(), &mut rng);
        p.poll(start(), &mut rng);
        p.poll_transmit().expect("offer")
    };
    let mut shrine = Shrine::new(ss());
    let p = offer_at(1);
    let mut padded = p.to_vec();
    padded.push(0);
    assert_eq!(
        shrine.handle_offer(&padded, start()),
        Err(ShrineError::Length(624))
    );
    assert_eq!(
        shrine.handle_offer(&p[..622], start()),
        Err(ShrineError::Length(622))
    );
    for (i, (delta, ok)) in [
        (1751i64, false),
        (-1751, false),
        (1750, true),
        (-1750, true),
    ]
    .into_iter()
    .enumerate()
    {
        let p = offer_at(100 + i as u64);
        let now = Now::new(start().mono, WALL.wrapping_add_signed(delta));
        let r = shrine.handle_offer(&p, now);
        if ok {
            assert!(r.is_ok(), "{delta}: {r:?}");
        } else {
            assert!(
                matches!(r, Err(ShrineError::Offer(OfferError::Stale { .. }))),
                "{delta}: {r:?}"
            );
        }
    }
    // An exchange offer (other label) does not authenticate at a shrine.
    let mut a = Node::new(ID_A);
    let x = a.poll(start(), &mut rng);
    assert_eq!(
        shrine.handle_offer(&x[0], start()),
        Err(ShrineError::Offer(OfferError::Auth))
    );
}
