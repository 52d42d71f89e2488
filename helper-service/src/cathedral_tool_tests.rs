//! The operator tools: the reference tool's layout and bundles, the
//! reference bundle read back, key pairs and vicar files.

use super::*;
use chantry_core::entropy::SeededEntropy;

/// 2026-01-01, the time the reference vectors were made at.
const NOW: u64 = 1_767_225_600;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("chantry-tool-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn vectors() -> PathBuf {
    match std::env::var_os("CHANTRY_VECTORS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
    }
}

#[test]
fn reads_the_bundle_the_reference_tool_wrote() {
    let path = vectors().join("ambry/cafeba00.bundle");
    let (bundle, info) = bundle_info(&path).unwrap();
    assert_eq!(info.generation, 0x4211_69fc);
    assert_eq!(info.expires, 1167);
    assert_eq!(info.flocks, vec![0xcafe_ba00]);
    assert_eq!(info.entries, ambry::SAME_FLOCK_ENTRIES);
    // Device 0x01's base KEK from the same run (ambry_tool.json) unwraps
    // its entry for tunnel 0x0102, and device 0x02's the other side: the
    // same secret.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors().join("ambry_tool.json")).unwrap()).unwrap();
    let dir = TempDir::new("ref");
    let kek = |id: &str| {
        let hex = json["kek_data_00000000cafeba00"][id].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let p = dir.0.join(id);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let a = bundle_unwrap(&bundle, &kek("0x01"), 0xcafe_ba00, 0xcafe_ba00, 0x0102, NOW).unwrap();
    let b = bundle_unwrap(&bundle, &kek("0x02"), 0xcafe_ba00, 0xcafe_ba00, 0x0201, NOW).unwrap();
    assert_eq!(a.expose(), b.expose());
    // The wrong device's KEK names the file.
    let e = bundle_unwrap(&bundle, &kek("0x03"), 0xcafe_ba00, 0xcafe_ba00, 0x0102, NOW)
        .unwrap_err()
        .to_string();
    assert!(e.contains("0x03") && e.contains("does not unwrap"), "{e}");
}

#[test]
fn generated_keks_and_bundles_have_the_reference_layout_and_unwrap() {
    let dir = TempDir::new("gen");
    let mut rng = SeededEntropy::from_u64(3);
    let f = parse_flock("cafeba07").unwrap();
    assert_eq!(f, 0xcafe_ba00);
    kek_generate(&dir.0, f, &mut rng).unwrap();
    let fd = dir.0.join("00000000cafeba00");
    for sub in [
        "kek-data/kek-0x01",
        "kek-data/kek-0xff",
        "internal/kek-0x7f",
    ] {
        let m = std::fs::metadata(fd.join(sub)).unwrap();
        assert_eq!(m.len(), 32, "{sub}");
    }
    assert!(fd.join("external").is_dir());
    // Generating again refuses to overwrite.
    let e = kek_generate(&dir.0, f, &mut rng).unwrap_err().to_string();
    assert!(e.contains("already exists"), "{e}");
    let out = dir.0.join("flock.bundle");
    let b = bundle_generate(&dir.0, f, f, 30, &out, NOW, &mut rng).unwrap();
    let (_, info) = bundle_info(&out).unwrap();
    assert_eq!(info.generation, b.head.generation);
    assert_eq!(info.entries, ambry::SAME_FLOCK_ENTRIES);
    let kek1 = fd.join("kek-data/kek-0x01");
    let kek2 = fd.join("kek-data/kek-0x02");
    let s1 = bundle_unwrap(&b, &kek1, f, f, 0x0102, NOW).unwrap();
    let s2 = bundle_unwrap(&b, &kek2, f, f, 0x0201, NOW).unwrap();
    assert_eq!(s1.expose(), s2.expose());
    // A second generation replaces the file.
    let b2 = bundle_generate(&dir.0, f, f, 30, &out, NOW, &mut rng).unwrap();
    assert_ne!(b2.head.generation, b.head.generation);
    assert_eq!(bundle_info(&out).unwrap().1.generation, b2.head.generation);
    // A renewed KEK no longer unwraps the old bundle.
    kek_renew(&dir.0, f, 1, &mut rng).unwrap();
    assert!(bundle_unwrap(&b2, &kek1, f, f, 0x0102, NOW).is_err());
}

#[test]
fn xflock_bundles_need_both_exports() {
    let dir = TempDir::new("x");
    let mut rng = SeededEntropy::from_u64(4);
    let (a, b) = (0xaaaa_aa00, 0xbbbb_bb00);
    kek_generate(&dir.0, a, &mut rng).unwrap();
    kek_generate(&dir.0, b, &mut rng).unwrap();
    let out = dir.0.join("ab.bundle");
    let e = bundle_generate(&dir.0, a, b, 30, &out, NOW, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("external/00000000bbbbbb00/kek-0x01") && e.contains("does not exist"),
        "{e}"
    );
    kek_export(&dir.0, a, b).unwrap();
    kek_export(&dir.0, b, a).unwrap();
    let bundle = bundle_generate(&dir.0, a, b, 30, &out, NOW, &mut rng).unwrap();
    assert_eq!(bundle_info(&out).unwrap().1.entries, ambry::XFLOCK_ENTRIES);
    let ka = dir.0.join("00000000aaaaaa00/kek-data/kek-0x01");
    let kb = dir.0.join("00000000bbbbbb00/kek-data/kek-0x02");
    let sa = bundle_unwrap(&bundle, &ka, a, b, 0x0102, NOW).unwrap();
    let sb = bundle_unwrap(&bundle, &kb, b, a, 0x0201, NOW).unwrap();
    assert_eq!(sa.expose(), sb.expose());
}

#[test]
fn bad_inputs_name_the_file_and_the_problem() {
    let dir = TempDir::new("bad");
    let short = dir.0.join("short.bundle");
    std::fs::write(&short, [0u8; 10]).unwrap();
    let e = bundle_info(&short).unwrap_err().to_string();
    assert!(
        e.starts_with(&short.display().to_string()) && e.contains("too short"),
        "{e}"
    );
    let ragged = dir.0.join("ragged.bundle");
    std::fs::write(&ragged, [0u8; 70 + 57]).unwrap();
    let e = bundle_info(&ragged).unwrap_err().to_string();
    assert!(
        e.contains("ragged.bundle") && e.contains("whole number"),
        "{e}"
    );
    let missing = dir.0.join("nope");
    assert!(
        bundle_info(&missing)
            .unwrap_err()
            .to_string()
            .contains("nope")
    );
    assert!(parse_flock("xyz").is_err());
    assert!(parse_flock("ff").is_err(), "only a domain byte");
    assert!(parse_id("0").is_err() && parse_id("100").is_err());
    let cosk = dir.0.join("cosk");
    std::fs::write(&cosk, [1u8; 64]).unwrap();
    let kek = dir.0.join("kek");
    std::fs::write(&kek, [2u8; 16]).unwrap();
    let fields = VicarFields {
        cathedral_id: 1,
        cathedral: "127.0.0.1:4500".parse().unwrap(),
        flock: 0xcafe_0000,
        tunnel: 0x0102,
    };
    let mut rng = SeededEntropy::from_u64(1);
    let e = vicar_create(
        &dir.0.join("v"),
        fields,
        &kek,
        &cosk,
        &kek,
        b"correct horse",
        &mut rng,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cosk") && e.contains("does not match"), "{e}");
}

#[test]
fn cosk_pairs_and_vicar_files_round_trip() {
    let dir = TempDir::new("cosk");
    let mut rng = SeededEntropy::from_u64(2);
    let (sk, pk) = (dir.0.join("id.cosk"), dir.0.join("0000002b.pub"));
    let public = cosk_pair(&sk, &pk, &mut rng).unwrap();
    assert_eq!(std::fs::read(&pk).unwrap(), public);
    let pair = std::fs::read(&sk).unwrap();
    assert_eq!(&pair[32..], &public);
    assert!(cosk_pair(&sk, &pk, &mut rng).is_err(), "never overwrites");
    let (kek, cs) = (dir.0.join("kek"), dir.0.join("cs"));
    secret_file(&kek, &mut rng).unwrap();
    secret_file(&cs, &mut rng).unwrap();
    let fields = VicarFields {
        cathedral_id: 0x2b,
        cathedral: "10.1.2.3:4500".parse().unwrap(),
        flock: 0xcafe_0000,
        tunnel: 0x0102,
    };
    let out = dir.0.join("device.vicar");
    vicar_create(
        &out,
        fields,
        &kek,
        &sk,
        &cs,
        b"correct horse battery",
        &mut rng,
    )
    .unwrap();
    let p = vicar::decrypt(b"correct horse battery", &std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(p.cathedral_id, 0x2b);
    assert_eq!(p.tunnel, 0x0102);
    assert_eq!(p.cathedral_port, 4500);
    assert_eq!(p.kek.expose()[..], std::fs::read(&kek).unwrap()[..]);
    assert_eq!(p.cosk.expose()[..], pair[..]);
}

/// With `AMBRY=/path/to/ambry` (the reference tool): it builds a bundle
/// from KEK directories this tool generated, and this tool builds one from
/// directories the reference generated; devices unwrap both. Skipped
/// without `AMBRY`.
#[test]
fn the_reference_tool_and_this_one_share_kek_directories() {
    let Some(reference) = std::env::var_os("AMBRY").filter(|v| !v.is_empty()) else {
        eprintln!("AMBRY not set: skipped");
        return;
    };
    let dir = TempDir::new("interop");
    let mut rng = SeededEntropy::from_u64(6);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&reference)
            .current_dir(&dir.0)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ambry {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Ours generated, the reference bundles.
    let f = 0xcafe_0000;
    kek_generate(&dir.0, f, &mut rng).unwrap();
    run(&["bundle", "cafe0000", "cafe0000", "30", "ref.bundle"]);
    let (b, info) = bundle_info(&dir.0.join("ref.bundle")).unwrap();
    assert_eq!(info.entries, ambry::SAME_FLOCK_ENTRIES);
    let fd = dir.0.join("00000000cafe0000/kek-data");
    let s1 = bundle_unwrap(&b, &fd.join("kek-0x07"), f, f, 0x0709, now).unwrap();
    let s2 = bundle_unwrap(&b, &fd.join("kek-0x09"), f, f, 0x0907, now).unwrap();
    assert_eq!(s1.expose(), s2.expose());
    // The reference generated, ours bundles.
    run(&["generate", "beef0000"]);
    let g = 0xbeef_0000;
    let out = dir.0.join("ours.bundle");
    let b = bundle_generate(&dir.0, g, g, 30, &out, now, &mut rng).unwrap();
    let gd = dir.0.join("00000000beef0000/kek-data");
    let s1 = bundle_unwrap(&b, &gd.join("kek-0x01"), g, g, 0x0102, now).unwrap();
    let s2 = bundle_unwrap(&b, &gd.join("kek-0x02"), g, g, 0x0201, now).unwrap();
    assert_eq!(s1.expose(), s2.expose());
}
