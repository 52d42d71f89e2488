//! Loading ../shared/vectors and decoding its conventions.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

/// The vectors directory: `$CHANTRY_VECTORS`, else `<repo>/../shared/vectors`.
/// Panics (fails the test) if it does not exist.
pub fn vectors_dir() -> PathBuf {
    let dir = match std::env::var_os("CHANTRY_VECTORS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
    };
    assert!(
        dir.join("index.json").is_file(),
        "known-answer vectors not found at {} (set CHANTRY_VECTORS or place shared/ beside the repository)",
        dir.display()
    );
    dir
}

/// Raw bytes of a file under the vectors directory.
pub fn load_bytes(rel: &str) -> Vec<u8> {
    let p = vectors_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// A JSON file under the vectors directory.
pub fn load_json(rel: &str) -> Value {
    serde_json::from_slice(&load_bytes(rel)).unwrap_or_else(|e| panic!("parsing {rel}: {e}"))
}

/// Hex string field `key` of `v` as bytes.
pub fn hexv(v: &Value, key: &str) -> Vec<u8> {
    let s = v[key]
        .as_str()
        .unwrap_or_else(|| panic!("field {key} missing or not a string in {v}"));
    unhex(s)
}

/// A hex string (optionally `0x`-prefixed) as bytes.
pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.trim_start_matches("0x")).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

/// Fixed-size hex field.
pub fn hexa<const N: usize>(v: &Value, key: &str) -> [u8; N] {
    let b = hexv(v, key);
    b.as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("field {key}: {} bytes, want {N}", b.len()))
}

/// A `0x…` hex string or JSON number field as u64.
pub fn num(v: &Value, key: &str) -> u64 {
    match &v[key] {
        Value::Number(n) => n
            .as_u64()
            .unwrap_or_else(|| panic!("field {key} not a u64")),
        Value::String(s) => u64::from_str_radix(s.trim_start_matches("0x"), 16)
            .unwrap_or_else(|e| panic!("field {key} = {s:?}: {e}")),
        other => panic!("field {key} is {other}"),
    }
}

/// An array field.
pub fn arr<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("field {key} is not an array"))
}

/// A 32-byte key field as a secret.
pub fn key32(v: &Value, key: &str) -> chantry_core::secret::Key32 {
    chantry_core::secret::Key32::new(hexa::<32>(v, key))
}
