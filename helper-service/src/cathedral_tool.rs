//! The operator's tools behind `chantry-cathedral` (docs/cathedral.md):
//! KEKs and ambry bundles in the reference `ambry` tool's layout
//! (files.md §5), COSK key pairs, and vicar provisioning files (§9).
//!
//! KEK directories live under a root (the reference tool uses the current
//! directory): `<root>/<%016x flock>/kek-data/kek-0xNN` (base KEKs, one per
//! device id, handed to the devices), `internal/kek-0xNN` (derived for the
//! flock itself) and `external/<%016x other>/kek-0xNN` (derived for an
//! xflock partner). Bundles are built from the derived KEKs only, so the
//! same directories work with the reference tool and with this one.
//!
//! Every input file problem is an error naming the file and the problem.

use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chantry_core::ambry::{self, Bundle, DerivedKeks, Unwrapper};
use chantry_core::cathedral::{COSK_LEN, COSK_PUBLIC_LEN, Cosk};
use chantry_core::config::{KEY_LEN, load_key_file};
use chantry_core::entropy::Entropy;
use chantry_core::kdf::{self, FLOCK_DOMAIN_MASK};
use chantry_core::secret::{Key32, Secret};
use chantry_core::vicar::{self, VicarProfile};

/// Mode of every key file the tools create (owner read only).
const KEY_MODE: u32 = 0o400;

/// A tool failure: the file (if one is to blame) and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A file that cannot be read, written or used.
    #[error("{}: {problem}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A bad argument.
    #[error("{0}")]
    Usage(String),
}

fn file_err(path: &Path, problem: impl ToString) -> ToolError {
    ToolError::File {
        path: path.to_owned(),
        problem: problem.to_string(),
    }
}

/// Parses a hex flock (`0x` optional); the domain byte is cleared.
pub fn parse_flock(s: &str) -> Result<u64, ToolError> {
    let v = u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .map_err(|_| ToolError::Usage(format!("`{s}` is not a hex flock id")))?;
    let v = v & FLOCK_DOMAIN_MASK;
    if v == 0 {
        return Err(ToolError::Usage(format!(
            "flock `{s}` is zero without its domain byte"
        )));
    }
    Ok(v)
}

/// Parses a hex device id 1..=ff.
pub fn parse_id(s: &str) -> Result<u8, ToolError> {
    match u8::from_str_radix(s.trim_start_matches("0x"), 16) {
        Ok(v) if v != 0 => Ok(v),
        _ => Err(ToolError::Usage(format!(
            "`{s}` is not a device id 01..ff (hex)"
        ))),
    }
}

fn flock_dir(root: &Path, flock: u64) -> PathBuf {
    root.join(format!("{flock:016x}"))
}

fn kek_name(id: u8) -> String {
    format!("kek-0x{id:02x}")
}

/// Creates a new file (never overwrites) with `mode` and writes `bytes`.
/// (On systems without Unix modes the file gets its directory's ACL.)
fn create_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ToolError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(mode).custom_flags(libc::O_NOFOLLOW);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = options.open(path).map_err(|e| file_err(path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| file_err(path, e))
}

/// Replaces `path` atomically (a temporary file renamed over it).
fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ToolError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    create_file(&tmp, bytes, mode)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        file_err(path, e)
    })
}

fn mkdir(path: &Path, exists_ok: bool) -> Result<(), ToolError> {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    builder.mode(0o700);
    match builder.create(path) {
        Ok(()) => Ok(()),
        Err(e) if exists_ok && e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => {
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(file_err(
            path,
            "already exists (refusing to overwrite KEKs)",
        )),
        Err(e) => Err(file_err(path, e)),
    }
}

fn read_key(path: &Path) -> Result<Key32, ToolError> {
    load_key_file::<KEY_LEN>(path).map_err(|e| ToolError::File {
        path: path.to_owned(),
        problem: e.to_string().replace(&format!("{}: ", path.display()), ""),
    })
}

/// `ambry generate F`: base KEKs for device ids 1..=255 and the flock's
/// internal derived KEKs. The flock's directories must not exist yet.
pub fn kek_generate(root: &Path, flock: u64, rng: &mut dyn Entropy) -> Result<(), ToolError> {
    let dir = flock_dir(root, flock);
    mkdir(&dir, true)?;
    for sub in ["kek-data", "internal", "external"] {
        mkdir(&dir.join(sub), false)?;
    }
    for (i, base) in ambry::generate_base_keks(rng).iter().enumerate() {
        let id = u8::try_from(i + 1).unwrap_or(u8::MAX);
        create_file(
            &dir.join("kek-data").join(kek_name(id)),
            base.expose(),
            KEY_MODE,
        )?;
        let derived = kdf::derived_kek(base, flock, flock);
        create_file(
            &dir.join("internal").join(kek_name(id)),
            derived.expose(),
            KEY_MODE,
        )?;
    }
    Ok(())
}

/// The 255 base KEKs of `flock`.
fn base_keks(root: &Path, flock: u64) -> Result<Vec<Key32>, ToolError> {
    let dir = flock_dir(root, flock).join("kek-data");
    (1..=255u8)
        .map(|id| read_key(&dir.join(kek_name(id))))
        .collect()
}

/// `ambry export F G`: F's derived KEKs for talking to G, written to
/// `F/external/G/` (G == F: refreshes `internal`). Existing files are
/// replaced.
pub fn kek_export(root: &Path, flock: u64, other: u64) -> Result<(), ToolError> {
    let base = base_keks(root, flock)?;
    let dir = if flock == other {
        flock_dir(root, flock).join("internal")
    } else {
        let ext = flock_dir(root, flock).join("external");
        mkdir(&ext, true)?;
        let d = ext.join(format!("{other:016x}"));
        mkdir(&d, true)?;
        d
    };
    for (i, k) in base.iter().enumerate() {
        let id = u8::try_from(i + 1).unwrap_or(u8::MAX);
        let derived = kdf::derived_kek(k, flock, other);
        replace_file(&dir.join(kek_name(id)), derived.expose(), KEY_MODE)?;
    }
    Ok(())
}

/// `ambry renew F ID`: a new base KEK for one device and its internal
/// derived KEK (exports for other flocks must be redone).
pub fn kek_renew(root: &Path, flock: u64, id: u8, rng: &mut dyn Entropy) -> Result<(), ToolError> {
    let dir = flock_dir(root, flock);
    let base = Key32::random(rng);
    replace_file(
        &dir.join("kek-data").join(kek_name(id)),
        base.expose(),
        KEY_MODE,
    )?;
    let derived = kdf::derived_kek(&base, flock, flock);
    replace_file(
        &dir.join("internal").join(kek_name(id)),
        derived.expose(),
        KEY_MODE,
    )
}

/// The derived KEKs of `own` for `other` as the tool stored them.
fn derived_keks(root: &Path, own: u64, other: u64) -> Result<DerivedKeks, ToolError> {
    let dir = if own == other {
        flock_dir(root, own).join("internal")
    } else {
        flock_dir(root, own)
            .join("external")
            .join(format!("{other:016x}"))
    };
    let keks = (1..=255u8)
        .map(|id| read_key(&dir.join(kek_name(id))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DerivedKeks::from_keks(keks))
}

/// `ambry bundle A B DAYS OUT`: a new generation for the pair, valid for
/// `days` from `now`. Written to a temporary file and renamed over `out`,
/// so a cathedral never reads half a bundle. Returns its generation.
pub fn bundle_generate(
    root: &Path,
    a: u64,
    b: u64,
    days: u32,
    out: &Path,
    now: u64,
    rng: &mut dyn Entropy,
) -> Result<Bundle, ToolError> {
    let keks_a = derived_keks(root, a, b)?;
    let keks_b = if a == b {
        derived_keks(root, a, a)?
    } else {
        derived_keks(root, b, a)?
    };
    let bundle = ambry::generate_bundle(a, b, &keks_a, &keks_b, now, days, rng)
        .map_err(|e| ToolError::Usage(e.to_string()))?;
    replace_file(out, &bundle.to_bytes(), 0o444)?;
    Ok(bundle)
}

/// What a bundle file holds, checked the way a cathedral loads it.
#[derive(Debug, PartialEq, Eq)]
pub struct BundleInfo {
    /// The generation.
    pub generation: u32,
    /// Days since the ambry epoch.
    pub expires: u16,
    /// UNIX time of expiry.
    pub expires_at: u64,
    /// The flocks of its entries (one: same flock; two: xflock).
    pub flocks: Vec<u64>,
    /// Entries.
    pub entries: usize,
}

/// Reads a bundle (ours or the reference tool's) and checks it as a
/// cathedral would load it (exact size, entries only for its pair).
pub fn bundle_info(path: &Path) -> Result<(Bundle, BundleInfo), ToolError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    let bundle = Bundle::parse(&bytes).map_err(|e| file_err(path, e))?;
    let mut flocks: Vec<u64> = Vec::new();
    for e in &bundle.entries {
        if !flocks.contains(&e.flock) {
            flocks.push(e.flock);
            if flocks.len() > 2 {
                return Err(file_err(path, "entries for more than two flocks"));
            }
        }
    }
    let (fa, fb) = match flocks.as_slice() {
        [a] => (*a, *a),
        [a, b] => (*a, *b),
        _ => return Err(file_err(path, "no entries")),
    };
    Bundle::parse_for_pair(&bytes, fa, fb).map_err(|e| file_err(path, e))?;
    let info = BundleInfo {
        generation: bundle.head.generation,
        expires: bundle.head.expires,
        expires_at: bundle.head.expires_at(),
        flocks,
        entries: bundle.entries.len(),
    };
    Ok((bundle, info))
}

/// Unwraps a device's entry with its base KEK: proof that the device will
/// accept the bundle. The secret is returned for tests, never printed.
pub fn bundle_unwrap(
    bundle: &Bundle,
    kek_path: &Path,
    flock: u64,
    flock_dst: u64,
    tunnel: u16,
    now: u64,
) -> Result<Key32, ToolError> {
    let kek = read_key(kek_path)?;
    let entry = bundle.entry(flock, tunnel).ok_or_else(|| {
        ToolError::Usage(format!("no entry for flock {flock:x} tunnel {tunnel:04x}"))
    })?;
    Unwrapper {
        base_kek: &kek,
        flock_src: flock,
        flock_dst,
        tunnel,
        current_generation: 0,
    }
    .unwrap(&bundle.offer_body(entry), now)
    .map_err(|e| file_err(kek_path, format!("does not unwrap this entry: {e}")))
}

/// `cosk-pair PRIV PUB`: a new Ed25519 pair, the 64-byte secret
/// (seed || public) for the device's `cathedral_cosk` and the 32-byte
/// public key for the cathedral's `<secretdir>/flock-F/<ID>.pub`.
pub fn cosk_pair(
    private: &Path,
    public: &Path,
    rng: &mut dyn Entropy,
) -> Result<[u8; COSK_PUBLIC_LEN], ToolError> {
    let pair = Cosk::generate(rng);
    let pubkey = Cosk::from_secret_key(&pair)
        .map_err(|e| ToolError::Usage(e.to_string()))?
        .public_key();
    create_file(private, pair.expose(), KEY_MODE)?;
    create_file(public, &pubkey, 0o444)?;
    Ok(pubkey)
}

/// A new random 32-byte key file (a cathedral secret `<ID>.key`, a
/// shared secret, a federation sync secret).
pub fn secret_file(path: &Path, rng: &mut dyn Entropy) -> Result<(), ToolError> {
    let k = Key32::random(rng);
    create_file(path, k.expose(), KEY_MODE)
}

/// What goes into a vicar file besides the three key files.
#[derive(Clone, Copy, Debug)]
pub struct VicarFields {
    /// Device identity at the cathedral.
    pub cathedral_id: u32,
    /// The cathedral's address.
    pub cathedral: std::net::SocketAddrV4,
    /// The device's flock (domain byte kept as given).
    pub flock: u64,
    /// The device's tunnel id.
    pub tunnel: u16,
}

/// Writes a vicar provisioning file (files.md §9) from the device's base
/// KEK, COSK and cathedral secret files, encrypted under `passphrase`.
pub fn vicar_create(
    out: &Path,
    fields: VicarFields,
    kek: &Path,
    cosk: &Path,
    cs: &Path,
    passphrase: &[u8],
    rng: &mut dyn Entropy,
) -> Result<(), ToolError> {
    let cosk_key = load_key_file::<COSK_LEN>(cosk).map_err(|e| ToolError::File {
        path: cosk.to_owned(),
        problem: e.to_string().replace(&format!("{}: ", cosk.display()), ""),
    })?;
    Cosk::from_secret_key(&cosk_key).map_err(|e| file_err(cosk, e))?;
    let profile = VicarProfile {
        cathedral_id: fields.cathedral_id,
        cathedral_ip: *fields.cathedral.ip(),
        cathedral_port: fields.cathedral.port(),
        flock: fields.flock,
        tunnel: fields.tunnel,
        kek: read_key(kek)?,
        cosk: Secret::new(*cosk_key.expose()),
        cathedral_secret: read_key(cs)?,
    };
    let file =
        vicar::encrypt(passphrase, &profile, rng).map_err(|e| ToolError::Usage(e.to_string()))?;
    create_file(out, &file, KEY_MODE)
}

#[cfg(test)]
#[path = "cathedral_tool_tests.rs"]
mod tests;
