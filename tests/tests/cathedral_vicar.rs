//! A vicar-imported profile comes up through the chantry service: the
//! operator makes the device's vicar file with `chantry-cathedral vicar`
//! (KEK, COSK and cathedral secret, no shared secret), the service imports
//! it (`chantryctl import-vicar`) and brings it up without a secret file;
//! the tunnel waits for the cathedral's first ambry, the guardian writes
//! `keys/NAME.secret` from it, and the tunnel keys and carries a ping to a
//! plain chantryd client of the same flock.
//!
//! Namespaces: the cathedral `c` in the middle, `a` (the service) and `b`
//! (a chantryd client with a `kek`) on either side, no route between them.

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use chantry_e2e::cathedral::*;
use chantry_e2e::service::*;
// Not the cathedral status counter of the same name.
use chantry_e2e::service::wait_status;
use chantry_e2e::*;

const CATHEDRAL: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 1);
const CAT_B_SIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 17);
const OUT_A: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 2);
const OUT_B: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 18);
const IN_A: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
const IN_B: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);

#[test]
fn a_vicar_profile_starts_without_a_secret_and_keys_after_its_first_ambry() {
    let c = Netns::new("c");
    let a = Netns::new("a");
    let b = Netns::new("b");
    link(&c, CATHEDRAL, &a, OUT_A, 28, "a");
    link(&c, CAT_B_SIDE, &b, OUT_B, 28, "b");
    route(&b, &format!("{CATHEDRAL}/32"), CAT_B_SIDE);
    let dir = TempDir::new();
    let keks = generate_keks(&dir);
    let flock = format!("{FLOCK:x}");
    let bundle = dir.join("flock.bundle");
    write_bundle(&keks, &bundle);

    let (ia, ib) = (identity(1), identity(2));
    let cathedral = SocketAddrV4::new(CATHEDRAL, 4500);
    let cc = cathedral_conf(
        &dir,
        &CathedralSpec::new(cathedral).ambry(&bundle),
        &[&ia, &ib],
    );
    // Device a's keys go into its vicar file only.
    let (cs, cosk) = (dir.join("a.cs"), dir.join("a.cosk"));
    write_key(&cs, &ia.cs);
    write_key(&cosk, &ia.cosk.to_keypair_bytes());
    let vicar_file = dir.join("a.vicar");
    let passphrase = "a vicar passphrase for the e2e test";
    let out = std::process::Command::new(tool())
        .args(["vicar", vicar_file.to_str().expect("utf-8")])
        .args([
            "--cathedral",
            &cathedral.to_string(),
            "--id",
            &format!("{:x}", ia.id),
        ])
        .args(["--flock", &flock, "--tunnel", &format!("{:04x}", ia.spi)])
        .args(["--kek", kek_of(&keks, 1).to_str().expect("utf-8")])
        .args([
            "--cosk",
            cosk.to_str().expect("utf-8"),
            "--cs",
            cs.to_str().expect("utf-8"),
        ])
        .env("CHANTRY_PASSPHRASE", passphrase)
        .output()
        .expect("chantry-cathedral vicar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let spec_b = ClientSpec {
        kek: Some(kek_of(&keks, 2)),
        ..ClientSpec::new(1, SocketAddrV4::new(OUT_B, 4500), IN_B, cathedral)
    };
    let fb = client_conf(&dir, &spec_b, &ib);
    let cat = Daemon::start(&c, &cc, dir.join("cathedral.log"), &[]);
    assert!(
        cat.wait_ready(Duration::from_secs(20)),
        "{}",
        cat.log_text()
    );
    let db = Daemon::start(&b, &fb.conf, dir.join("b.log"), &[]);
    assert!(db.wait_ready(Duration::from_secs(20)), "{}", db.log_text());

    let service = Service::start(&a, &dir);
    let sock = &service.socket;
    let mut lines = format!("instance chvic0\nlocal {OUT_A}:4500\ntunnel {IN_A}/30 1422\n");
    for r in roles("tunnel") {
        lines.push_str(&format!("run {r} as {}\n", uid_of(r, 0)));
    }
    let lines_path = dir.join("lines.conf");
    fs::write(&lines_path, &lines).expect("lines");
    let o = ctl_command(None, sock)
        .args(["import-vicar", "home", vicar_file.to_str().expect("utf-8")])
        .args(["--config", lines_path.to_str().expect("utf-8")])
        .env("CHANTRY_PASSPHRASE", passphrase)
        .output()
        .expect("chantryctl");
    assert!(o.status.success(), "{}", describe(&o));
    let secret = service.state.join("keys/home.secret");
    assert!(!secret.exists(), "no secret before the first ambry");

    let o = ctl(None, sock, &["up", "home"]);
    assert!(o.status.success(), "{}", describe(&o));
    let pinged = a.ping_until(IN_B, Duration::from_secs(60));
    assert!(
        pinged.is_some(),
        "no ping from the vicar profile\nservice:\n{}\ncathedral:\n{}\nb:\n{}",
        service.log_text(),
        cat.log_text(),
        db.log_text()
    );
    assert!(
        wait_status(sock, "home", Duration::from_secs(15), |s| s["state"]
            == "up")
        .is_some(),
        "{}",
        service.log_text()
    );
    // The guardian wrote the secret from the ambry: root-only, the same
    // 32 bytes as the peer's.
    let got = fs::read(&secret).expect("keys/home.secret");
    assert_eq!(got.len(), 32);
    assert_eq!(
        fs::metadata(&secret).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    assert!(
        wait_for(Duration::from_secs(5), || fb.secret.exists()),
        "b has no secret file"
    );
    assert_eq!(got, fs::read(&fb.secret).expect("b's secret"));
}
