//! Every known answer the reference C implementation produced
//! (`../shared/vectors`, see its index.json) checked against app-core.
//!
//! The directory is `../shared/vectors` relative to the repository root, or
//! `$CHANTRY_VECTORS`. A missing directory is a failure, not a skip.
//! `every_vector_file_is_checked` walks index.json and runs the checker of
//! every file it lists, so a file added to the index without a checker fails
//! the suite. Each checker returns how many cases it verified; the counts
//! are printed (run with `--nocapture` to see them).

mod common;

mod ambry_vectors;
mod capture_vectors;
mod cathedral_vectors;
mod data_vectors;
mod exchange_vectors;
mod kdf_vectors;
mod wire_vectors;

/// The checker of each file named in index.json.
/// A vector file and the function that checks it.
type Checker = (&'static str, fn() -> usize);

const CHECKERS: &[Checker] = &[
    ("kmac256.json", kdf_vectors::kmac256),
    ("base_key.json", kdf_vectors::base_key),
    ("offer_key.json", kdf_vectors::offer_key),
    ("session_key.json", kdf_vectors::session_key),
    ("shroud.json", wire_vectors::shroud),
    ("struct_sizes.json", wire_vectors::struct_sizes),
    ("cathedral_offer.json", cathedral_vectors::cathedral_offer),
    ("data_packet.json", data_vectors::data_packet),
    ("key_exchange.json", exchange_vectors::key_exchange),
    ("ambry_tool.json", ambry_vectors::ambry_tool),
    ("ambry_unwrap.json", ambry_vectors::ambry_unwrap),
    ("ambry/cafeba00.bundle", ambry_vectors::cafeba00_bundle),
    ("captures/tunnel-plain.pcap", capture_vectors::tunnel_plain),
    (
        "captures/tunnel-shroud.pcap",
        capture_vectors::tunnel_shroud,
    ),
    (
        "captures/cathedral-p2p.pcap",
        capture_vectors::cathedral_p2p,
    ),
];

/// Runs one checker and reports its count.
fn run(name: &str) {
    let (_, check) = CHECKERS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("checker registered");
    let n = check();
    assert!(n > 0, "{name}: checker verified no case");
    println!("vectors: {name}: {n} cases checked");
}

macro_rules! vector_tests {
    ($($test:ident => $file:literal,)*) => {
        $(#[test] fn $test() { run($file) })*
    };
}

vector_tests! {
    kmac256_json => "kmac256.json",
    base_key_json => "base_key.json",
    offer_key_json => "offer_key.json",
    session_key_json => "session_key.json",
    shroud_json => "shroud.json",
    struct_sizes_json => "struct_sizes.json",
    cathedral_offer_json => "cathedral_offer.json",
    data_packet_json => "data_packet.json",
    key_exchange_json => "key_exchange.json",
    ambry_tool_json => "ambry_tool.json",
    ambry_unwrap_json => "ambry_unwrap.json",
    ambry_cafeba00_bundle => "ambry/cafeba00.bundle",
    capture_tunnel_plain => "captures/tunnel-plain.pcap",
    capture_tunnel_shroud => "captures/tunnel-shroud.pcap",
    capture_cathedral_p2p => "captures/cathedral-p2p.pcap",
}

/// index.json is the list of what must be checked: every file in it has a
/// checker above (and so a test), and no checker names a file it lacks.
#[test]
fn every_vector_file_is_checked() {
    let index = common::load_json("index.json");
    let files = index["files"]
        .as_object()
        .expect("index.json has a files object");
    assert!(!files.is_empty(), "index.json lists no files");
    for name in files.keys() {
        assert!(
            CHECKERS.iter().any(|(n, _)| n == name),
            "{name} is listed in index.json but no test checks it"
        );
    }
    for (name, _) in CHECKERS {
        if name.ends_with(".json") || name.contains('/') {
            assert!(
                files.contains_key(*name) || common::vectors_dir().join(name).is_file(),
                "{name} not in the vectors"
            );
        }
    }
    println!(
        "vectors: index.json lists {} files, each has a checker",
        files.len()
    );
}
