//! Bad configuration: every malformed line is reported as `file:line:` with
//! exit status 2, a missing or short secret gives a clear error, and
//! nothing is started (no TUN device appears).

use std::process::Command;

use chantry_e2e::*;

fn good(dir: &TempDir) -> String {
    let secret = dir.join("s.key");
    write_secret(&secret, 1);
    let mut s = format!(
        "instance chbad\nsecret {}\nlocal 127.0.0.1:4500\npeer 127.0.0.2:4500\ntunnel 10.9.0.1/30 1422\n",
        secret.display()
    );
    for r in roles("tunnel") {
        s += &format!("run {r} as {}\n", uid_of(r, 0));
    }
    s
}

fn run(ns: &Netns, conf: &std::path::Path) -> (i32, String) {
    let out = ns
        .cmd(&[
            chantryd().to_str().expect("utf-8 path"),
            "run",
            "-c",
            conf.to_str().expect("utf-8 path"),
        ])
        .output()
        .expect("chantryd");
    let links = ns.run(&["ip", "-o", "link"]);
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains("chbad"),
        "a TUN device was created for a bad configuration"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn malformed_lines_name_file_and_line_and_exit_2() {
    let ns = Netns::new("c");
    let dir = TempDir::new();
    let base = good(&dir);
    let lines = base.lines().count();
    let cases = [
        ("tunnel 10.9.0.1/33 1422", "tunnel"),
        ("peer 127.0.0.2", "peer"),
        ("local nowhere:4500", "local"),
        ("mode sideways", "mode"),
        ("frobnicate yes", "frobnicate"),
        ("tfc maybe", "tfc"),
        ("spi 0x1g", "spi"),
        ("run heaven-rx as", "run"),
        ("route 10.0.0.0/40", "route"),
    ];
    for (bad, keyword) in cases {
        let path = dir.join("bad.conf");
        std::fs::write(&path, format!("{base}{bad}\n")).unwrap();
        let (code, err) = run(&ns, &path);
        assert_eq!(code, 2, "{bad}: {err}");
        let at = format!("{}:{}:", path.display(), lines + 1);
        assert!(err.contains(&at), "{bad}: `{err}` does not name {at}");
        assert!(
            err.contains(keyword),
            "{bad}: `{err}` does not name {keyword}"
        );
    }
}

#[test]
fn missing_or_short_secret_is_a_clear_error() {
    let ns = Netns::new("c");
    let dir = TempDir::new();
    let base = good(&dir);
    let secret = dir.join("s.key");
    std::fs::write(&secret, [0u8; 16]).unwrap();
    let path = dir.join("short.conf");
    std::fs::write(&path, &base).unwrap();
    let (code, err) = run(&ns, &path);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("s.key"), "{err}");
    std::fs::remove_file(&secret).unwrap();
    let (code, err) = run(&ns, &path);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("s.key"), "{err}");
}

#[test]
fn check_subcommand_accepts_a_good_file() {
    let dir = TempDir::new();
    let path = dir.join("good.conf");
    std::fs::write(&path, good(&dir)).unwrap();
    let st = Command::new(chantryd())
        .args(["check", "-c", path.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
}
