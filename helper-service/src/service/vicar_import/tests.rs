//! Vicar imports against a real store: the files.md §9 example file as
//! the reference's code writes it, a file made by `vicar::encrypt`, wrong
//! passphrases and files, configuration errors with their lines, and the
//! export that re-imports.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use chantry_core::entropy::SeededEntropy;
use chantry_core::ipc::{ImportRequest, KeyMaterial, Passphrase, Response, VicarImportRequest};
use chantry_core::secret::Secret;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;
use crate::service::logbook::{self, LogBook};
use crate::service::profile;

/// The files.md §9 example (tunnel 0x0102, flock 1122334455667700, id
/// 0x0badf00d, KEK 00..1f, CS 20..3f, COSK 40..7f, 127.0.0.1:4500, salt
/// 00..1f, passphrase `sanctum`) as the reference's code writes it (the
/// same bytes as app-core's vicar test).
const REFERENCE_FILE: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f068feca784576c355164fc6cec0e968d7ff2b53cb44afd58c5068db54b60adb0c9af80c81aa5bd255ffe5dc480f1bf7e968fc6d0f4a198c395fe94daf2625e40e776cad068f523940c5350f3aa818be4a63ea55c7122fac41684b5590bc177f973dc2cb31b0958c54a8013a24654fabec4e34c59031cf331274ea793855932470770294d9191bd807d74509e6f194d6b54ed0aba8819f574f45f2d26a411c7deaf007de94c486b8859137eab108fc385f382684e5683c460";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn counting(from: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| from + i as u8).collect()
}

/// The lines a user gives: everything but what the vicar file holds.
fn user_config(instance: &str) -> String {
    let mut s =
        format!("# my laptop\ninstance {instance}\nlocal 0.0.0.0:0\ntunnel 10.9.0.1/30 1422\n");
    for r in chantry_core::config::Mode::Tunnel.roles() {
        s.push_str(&format!("run {} as nobody\n", r.as_str()));
    }
    s
}

fn request(name: &str, vicar: Vec<u8>, passphrase: &str, config: String) -> VicarImportRequest {
    VicarImportRequest {
        name: name.into(),
        vicar: KeyMaterial::new(vicar),
        passphrase: Passphrase::new(passphrase.into()),
        config,
        auto_connect: false,
        always_on: true,
    }
}

struct Fixture {
    dir: PathBuf,
    store: Store,
    rt: tokio::runtime::Runtime,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("chantry-vicar-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = rt.block_on(Store::open(&dir)).unwrap();
        Fixture { dir, store, rt }
    }

    fn import(&self, req: VicarImportRequest) -> Result<Response, ErrorReply> {
        self.rt.block_on(import(&self.store, req, 0))
    }

    fn key(&self, name: &str, kind: KeyFile) -> Option<Vec<u8>> {
        let p = self.store.key_file_path(name, kind);
        let bytes = std::fs::read(&p).ok()?;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
        Some(bytes)
    }

    fn nothing_left(&self, name: &str) {
        for kind in KeyFile::ALL {
            assert_eq!(self.key(name, kind), None, "{kind:?} left behind");
        }
        assert_eq!(self.rt.block_on(self.store.get(name)).unwrap(), None);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn the_reference_example_imports_and_exports_what_reimports() {
    let f = Fixture::new("ref");
    let user = user_config("vic1");
    assert_eq!(
        f.import(request(
            "home",
            unhex(REFERENCE_FILE),
            "sanctum",
            user.clone()
        )),
        Ok(Response::Done)
    );
    let key = |k: KeyFile| f.store.key_file_path("home", k).display().to_string();
    let expected = format!(
        "{user}# From the vicar file (chantryctl import-vicar); the keys are the service's copies.\n\
         spi 0x0102\nkek {}\nsecret {}\ncathedral_id 0x0badf00d\ncathedral_flock 0x1122334455667700\n\
         cathedral_secret {}\ncathedral_cosk {}\ncathedral 127.0.0.1:4500\n",
        key(KeyFile::Kek),
        key(KeyFile::Secret),
        key(KeyFile::CathedralSecret),
        key(KeyFile::CathedralCosk),
    );
    let p = f.rt.block_on(f.store.get("home")).unwrap().unwrap();
    assert_eq!(p.config, expected);
    assert_eq!((p.instance.as_str(), p.mode.as_str()), ("vic1", "tunnel"));
    assert!(p.always_on && !p.auto_connect);
    assert_eq!(f.key("home", KeyFile::Kek), Some(counting(0x00, 32)));
    assert_eq!(
        f.key("home", KeyFile::CathedralSecret),
        Some(counting(0x20, 32))
    );
    assert_eq!(
        f.key("home", KeyFile::CathedralCosk),
        Some(counting(0x40, 64))
    );
    // The shared secret comes later, from an ambry.
    assert_eq!(f.key("home", KeyFile::Secret), None);
    // The parser takes it as a cathedral client, its key files present.
    let c = Config::parse("home.conf", &p.config).unwrap();
    assert!(c.cathedral_client() && !c.secret_must_exist());
    assert_eq!(c.spi(), 0x0102);
    assert_eq!(c.cathedral_id(), Some(0x0bad_f00d));
    c.check_files().unwrap();

    // Export, remove, import the export: the same profile and keys.
    let exported = profile::export(&f.store, p.clone()).unwrap();
    assert_eq!(exported.secret.expose(), b"");
    assert_eq!(
        exported.kek.as_ref().map(|k| k.expose().to_vec()),
        Some(counting(0, 32))
    );
    assert_eq!(
        exported
            .cathedral_cosk
            .as_ref()
            .map(|k| k.expose().to_vec()),
        Some(counting(0x40, 64))
    );
    assert!(f.rt.block_on(f.store.remove("home")).unwrap());
    f.nothing_left("home");
    let back = ImportRequest {
        name: exported.name,
        config: exported.config,
        secret: exported.secret,
        auto_connect: exported.auto_connect,
        always_on: exported.always_on,
        kek: exported.kek,
        cathedral_secret: exported.cathedral_secret,
        cathedral_cosk: exported.cathedral_cosk,
    };
    let again = profile::prepare(&f.store, &back).unwrap();
    assert_eq!(again, p);
    assert_eq!(
        f.key("home", KeyFile::CathedralSecret),
        Some(counting(0x20, 32))
    );
    assert_eq!(f.key("home", KeyFile::Secret), None);

    // A name that is taken is refused before the KDF.
    assert!(f.rt.block_on(f.store.insert(&again)).unwrap());
    let e = f
        .import(request("home", unhex(REFERENCE_FILE), "sanctum", user))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Exists);
}

#[test]
fn wrong_passphrases_and_files_leave_nothing() {
    let f = Fixture::new("wrong");
    let e = f
        .import(request(
            "w",
            unhex(REFERENCE_FILE),
            "Sanctum",
            user_config("w1"),
        ))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Passphrase, "{e:?}");
    assert_eq!(
        e.message,
        "wrong passphrase for this vicar file (or the file was altered)"
    );
    f.nothing_left("w");

    let e = f
        .import(request("w", vec![0; 100], "sanctum", user_config("w1")))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Invalid, "{e:?}");
    assert_eq!(
        e.message,
        "not a vicar file: vicar file is 100 bytes, expected exactly 216"
    );
    let e = f
        .import(request(
            "w",
            unhex(REFERENCE_FILE),
            &"p".repeat(256),
            user_config("w1"),
        ))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Passphrase, "{e:?}");
    let e = f
        .import(request(
            "../w",
            unhex(REFERENCE_FILE),
            "sanctum",
            user_config("w1"),
        ))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Invalid, "{e:?}");
    f.nothing_left("w");
}

#[test]
fn config_errors_name_the_callers_line() {
    let f = Fixture::new("lines");
    let file = unhex(REFERENCE_FILE);
    // A line the vicar file provides (line 3 of the caller's text).
    let mut with_secret = user_config("c1");
    with_secret.insert_str(with_secret.find("local").unwrap(), "secret /etc/x\n");
    let e = f
        .import(request("c", file.clone(), "sanctum", with_secret))
        .unwrap_err();
    assert_eq!((e.code, e.line), (ErrorCode::Invalid, Some(3)), "{e:?}");
    assert!(
        e.message
            .starts_with("c.conf:3: secret: comes from the vicar file"),
        "{}",
        e.message
    );
    // A bad value: the parser's message, the caller's line.
    let bad_mtu = user_config("c1").replace("1422", "99");
    let e = f
        .import(request("c", file.clone(), "sanctum", bad_mtu))
        .unwrap_err();
    assert_eq!((e.code, e.line), (ErrorCode::Invalid, Some(4)), "{e:?}");
    assert!(e.message.starts_with("c.conf:4: tunnel:"), "{}", e.message);
    // Another mode.
    let pilgrim = format!("mode pilgrim\n{}", user_config("c1"));
    let e = f
        .import(request("c", file.clone(), "sanctum", pilgrim))
        .unwrap_err();
    assert_eq!((e.code, e.line), (ErrorCode::Invalid, Some(1)), "{e:?}");
    // A missing required line is no single line's fault.
    let no_instance = user_config("c1").replace("instance c1\n", "");
    let e = f
        .import(request("c", file, "sanctum", no_instance))
        .unwrap_err();
    assert_eq!((e.code, e.line), (ErrorCode::Invalid, None), "{e:?}");
    assert!(e.message.contains("instance"), "{}", e.message);
    f.nothing_left("c");
}

#[test]
fn a_file_made_by_encrypt_imports_and_no_secret_is_logged() {
    let f = Fixture::new("made");
    let profile = VicarProfile {
        cathedral_id: 0x0102_0304,
        cathedral_ip: Ipv4Addr::new(192, 0, 2, 44),
        cathedral_port: 4600,
        flock: 0xcafe_ba00_0000_0042,
        tunnel: 0x0a0b,
        kek: Secret::new([0x5a; 32]),
        cosk: Secret::new([0xc3; 64]),
        cathedral_secret: Secret::new([0x7e; 32]),
    };
    let passphrase = "correct horse battery staple";
    let file = vicar::encrypt(
        passphrase.as_bytes(),
        &profile,
        &mut SeededEntropy::from_u64(5),
    )
    .unwrap();

    let logs = LogBook::new(1000);
    logs.set_level(logbook::LogLevel::Debug);
    let subscriber =
        tracing_subscriber::registry().with(logs.layer().with_filter(logbook::layer_filter()));
    let answer = tracing::subscriber::with_default(subscriber, || {
        f.import(request(
            "made",
            file.to_vec(),
            passphrase,
            user_config("m1"),
        ))
    });
    assert_eq!(answer, Ok(Response::Done));
    let p = f.rt.block_on(f.store.get("made")).unwrap().unwrap();
    for line in [
        "spi 0x0a0b",
        "cathedral_id 0x01020304",
        "cathedral_flock 0xcafeba0000000042",
        "cathedral 192.0.2.44:4600",
    ] {
        assert!(
            p.config.contains(&format!("\n{line}\n")),
            "{line}\n{}",
            p.config
        );
    }
    assert_eq!(f.key("made", KeyFile::Kek), Some(vec![0x5a; 32]));
    assert_eq!(f.key("made", KeyFile::CathedralCosk), Some(vec![0xc3; 64]));
    assert_eq!(
        f.key("made", KeyFile::CathedralSecret),
        Some(vec![0x7e; 32])
    );

    let events = f.rt.block_on(f.store.event_log(Some("made"), 10)).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].detail,
        "imported from a vicar file by uid 0: cathedral 192.0.2.44:4600, identity 0x01020304, flock 0xcafeba0000000042, tunnel 0x0a0b"
    );
    let lines = logs.lines(None, 1000);
    assert!(
        lines
            .iter()
            .any(|l| l.message.contains("imported from a vicar file")),
        "{lines:?}"
    );
    let text = format!("{lines:?}{events:?}{p:?}");
    for secret in [
        passphrase.to_owned(),
        hex(&[0x5a; 32]),
        hex(&[0xc3; 64]),
        hex(&[0x7e; 32]),
        hex(&file),
    ] {
        assert!(!text.contains(&secret), "{secret} in {text}");
    }
}
