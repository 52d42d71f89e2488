//! The cathedral's feed: what the guardian reads from disk for the
//! sandboxed cathedral role (which has no file access) and sends it over a
//! pipe, at start and on every reload (behaviour.md §8.11).
//!
//! A snapshot holds the settings file's text (the role parses it), the sync
//! secret, the cathedral secret and COSK public key of every `allow`ed
//! identity (files.md §3, read as root so root-only key files work), and
//! for every flock pair with a bundle either its bytes or "unchanged" (a
//! bundle is re-read only when its mtime and its generation changed, as in
//! the reference; an unchanged one costs nothing to resend).
//!
//! Frame: `CHF1`, BE32 body length, body. Body: BE32 text length, text;
//! one byte sync present, 32 bytes sync; BE32 identity count, each BE64
//! flock, BE32 identity, 32 CS, 32 public key; BE32 bundle count, each
//! BE64 flock a, BE64 flock b, one byte kind (0 unchanged, 1 bytes) and for
//! bytes BE32 length and the file.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use chantry_core::ambry::BundleHead;
use chantry_core::cathedral::COSK_PUBLIC_LEN;
use chantry_core::cathedral::settings::{Settings, parse_settings};
use chantry_core::config::{KEY_LEN, load_key_file};
use chantry_core::secret::Key32;
use zeroize::Zeroizing;

use crate::wiring::CathedralPaths;

/// Frame magic.
const MAGIC: &[u8; 4] = b"CHF1";
/// Largest body accepted (two xflock bundles per flock pair would be far
/// less; this bounds a broken stream).
const MAX_BODY: usize = 256 << 20;

/// One identity's keys.
#[derive(Debug)]
pub struct Identity {
    /// Flock id (domain byte zero).
    pub flock: u64,
    /// Identity.
    pub id: u32,
    /// Cathedral secret.
    pub cs: Key32,
    /// COSK public key.
    pub public: [u8; COSK_PUBLIC_LEN],
}

/// A bundle in a snapshot.
#[derive(Debug, PartialEq, Eq)]
pub enum BundleFeed {
    /// The role keeps what it has for this pair.
    Unchanged,
    /// New file bytes (the role checks them with `Bundle::parse_for_pair`).
    Bytes(Vec<u8>),
}

/// One snapshot.
#[derive(Debug)]
pub struct Snapshot {
    /// The settings file's text (empty without a settings file).
    pub settings_text: String,
    /// The sync secret (the cathedral's `secret`), if configured.
    pub sync: Option<Key32>,
    /// Keys of the allowed identities.
    pub identities: Vec<Identity>,
    /// Bundles by flock pair (a, b).
    pub bundles: Vec<(u64, u64, BundleFeed)>,
}

/// A frame that does not parse (a bug: the guardian wrote it).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FeedError {
    /// Wrong magic.
    #[error("feed frame without its magic")]
    Magic,
    /// Longer than [`MAX_BODY`].
    #[error("feed frame of {0} bytes is too long")]
    TooLong(usize),
    /// Ends early or holds a bad field.
    #[error("feed frame truncated or malformed at byte {0}")]
    Malformed(usize),
}

impl Snapshot {
    /// The frame bytes.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut b = Zeroizing::new(Vec::new());
        put_u32(&mut b, self.settings_text.len());
        b.extend_from_slice(self.settings_text.as_bytes());
        match &self.sync {
            Some(k) => {
                b.push(1);
                b.extend_from_slice(k.expose());
            }
            None => b.extend_from_slice(&[0; 33]),
        }
        put_u32(&mut b, self.identities.len());
        for i in &self.identities {
            b.extend_from_slice(&i.flock.to_be_bytes());
            b.extend_from_slice(&i.id.to_be_bytes());
            b.extend_from_slice(i.cs.expose());
            b.extend_from_slice(&i.public);
        }
        put_u32(&mut b, self.bundles.len());
        for (a, bb, feed) in &self.bundles {
            b.extend_from_slice(&a.to_be_bytes());
            b.extend_from_slice(&bb.to_be_bytes());
            match feed {
                BundleFeed::Unchanged => b.push(0),
                BundleFeed::Bytes(bytes) => {
                    b.push(1);
                    put_u32(&mut b, bytes.len());
                    b.extend_from_slice(bytes);
                }
            }
        }
        let mut frame = Zeroizing::new(Vec::with_capacity(b.len() + 8));
        frame.extend_from_slice(MAGIC);
        put_u32(&mut frame, b.len());
        frame.extend_from_slice(&b);
        frame
    }

    /// Parses a frame body.
    pub fn decode(body: &[u8]) -> Result<Snapshot, FeedError> {
        let mut c = Cursor { b: body, at: 0 };
        let n = c.u32()?;
        let text = c.take(n)?;
        let settings_text = String::from_utf8_lossy(text).into_owned();
        let present = c.take(1)?[0];
        let mut sync = Zeroizing::new([0u8; 32]);
        sync.copy_from_slice(c.take(32)?);
        let sync = (present == 1).then(|| Key32::new(*sync));
        let n = c.u32()?;
        let mut identities = Vec::new();
        for _ in 0..n {
            let flock = c.u64()?;
            let id = u32::try_from(c.u32()?).map_err(|_| FeedError::Malformed(c.at))?;
            let mut cs = Zeroizing::new([0u8; 32]);
            cs.copy_from_slice(c.take(32)?);
            let mut public = [0u8; COSK_PUBLIC_LEN];
            public.copy_from_slice(c.take(COSK_PUBLIC_LEN)?);
            identities.push(Identity {
                flock,
                id,
                cs: Key32::new(*cs),
                public,
            });
        }
        let n = c.u32()?;
        let mut bundles = Vec::new();
        for _ in 0..n {
            let a = c.u64()?;
            let b = c.u64()?;
            let feed = match c.take(1)?[0] {
                0 => BundleFeed::Unchanged,
                1 => {
                    let len = c.u32()?;
                    BundleFeed::Bytes(c.take(len)?.to_vec())
                }
                _ => return Err(FeedError::Malformed(c.at)),
            };
            bundles.push((a, b, feed));
        }
        if c.at != body.len() {
            return Err(FeedError::Malformed(c.at));
        }
        Ok(Snapshot {
            settings_text,
            sync,
            identities,
            bundles,
        })
    }
}

fn put_u32(b: &mut Vec<u8>, n: usize) {
    b.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FeedError> {
        let end = self
            .at
            .checked_add(n)
            .ok_or(FeedError::Malformed(self.at))?;
        let s = self
            .b
            .get(self.at..end)
            .ok_or(FeedError::Malformed(self.at))?;
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<usize, FeedError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
    }

    fn u64(&mut self) -> Result<u64, FeedError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
}

/// The role's end: buffers the pipe and yields whole snapshots.
#[derive(Default)]
pub struct FeedReader {
    buf: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for FeedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedReader")
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl FeedReader {
    /// Appends bytes read from the pipe.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole snapshot, if buffered.
    pub fn next_snapshot(&mut self) -> Result<Option<Snapshot>, FeedError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        if &self.buf[..4] != MAGIC {
            self.buf.clear();
            return Err(FeedError::Magic);
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if len > MAX_BODY {
            self.buf.clear();
            return Err(FeedError::TooLong(len));
        }
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let r = Snapshot::decode(&self.buf[8..8 + len]);
        self.buf.drain(..8 + len);
        r.map(Some)
    }

    /// Reads what the (non-blocking) pipe holds. False once the guardian's
    /// end is closed.
    pub fn drain(&mut self, pipe: &mut std::fs::File) -> bool {
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => self.push(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

/// What was last sent for a bundle, to decide whether to re-read it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sent {
    path: PathBuf,
    mtime: Option<SystemTime>,
    generation: u32,
}

/// The guardian's side: loads snapshots and knows when to reload.
#[derive(Debug)]
pub struct Feeder {
    paths: CathedralPaths,
    sync: Option<Key32>,
    sent: HashMap<(u64, u64), Sent>,
    /// mtimes of the settings file and the bundles at the last load.
    watched: Vec<(PathBuf, Option<SystemTime>)>,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl Feeder {
    /// A feeder for the cathedral of `paths`, with the sync secret (the
    /// cathedral's `secret` file, read once at start).
    pub fn new(paths: CathedralPaths, sync: Option<Key32>) -> Self {
        Feeder {
            paths,
            sync,
            sent: HashMap::new(),
            watched: Vec::new(),
        }
    }

    /// Did the settings file or a bundle it names change since the last
    /// [`Feeder::load`]?
    pub fn changed(&self) -> bool {
        self.watched.iter().any(|(p, m)| mtime(p) != *m)
    }

    /// Reads everything (as the guardian: root). Problems with single
    /// lines, identities or bundles are logged and skipped (the reference
    /// never fails a reload); a missing settings file is an error.
    pub fn load(&mut self) -> Result<Snapshot> {
        let mut watched = Vec::new();
        let (settings_text, settings) = match &self.paths.settings {
            None => (String::new(), Settings::default()),
            Some(p) => {
                watched.push((p.clone(), mtime(p)));
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("settings file {}", p.display()))?;
                let (s, problems) = parse_settings(&text);
                for pr in problems {
                    tracing::warn!(file = %p.display(), line = pr.line, problem = pr.message, "settings line skipped");
                }
                (text, s)
            }
        };
        let sync = self.sync.clone();
        let mut identities = Vec::new();
        for (&flock, f) in &settings.flocks {
            let fdir = self.paths.secretdir.join(format!("flock-{flock:x}"));
            for a in &f.allows {
                match load_identity(&fdir, a.identity) {
                    Ok((cs, public)) => identities.push(Identity {
                        flock,
                        id: a.identity,
                        cs,
                        public,
                    }),
                    Err(e) => tracing::warn!(
                        flock = format_args!("{flock:x}"),
                        identity = format_args!("{:08x}", a.identity),
                        error = %format!("{e:#}"),
                        "identity without usable keys: its offers will be dropped"
                    ),
                }
            }
        }
        let mut pairs: Vec<(u64, u64, PathBuf)> = settings
            .flocks
            .iter()
            .filter_map(|(&f, s)| s.ambry.clone().map(|p| (f, f, p)))
            .collect();
        pairs.extend(settings.xflocks.iter().cloned());
        let mut bundles = Vec::new();
        let mut sent = HashMap::new();
        for (a, b, path) in pairs {
            watched.push((path.clone(), mtime(&path)));
            let key = (a.min(b), a.max(b));
            match self.bundle(key, &path) {
                Ok((feed, s)) => {
                    bundles.push((a, b, feed));
                    sent.insert(key, s);
                }
                Err(e) => tracing::warn!(
                    file = %path.display(),
                    error = %format!("{e:#}"),
                    "ambry bundle not loaded"
                ),
            }
        }
        self.sent = sent;
        self.watched = watched;
        Ok(Snapshot {
            settings_text,
            sync,
            identities,
            bundles,
        })
    }

    /// The bundle of `key` at `path`: unchanged unless it is new here or
    /// its mtime and generation both changed.
    fn bundle(&self, key: (u64, u64), path: &Path) -> Result<(BundleFeed, Sent)> {
        let m = mtime(path);
        if let Some(prev) = self.sent.get(&key)
            && prev.path == path
            && prev.mtime == m
        {
            return Ok((BundleFeed::Unchanged, prev.clone()));
        }
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let head = BundleHead::parse(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(prev) = self.sent.get(&key)
            && prev.path == path
            && prev.generation == head.generation
        {
            // Touched but the same generation: nothing to reload.
            let s = Sent {
                mtime: m,
                ..prev.clone()
            };
            return Ok((BundleFeed::Unchanged, s));
        }
        tracing::info!(
            file = %path.display(),
            generation = format_args!("{:08x}", head.generation),
            "ambry bundle (re)loaded"
        );
        Ok((
            BundleFeed::Bytes(bytes),
            Sent {
                path: path.to_owned(),
                mtime: m,
                generation: head.generation,
            },
        ))
    }
}

/// `<ID>.key` (32-byte CS) and `<ID>.pub` (32-byte COSK public key).
fn load_identity(fdir: &Path, identity: u32) -> Result<(Key32, [u8; COSK_PUBLIC_LEN])> {
    let cs = load_key_file::<KEY_LEN>(&fdir.join(format!("{identity:08x}.key")))
        .with_context(|| format!("{}/{identity:08x}.key", fdir.display()))?;
    let public = load_key_file::<COSK_PUBLIC_LEN>(&fdir.join(format!("{identity:08x}.pub")))
        .with_context(|| format!("{}/{identity:08x}.pub", fdir.display()))?;
    Ok((cs, *public.expose()))
}

/// A writer thread that owns the pipe's write end and sends every frame
/// it is given, in order (a frame may be megabytes; the guardian's loop
/// must not block on the role reading it). It ends when the role's end
/// closes or the sender is dropped.
#[derive(Debug)]
pub struct FeedWriter {
    tx: std::sync::mpsc::Sender<Zeroizing<Vec<u8>>>,
}

impl FeedWriter {
    /// Starts the thread.
    pub fn spawn(w: OwnedFd) -> Result<FeedWriter> {
        let (tx, rx) = std::sync::mpsc::channel::<Zeroizing<Vec<u8>>>();
        std::thread::Builder::new()
            .name("cathedral-feed".into())
            .spawn(move || {
                let mut pipe = std::fs::File::from(w);
                while let Ok(frame) = rx.recv() {
                    if let Err(e) = pipe.write_all(&frame) {
                        tracing::debug!(error = %e, "cathedral feed closed");
                        return;
                    }
                }
            })
            .context("starting the feed thread")?;
        Ok(FeedWriter { tx })
    }

    /// Queues a snapshot.
    pub fn send(&self, s: &Snapshot) {
        let _ = self.tx.send(s.encode());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_round_trip_in_pieces() {
        let s = Snapshot {
            settings_text: "flock cafe0000 {\n}\n".into(),
            sync: Some(Key32::new([3; 32])),
            identities: vec![Identity {
                flock: 0xcafe_0000,
                id: 0x2b,
                cs: Key32::new([4; 32]),
                public: [5; 32],
            }],
            bundles: vec![
                (1, 1, BundleFeed::Unchanged),
                (1, 2, BundleFeed::Bytes(vec![9; 100])),
            ],
        };
        let frame = s.encode();
        let mut r = FeedReader::default();
        for c in frame.chunks(7) {
            r.push(c);
        }
        r.push(&frame[..3]);
        let got = r.next_snapshot().unwrap().unwrap();
        assert_eq!(got.settings_text, s.settings_text);
        assert_eq!(got.sync.unwrap().expose(), &[3; 32]);
        assert_eq!(got.identities[0].id, 0x2b);
        assert_eq!(got.identities[0].cs.expose(), &[4; 32]);
        assert_eq!(got.bundles, s.bundles);
        assert!(
            r.next_snapshot().unwrap().is_none(),
            "a partial frame waits"
        );
    }

    #[test]
    fn random_frames_never_panic() {
        use chantry_core::entropy::{Entropy, SeededEntropy};
        let mut rng = SeededEntropy::from_u64(12);
        for _ in 0..2000 {
            let mut body = vec![0u8; (rng.next_u32() % 300) as usize];
            rng.fill(&mut body);
            // Small length fields now and then, so the parser gets deep.
            for chunk in body.chunks_mut(37) {
                if chunk.len() >= 4 && rng.next_u32().is_multiple_of(2) {
                    chunk[..4].copy_from_slice(&(rng.next_u32() % 8).to_be_bytes());
                }
            }
            let _ = Snapshot::decode(&body);
            let mut r = FeedReader::default();
            r.push(MAGIC);
            r.push(&u32::try_from(body.len()).unwrap_or(0).to_be_bytes());
            r.push(&body);
            let _ = r.next_snapshot();
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut r = FeedReader::default();
        r.push(b"XXXXXXXXXXXX");
        assert_eq!(r.next_snapshot().err(), Some(FeedError::Magic));
        for cut in 0..60 {
            let s = Snapshot {
                settings_text: "x".into(),
                sync: None,
                identities: Vec::new(),
                bundles: vec![(1, 1, BundleFeed::Bytes(vec![1; 10]))],
            };
            let f = s.encode();
            let body = &f[8..];
            if cut < body.len() {
                assert!(Snapshot::decode(&body[..cut]).is_err());
            }
        }
    }
}
