//! Reading what the user picked for an import, as the user (the app is
//! unprivileged): a sanctum.conf checked with app-core's parser so a bad
//! line is named before anything is sent, the key file its `secret` line
//! names (or another one the user picked), or a vicar file.

use std::path::{Path, PathBuf};

use chantry_core::config::{Config, KEY_LEN, load_key_file};
use chantry_core::ipc::KeyMaterial;
use chantry_core::vicar::FILE_LEN as VICAR_LEN;

use crate::error::{AppError, line_of};

/// A sanctum.conf and its key, ready to send.
#[derive(Debug)]
pub struct ConfImport {
    /// The configuration text as read.
    pub text: String,
    /// The shared secret (its first 32 bytes).
    pub secret: KeyMaterial,
    /// The configuration's `instance`, a default profile name.
    pub instance: String,
    /// The `kek` file's contents, if the configuration names one.
    pub kek: Option<KeyMaterial>,
    /// The `cathedral_secret` file's contents, if named.
    pub cathedral_secret: Option<KeyMaterial>,
    /// The `cathedral_cosk` file's contents, if named.
    pub cathedral_cosk: Option<KeyMaterial>,
}

fn bad(path: &Path, detail: impl ToString) -> AppError {
    AppError::BadFile {
        path: path.display().to_string(),
        detail: detail.to_string(),
        line: None,
        line_text: None,
    }
}

/// Reads and parses the configuration at `path`.
fn parse(path: &Path) -> Result<(String, Config), AppError> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read it: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| bad(path, "is not a text file (not UTF-8): pick a sanctum.conf"))?;
    let config = Config::parse(path, &text).map_err(|e| AppError::BadFile {
        path: path.display().to_string(),
        detail: e.to_string(),
        line: e.line.and_then(|l| u32::try_from(l).ok()),
        line_text: e
            .line
            .and_then(|l| u32::try_from(l).ok())
            .and_then(|l| line_of(&text, l)),
    })?;
    Ok((text, config))
}

/// `p` from the configuration at `config_path`: relative paths are taken
/// from the configuration's directory.
fn beside(config_path: &Path, p: &Path) -> PathBuf {
    if p.is_relative() {
        config_path.parent().unwrap_or(Path::new("/")).join(p)
    } else {
        p.to_owned()
    }
}

/// The key file the configuration's `secret` line names (relative paths
/// taken from the configuration's directory), if it has one.
pub fn secret_path_of(config_path: &Path) -> Result<Option<PathBuf>, AppError> {
    let (_, config) = parse(config_path)?;
    Ok(config.secret().map(|p| beside(config_path, p)))
}

/// Reads the configuration at `config_path` and its key files: the
/// shared secret from `key_path` if given, else from the `secret` line
/// (it may be missing when a `kek` line comes first: a cathedral client
/// gets it from an ambry later), and the `kek`, `cathedral_secret` and
/// `cathedral_cosk` files it names.
pub fn read_conf(config_path: &Path, key_path: Option<&Path>) -> Result<ConfImport, AppError> {
    let (text, config) = parse(config_path)?;
    let secret = match key_path {
        Some(k) => load_key_file::<KEY_LEN>(k)
            .map_err(|e| bad(k, e))?
            .expose()
            .to_vec(),
        None => {
            let k = config
                .secret()
                .map(|p| beside(config_path, p))
                .ok_or_else(|| {
                    bad(
                        config_path,
                        "has no `secret` line: pick the shared secret file as well",
                    )
                })?;
            if !k.exists() && !config.secret_must_exist() {
                Vec::new()
            } else {
                load_key_file::<KEY_LEN>(&k)
                    .map_err(|e| bad(&k, e))?
                    .expose()
                    .to_vec()
            }
        }
    };
    let read = |file: Option<&Path>| -> Result<Option<KeyMaterial>, AppError> {
        file.map(|f| {
            let f = beside(config_path, f);
            std::fs::read(&f)
                .map(KeyMaterial::new)
                .map_err(|e| bad(&f, format!("cannot read it: {e}")))
        })
        .transpose()
    };
    Ok(ConfImport {
        text,
        secret: KeyMaterial::new(secret),
        instance: config.instance().to_owned(),
        kek: read(config.kek())?,
        cathedral_secret: read(config.cathedral_secret())?,
        cathedral_cosk: read(config.cathedral_cosk())?,
    })
}

/// Reads a vicar file: exactly 216 bytes.
pub fn read_vicar(path: &Path) -> Result<KeyMaterial, AppError> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read it: {e}")))?;
    if bytes.len() != VICAR_LEN {
        return Err(bad(
            path,
            format!(
                "is {} bytes long; a vicar profile is exactly {VICAR_LEN} bytes",
                bytes.len()
            ),
        ));
    }
    Ok(KeyMaterial::new(bytes))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    static SEQ: AtomicU32 = AtomicU32::new(0);

    struct Dir(PathBuf);

    impl Dir {
        fn new() -> Dir {
            let p = std::env::temp_dir().join(format!(
                "chantry-app-files-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const CONF: &str = "mode tunnel\ninstance home0\nsecret home.secret\nlocal 192.0.2.1:4500\npeer 192.0.2.2:4500\ntunnel 10.0.0.1/30 1422\n\
        run control as nobody\nrun purgatory-rx as nobody\nrun purgatory-tx as nobody\n\
        run heaven-rx as nobody\nrun heaven-tx as nobody\nrun bless as nobody\n\
        run confess as nobody\nrun chapel as nobody\n";

    #[test]
    fn reads_the_key_its_secret_line_names() {
        let d = Dir::new();
        let conf = d.0.join("home.conf");
        std::fs::write(&conf, CONF).expect("conf");
        std::fs::write(d.0.join("home.secret"), [7u8; 40]).expect("key");
        assert_eq!(
            secret_path_of(&conf).expect("parse"),
            Some(d.0.join("home.secret"))
        );
        let got = read_conf(&conf, None).expect("import");
        assert_eq!(got.text, CONF);
        assert_eq!(got.instance, "home0");
        // The first 32 bytes, as the reference reads key files.
        assert_eq!(got.secret.expose(), &[7u8; 32]);
    }

    #[test]
    fn a_bad_line_is_named_with_its_text() {
        let d = Dir::new();
        let conf = d.0.join("bad.conf");
        std::fs::write(&conf, "mode tunnel\ninstance x\nfrobnicate yes\n").expect("conf");
        let err = read_conf(&conf, None).expect_err("bad line");
        let AppError::BadFile {
            path,
            line,
            line_text,
            detail,
        } = err
        else {
            panic!("{err:?}")
        };
        assert_eq!(path, conf.display().to_string());
        assert_eq!(line, Some(3));
        assert_eq!(line_text.as_deref(), Some("frobnicate yes"));
        assert!(detail.contains("frobnicate"), "{detail}");
    }

    #[test]
    fn a_short_key_or_vicar_is_refused_with_its_size() {
        let d = Dir::new();
        let conf = d.0.join("home.conf");
        std::fs::write(&conf, CONF).expect("conf");
        std::fs::write(d.0.join("home.secret"), [7u8; 8]).expect("key");
        let err = read_conf(&conf, None).expect_err("short key");
        assert!(
            matches!(&err, AppError::BadFile { path, detail, .. } if path.ends_with("home.secret") && detail.contains('8')),
            "{err:?}"
        );
        let vicar = d.0.join("p.vicar");
        std::fs::write(&vicar, [0u8; 100]).expect("vicar");
        let err = read_vicar(&vicar).expect_err("short vicar");
        assert!(
            matches!(&err, AppError::BadFile { detail, .. } if detail.contains("100 bytes") && detail.contains("216")),
            "{err:?}"
        );
        std::fs::write(&vicar, [0u8; 216]).expect("vicar");
        assert_eq!(read_vicar(&vicar).expect("vicar").expose().len(), 216);
    }
}
