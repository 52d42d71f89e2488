//! Two federated chantryd cathedrals (behaviour.md §7.3, §8.8, §8.9): each
//! client registers at a different cathedral, the cathedrals federate
//! their INFO offers under the shared sync secret and relay the tunnel
//! cathedral to cathedral. Each client keeps the cathedral list its
//! cathedral offers (REMEMBRANCE, written 0400). When the first cathedral
//! stops, its client falls silent there for 45 s, fails over to the
//! second one from its list, and the tunnel works again through the
//! second cathedral; a restarted peer forms a new tunnel through it.
//!
//! Namespaces: `a` - `c1` - `c2` - `b`. The cathedrals forward between
//! their links (so `a` can reach `c2` through `c1`'s namespace even when
//! the first cathedral's daemon is gone); `a` and `b` have no route to
//! each other, only to the cathedrals.

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use chantry_e2e::cathedral::*;
use chantry_e2e::*;

const C1: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 1);
const OUT_A: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 2);
const C2: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 17);
const OUT_B: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 18);
const C1_MID: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 33);
const C2_MID: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 34);
const IN_A: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
const IN_B: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);

#[test]
fn federated_cathedrals_relay_and_a_client_fails_over_by_remembrance() {
    let a = Netns::new("a");
    let c1 = Netns::new("c1");
    let c2 = Netns::new("c2");
    let b = Netns::new("b");
    link(&c1, C1, &a, OUT_A, 28, "a");
    link(&c2, C2, &b, OUT_B, 28, "b");
    link(&c1, C1_MID, &c2, C2_MID, 28, "m");
    forwarding(&c1);
    forwarding(&c2);
    route(&c1, "192.168.78.16/28", C2_MID);
    route(&c2, "192.168.78.0/28", C1_MID);
    route(&a, &format!("{C2}/32"), C1);
    route(&b, &format!("{C1}/32"), C2);

    let dir = TempDir::new();
    let (ia, ib) = (identity(1), identity(2));
    let (k1, k2) = (SocketAddrV4::new(C1, 4500), SocketAddrV4::new(C2, 4500));
    let cathedral = |name, side, at, peer| {
        let spec = CathedralSpec::new(at).named(name, side).federate(&[peer]);
        cathedral_conf(&dir, &spec, &[&ia, &ib])
    };
    let conf1 = cathedral("chcat1", 2, k1, k2);
    let conf2 = cathedral("chcat2", 3, k2, k1);
    let spec = |side, out, inner, at| ClientSpec {
        remembrance: true,
        ..ClientSpec::new(side, SocketAddrV4::new(out, 4500), inner, at)
    };
    let fa = client_conf(&dir, &spec(0, OUT_A, IN_A, k1), &ia);
    let fb = client_conf(&dir, &spec(1, OUT_B, IN_B, k2), &ib);
    let mut cat1 = Daemon::start(&c1, &conf1, dir.join("c1.log"), &[]);
    let cat2 = Daemon::start(&c2, &conf2, dir.join("c2.log"), &[]);
    for d in [&cat1, &cat2] {
        assert!(
            d.wait_ready(Duration::from_secs(20)),
            "cathedral:\n{}",
            d.log_text()
        );
    }
    let da = Daemon::start(&a, &fa.conf, dir.join("a.log"), &[]);
    let mut db = Daemon::start(&b, &fb.conf, dir.join("b.log"), &[]);
    for d in [&da, &db] {
        assert!(
            d.wait_ready(Duration::from_secs(20)),
            "client:\n{}",
            d.log_text()
        );
    }
    let logs = |cat1: &Daemon, cat2: &Daemon, da: &Daemon, db: &Daemon| {
        format!(
            "c1:\n{}\nc2:\n{}\na:\n{}\nb:\n{}",
            cat1.log_text(),
            cat2.log_text(),
            da.log_text(),
            db.log_text()
        )
    };
    // The tunnel forms through both cathedrals.
    assert!(
        a.ping_until(IN_B, Duration::from_secs(60)).is_some(),
        "no ping a -> b through the federation within 60 s\n{}",
        logs(&cat1, &cat2, &da, &db)
    );
    assert!(
        b.ping_until(IN_A, Duration::from_secs(10)).is_some(),
        "no ping b -> a"
    );
    for cat in [&cat1, &cat2] {
        assert!(
            wait_for(Duration::from_secs(10), || last_status(
                &cat.log_text(),
                "federated_in"
            ) > 0
                && last_status(&cat.log_text(), "data_relayed") > 0),
            "{}",
            cat.log_text()
        );
    }
    // a's remembrance: its cathedral first, then the federation peer;
    // written by the guardian, read-only.
    assert!(
        wait_for(Duration::from_secs(20), || fa.remembrance.exists()),
        "no remembrance file\n{}",
        da.log_text()
    );
    let bytes = fs::read(&fa.remembrance).expect("remembrance");
    assert_eq!(bytes.len(), 192);
    assert_eq!(&bytes[0..8], &[192, 168, 78, 1, 192, 168, 78, 17]);
    assert_eq!(&bytes[128..132], &[0x11, 0x94, 0x11, 0x94]);
    let mode = fs::metadata(&fa.remembrance)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o400);

    // The first cathedral goes away. a hears nothing for 45 s, fails over
    // to the second cathedral, and the tunnel works again through it.
    let stopped = Instant::now();
    cat1.stop();
    assert!(
        da.wait_log("failing over", Duration::from_secs(60)),
        "a did not fail over\n{}",
        logs(&cat1, &cat2, &da, &db)
    );
    let back = a.ping_until(IN_B, Duration::from_secs(60));
    assert!(
        back.is_some(),
        "no ping a -> b through the second cathedral\n{}",
        logs(&cat1, &cat2, &da, &db)
    );
    eprintln!(
        "tunnel back through the second cathedral {:?} after the first stopped",
        stopped.elapsed()
    );
    assert!(
        da.log_text().contains(&format!("peer={C2}:4500")),
        "a's peer is not the second cathedral\n{}",
        da.log_text()
    );
    // a hears the second cathedral now: its list, the second cathedral
    // first, replaces the file.
    assert!(
        wait_for(Duration::from_secs(20), || fs::read(&fa.remembrance)
            .is_ok_and(
                |b| b.get(0..8) == Some(&[192, 168, 78, 17, 192, 168, 78, 1][..])
            )),
        "a's remembrance file was not rewritten by the second cathedral\n{}",
        da.log_text()
    );

    // A restarted peer (new instance, new keys) forms a new tunnel with a
    // through the second cathedral within 60 s.
    let again = Instant::now();
    db.stop();
    let db = Daemon::start(&b, &fb.conf, dir.join("b2.log"), &[]);
    assert!(db.wait_ready(Duration::from_secs(20)), "{}", db.log_text());
    assert!(
        b.ping_until(IN_A, Duration::from_secs(60)).is_some(),
        "no new tunnel after b restarted\n{}",
        logs(&cat1, &cat2, &da, &db)
    );
    eprintln!(
        "new tunnel {:?} after the peer was stopped",
        again.elapsed()
    );
}
