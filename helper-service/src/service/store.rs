//! The state directory: profiles, the event log, statistics samples and
//! the settings in SQLite (`chantry.db`, migrations embedded), key files
//! under `keys/` (root only, 0600, written atomically), generated
//! configurations and the tunnels' control sockets under `run/`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::{Arc, OnceLock};

use chantry_core::ipc::{Counters, Event, EventRecord, KeyMaterial, Settings, StatsSample};
use sqlx::Row as _;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tokio::sync::broadcast;

use super::conf_text;

/// Entries the event log keeps; older ones are deleted as new ones come.
pub const EVENTS_KEPT: i64 = 10_000;
/// How long statistics samples are kept: 24 h.
pub const SAMPLES_KEPT_S: u64 = 24 * 3600;

/// A key file a profile may have, named for its sanctum.conf keyword. The
/// service keeps its own copy of each under `keys/`, never in the
/// database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyFile {
    /// `secret`: the 32-byte shared secret (with a `kek`, written later
    /// from an ambry and possibly absent).
    Secret,
    /// `kek`: the 32-byte base KEK that unwraps ambries.
    Kek,
    /// `cathedral_secret`: the 32-byte secret shared with the cathedral.
    CathedralSecret,
    /// `cathedral_cosk`: the 64-byte Ed25519 offer signing key.
    CathedralCosk,
}

impl KeyFile {
    /// Every kind, in the order a configuration names them.
    pub const ALL: [KeyFile; 4] = [
        KeyFile::Kek,
        KeyFile::Secret,
        KeyFile::CathedralSecret,
        KeyFile::CathedralCosk,
    ];

    /// Its sanctum.conf keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            KeyFile::Secret => "secret",
            KeyFile::Kek => "kek",
            KeyFile::CathedralSecret => "cathedral_secret",
            KeyFile::CathedralCosk => "cathedral_cosk",
        }
    }

    /// The file name ending of the service's (and chantryctl export's)
    /// copy: `NAME.secret`, `NAME.kek`, `NAME.cs`, `NAME.cosk`.
    pub fn suffix(self) -> &'static str {
        match self {
            KeyFile::Secret => "secret",
            KeyFile::Kek => "kek",
            KeyFile::CathedralSecret => "cs",
            KeyFile::CathedralCosk => "cosk",
        }
    }
}

/// A failure of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("state database: {0}")]
    Db(#[from] sqlx::Error),
    /// The migrations failed.
    #[error("state database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A file of the state directory could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One stored profile (no key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// The configuration's `instance`.
    pub instance: String,
    /// The configuration's `mode`.
    pub mode: String,
    /// The configuration text (its `secret` line names [`Store::key_path`]).
    pub config: String,
    /// Auto-connect flag.
    pub auto_connect: bool,
    /// Always-on flag.
    pub always_on: bool,
}

/// The state directory and its database.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    pool: SqlitePool,
    /// Where each new event log entry is announced (set once, shared by
    /// every clone).
    recorder: Arc<OnceLock<broadcast::Sender<Event>>>,
}

impl Store {
    /// Opens (creating it 0700 if needed) the state directory and its
    /// database, and runs the migrations.
    pub async fn open(dir: &Path) -> Result<Store, StoreError> {
        for d in [dir.to_owned(), dir.join("keys"), dir.join("run")] {
            std::fs::create_dir_all(&d).map_err(io(&d))?;
            super::system::restrict_dir(&d).map_err(io(&d))?;
        }
        let db = dir.join("chantry.db");
        let opts = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&db)
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        super::system::restrict_file(&db).map_err(io(&db))?;
        Ok(Store {
            dir: dir.to_owned(),
            pool,
            recorder: Arc::default(),
        })
    }

    /// Announces every later event log entry as [`Event::Recorded`] on
    /// `events` (the subscription stream). Only the first call counts.
    pub fn record_to(&self, events: broadcast::Sender<Event>) {
        let _ = self.recorder.set(events);
    }

    /// Where a profile's shared secret lives.
    pub fn key_path(&self, name: &str) -> PathBuf {
        self.key_file_path(name, KeyFile::Secret)
    }

    /// Where a profile's key file of kind `kind` lives.
    pub fn key_file_path(&self, name: &str, kind: KeyFile) -> PathBuf {
        self.dir
            .join("keys")
            .join(format!("{name}.{}", kind.suffix()))
    }

    /// Where the configuration chantryd runs for a profile is written.
    pub fn run_config_path(&self, name: &str) -> PathBuf {
        self.dir.join("run").join(format!("{name}.conf"))
    }

    /// The control socket (spec/files.md §8) of a profile's running
    /// tunnel: one per profile, in the root-only `run/` directory.
    pub fn control_path(&self, name: &str) -> PathBuf {
        self.dir.join("run").join(format!("{name}.control"))
    }

    /// The configuration chantryd runs for `p`: the stored text with its
    /// `control` line pointing at [`Store::control_path`] (the user of the
    /// line is kept), so that the service knows where to ask for the
    /// tunnel's counters and no two profiles share a socket.
    pub fn run_config_text(&self, p: &Profile) -> String {
        conf_text::with_control(&p.config, &self.control_path(&p.name).display().to_string())
    }

    /// Writes a profile's key file of kind `kind` (0600, atomically).
    pub fn write_key_file(
        &self,
        name: &str,
        kind: KeyFile,
        bytes: &[u8],
    ) -> Result<PathBuf, StoreError> {
        let path = self.key_file_path(name, kind);
        write_atomic(&path, bytes)?;
        Ok(path)
    }

    /// Reads a profile's key file of kind `kind`; `Ok(None)` if there is
    /// none.
    pub fn read_key_file(
        &self,
        name: &str,
        kind: KeyFile,
    ) -> Result<Option<KeyMaterial>, StoreError> {
        let path = self.key_file_path(name, kind);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(KeyMaterial::new(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Deletes every key file of a profile (those that exist).
    pub fn remove_key_files(&self, name: &str) -> Result<(), StoreError> {
        for kind in KeyFile::ALL {
            remove_if_there(&self.key_file_path(name, kind))?;
        }
        Ok(())
    }

    /// Writes a profile's key file (0600, atomically).
    pub fn write_key(&self, name: &str, key: &KeyMaterial) -> Result<PathBuf, StoreError> {
        let path = self.key_path(name);
        write_atomic(&path, key.expose())?;
        Ok(path)
    }

    /// Reads a profile's key file.
    pub fn read_key(&self, name: &str) -> Result<KeyMaterial, StoreError> {
        let path = self.key_path(name);
        std::fs::read(&path)
            .map(KeyMaterial::new)
            .map_err(io(&path))
    }

    /// Every profile, by name.
    pub async fn list(&self) -> Result<Vec<Profile>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, instance, mode, config, auto_connect, always_on FROM profiles ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(profile_of).collect()
    }

    /// One profile.
    pub async fn get(&self, name: &str) -> Result<Option<Profile>, StoreError> {
        let row = sqlx::query(
            "SELECT name, instance, mode, config, auto_connect, always_on FROM profiles WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(profile_of).transpose()
    }

    /// Stores a new profile; `Ok(false)` if the name is taken.
    pub async fn insert(&self, p: &Profile) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT OR IGNORE INTO profiles (name, instance, mode, config, auto_connect, always_on, created) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.name)
        .bind(&p.instance)
        .bind(&p.mode)
        .bind(&p.config)
        .bind(p.auto_connect)
        .bind(p.always_on)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Changes a profile's flags; `Ok(false)` if there is no such profile.
    pub async fn edit(
        &self,
        name: &str,
        auto_connect: Option<bool>,
        always_on: Option<bool>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE profiles SET auto_connect = COALESCE(?, auto_connect), \
             always_on = COALESCE(?, always_on) WHERE name = ?",
        )
        .bind(auto_connect)
        .bind(always_on)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a profile and its files; `Ok(false)` if there was none.
    pub async fn remove(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM profiles WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM stats_samples WHERE profile = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        self.remove_key_files(name)?;
        remove_if_there(&self.run_config_path(name))?;
        Ok(done.rows_affected() == 1)
    }

    /// Appends to the event log (which keeps the last [`EVENTS_KEPT`]
    /// entries) and announces the entry as [`Event::Recorded`].
    pub async fn log_event(
        &self,
        profile: Option<&str>,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        let at = now();
        let id = sqlx::query("INSERT INTO events (at, profile, kind, message) VALUES (?, ?, ?, ?)")
            .bind(at)
            .bind(profile)
            .bind(kind)
            .bind(message)
            .execute(&self.pool)
            .await?
            .last_insert_rowid();
        sqlx::query("DELETE FROM events WHERE id <= ?")
            .bind(id.saturating_sub(EVENTS_KEPT))
            .execute(&self.pool)
            .await?;
        if let Some(events) = self.recorder.get() {
            let _ = events.send(Event::Recorded(EventRecord {
                at: unsigned(at),
                profile: profile.map(str::to_owned),
                kind: kind.to_owned(),
                detail: message.to_owned(),
            }));
        }
        Ok(())
    }

    /// The newest `limit` entries of the event log (of `profile` only, if
    /// given), oldest first.
    pub async fn event_log(
        &self,
        profile: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, profile, kind, message FROM events \
             WHERE ?1 IS NULL OR profile = ?1 ORDER BY id DESC LIMIT ?2",
        )
        .bind(profile)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(EventRecord {
                    at: unsigned(r.try_get(0)?),
                    profile: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    detail: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        out.reverse();
        Ok(out)
    }

    /// The service's settings ([`Settings::default`] until some are set).
    pub async fn settings(&self) -> Result<Settings, StoreError> {
        let row =
            sqlx::query("SELECT reconnect_on_network_change, log_level FROM settings WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some(r) => Settings {
                reconnect_on_network_change: r.try_get(0)?,
                log_level: r.try_get(1)?,
            },
            None => Settings::default(),
        })
    }

    /// Replaces the service's settings (the caller has checked them).
    pub async fn set_settings(&self, s: &Settings) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO settings (id, reconnect_on_network_change, log_level) \
             VALUES (1, ?, ?)",
        )
        .bind(s.reconnect_on_network_change)
        .bind(&s.log_level)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a statistics sample of `profile` and deletes its samples
    /// older than [`SAMPLES_KEPT_S`] before it.
    pub async fn add_sample(&self, profile: &str, s: &StatsSample) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO stats_samples \
             (profile, at, tx_packets, tx_bytes, rx_packets, rx_bytes) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(profile)
        .bind(signed(s.at))
        .bind(signed(s.tx.packets))
        .bind(signed(s.tx.bytes))
        .bind(signed(s.rx.packets))
        .bind(signed(s.rx.bytes))
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM stats_samples WHERE profile = ? AND at < ?")
            .bind(profile)
            .bind(signed(s.at.saturating_sub(SAMPLES_KEPT_S)))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The samples of `profile` taken at or after `since` (Unix seconds),
    /// oldest first.
    pub async fn history(&self, profile: &str, since: u64) -> Result<Vec<StatsSample>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, tx_packets, tx_bytes, rx_packets, rx_bytes FROM stats_samples \
             WHERE profile = ? AND at >= ? ORDER BY at",
        )
        .bind(profile)
        .bind(signed(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatsSample {
                    at: unsigned(r.try_get(0)?),
                    tx: Counters {
                        packets: unsigned(r.try_get(1)?),
                        bytes: unsigned(r.try_get(2)?),
                    },
                    rx: Counters {
                        packets: unsigned(r.try_get(3)?),
                        bytes: unsigned(r.try_get(4)?),
                    },
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The last `limit` events, oldest first: (unix time, profile, kind,
    /// message).
    pub async fn events(
        &self,
        limit: u32,
    ) -> Result<Vec<(i64, Option<String>, String, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT at, profile, kind, message FROM events ORDER BY id DESC LIMIT ?")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        let mut out = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        out.reverse();
        Ok(out)
    }
}

fn profile_of(r: &sqlx::sqlite::SqliteRow) -> Result<Profile, StoreError> {
    Ok(Profile {
        name: r.try_get("name")?,
        instance: r.try_get("instance")?,
        mode: r.try_get("mode")?,
        config: r.try_get("config")?,
        auto_connect: r.try_get("auto_connect")?,
        always_on: r.try_get("always_on")?,
    })
}

/// SQLite integers are signed: counters and times beyond `i64::MAX` (never
/// reached) are stored as `i64::MAX`.
fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The inverse of [`signed`]; a negative value (never stored) reads as 0.
fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Removes `path`; a missing file is not an error.
fn remove_if_there(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Writes `bytes` to `path` as a root-only file: a temporary file beside
/// it (0600 from creation), fsync, rename over `path`, fsync of the
/// directory. A reader sees the old file or the whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        std::process::id()
    ));
    let result = (|| {
        let mut f = super::system::private_file()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        super::system::sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io(path))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("chantry-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn atomic_write_is_0600_and_replaces() {
        let d = dir("atomic");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("k");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn profiles_round_trip_through_sqlite() {
        let d = dir("db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = Store::open(&d).await.unwrap();
            let p = Profile {
                name: "home".into(),
                instance: "t1".into(),
                mode: "tunnel".into(),
                config: "mode tunnel\n".into(),
                auto_connect: true,
                always_on: false,
            };
            assert!(s.insert(&p).await.unwrap());
            assert!(!s.insert(&p).await.unwrap());
            assert_eq!(s.list().await.unwrap(), vec![p.clone()]);
            assert!(s.edit("home", None, Some(true)).await.unwrap());
            let got = s.get("home").await.unwrap().unwrap();
            assert!(got.auto_connect && got.always_on);
            s.write_key("home", &KeyMaterial::new(vec![1, 2, 3]))
                .unwrap();
            assert_eq!(s.read_key("home").unwrap().expose(), &[1, 2, 3]);
            s.log_event(Some("home"), "import", "imported")
                .await
                .unwrap();
            assert!(s.remove("home").await.unwrap());
            assert!(!s.remove("home").await.unwrap());
            assert!(!s.key_path("home").exists());
            assert_eq!(s.get("home").await.unwrap(), None);
            let ev = s.events(10).await.unwrap();
            assert_eq!(ev.len(), 1);
            assert_eq!(ev[0].2, "import");
        });
        // Reopening runs no migration twice.
        rt.block_on(async { Store::open(&d).await.unwrap() });
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn sample(at: u64, n: u64) -> StatsSample {
        StatsSample {
            at,
            tx: Counters {
                packets: n,
                bytes: n * 100,
            },
            rx: Counters {
                packets: n + 1,
                bytes: 1 << 40,
            },
        }
    }

    #[test]
    fn settings_samples_and_the_event_log() {
        let d = dir("reports");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = Store::open(&d).await.unwrap();
            // Settings: the defaults until set, then what was set.
            assert_eq!(s.settings().await.unwrap(), Settings::default());
            let new = Settings {
                reconnect_on_network_change: false,
                log_level: "debug".into(),
            };
            s.set_settings(&new).await.unwrap();
            s.set_settings(&new).await.unwrap();
            assert_eq!(s.settings().await.unwrap(), new);

            // Samples: 24 h kept per profile, oldest first.
            let t0 = 1_800_000_000;
            s.add_sample("a", &sample(t0, 1)).await.unwrap();
            s.add_sample("a", &sample(t0 + 10, 2)).await.unwrap();
            s.add_sample("b", &sample(t0 + 10, 9)).await.unwrap();
            assert_eq!(
                s.history("a", 0).await.unwrap(),
                vec![sample(t0, 1), sample(t0 + 10, 2)]
            );
            assert_eq!(
                s.history("a", t0 + 5).await.unwrap(),
                vec![sample(t0 + 10, 2)]
            );
            s.add_sample("a", &sample(t0 + SAMPLES_KEPT_S + 5, 3))
                .await
                .unwrap();
            assert_eq!(
                s.history("a", 0).await.unwrap(),
                vec![sample(t0 + 10, 2), sample(t0 + SAMPLES_KEPT_S + 5, 3)]
            );
            assert_eq!(s.history("b", 0).await.unwrap().len(), 1);
            s.remove("b").await.unwrap();
            assert_eq!(s.history("b", 0).await.unwrap(), vec![]);

            // The event log: filtered, newest `limit`, announced.
            let (tx, mut rx) = broadcast::channel(8);
            s.log_event(None, "start", "before the stream")
                .await
                .unwrap();
            s.record_to(tx);
            s.log_event(Some("a"), "connect", "connecting")
                .await
                .unwrap();
            s.log_event(Some("b"), "connect", "connecting")
                .await
                .unwrap();
            s.log_event(Some("a"), "up", "up").await.unwrap();
            let a = s.event_log(Some("a"), 10).await.unwrap();
            let kinds: Vec<&str> = a.iter().map(|e| e.kind.as_str()).collect();
            assert_eq!(kinds, ["connect", "up"]);
            assert_eq!(a[0].profile.as_deref(), Some("a"));
            assert_eq!(s.event_log(None, 10).await.unwrap().len(), 4);
            let last2 = s.event_log(None, 2).await.unwrap();
            assert_eq!(
                (last2[0].profile.as_deref(), last2[1].kind.as_str()),
                (Some("b"), "up")
            );
            match rx.try_recv() {
                Ok(Event::Recorded(r)) => assert_eq!(r, a[0]),
                other => panic!("{other:?}"),
            }
            assert_eq!(rx.len(), 2);
        });
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn run_configs_get_their_own_control_socket() {
        let d = dir("control");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let s = rt.block_on(Store::open(&d)).unwrap();
        let p = Profile {
            name: "home".into(),
            instance: "t1".into(),
            mode: "tunnel".into(),
            config: "mode tunnel\ncontrol /tmp/sanctum-control _ctl\n".into(),
            auto_connect: false,
            always_on: false,
        };
        assert_eq!(
            s.run_config_text(&p),
            format!(
                "mode tunnel\ncontrol {}/run/home.control _ctl\n",
                d.display()
            )
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
