//! The state directory: profiles and the event log in SQLite
//! (`chantry.db`, migrations embedded), key files under `keys/` (root
//! only, 0600, written atomically), generated configurations under `run/`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use chantry_core::ipc::KeyMaterial;
use sqlx::Row as _;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

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
        })
    }

    /// Where a profile's shared secret lives.
    pub fn key_path(&self, name: &str) -> PathBuf {
        self.dir.join("keys").join(format!("{name}.secret"))
    }

    /// Where the configuration chantryd runs for a profile is written.
    pub fn run_config_path(&self, name: &str) -> PathBuf {
        self.dir.join("run").join(format!("{name}.conf"))
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
        for path in [self.key_path(name), self.run_config_path(name)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(done.rows_affected() == 1)
    }

    /// Appends to the event log.
    pub async fn log_event(
        &self,
        profile: Option<&str>,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO events (at, profile, kind, message) VALUES (?, ?, ?, ?)")
            .bind(now())
            .bind(profile)
            .bind(kind)
            .bind(message)
            .execute(&self.pool)
            .await?;
        Ok(())
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
}
