//! Profiles: what a host hands over to make an engine, and how they become
//! the engine's internal settings.
//!
//! Two kinds:
//! - a sanctum.conf (files.md §1) with its key material given as bytes (a
//!   phone has no root-owned key files); the paths the configuration names
//!   for keys are ignored;
//! - a vicar provisioning file (files.md §9) with its passphrase: the
//!   device's cathedral identity, COSK, cathedral secret and KEK, from which
//!   the shared secret arrives later as an ambry from the cathedral.
//!
//! Key bytes are copied into [`Secret`]s at once and the FFI copies are
//! wiped; nothing here keeps or prints key material.

use std::net::SocketAddrV4;

use chantry_core::cathedral::client::ClientConfig;
use chantry_core::config::{Config, InitialPeer, Ipv4Net, Mode, Role};
use chantry_core::secret::{Key32, Secret};
use chantry_core::tunnel::TunnelConfig;
use chantry_core::vicar;
use zeroize::{Zeroize, Zeroizing};

use crate::error::ProfileError;
use crate::types::{Endpoint, Ipv4Network, TunnelSettings};

/// The path the parser puts in its messages for a profile's text.
const PROFILE_PATH: &str = "profile";

/// Key material that comes with a sanctum.conf profile. Every field is the
/// content of the file the configuration names for that keyword. The
/// engine copies what it needs and wipes these bytes.
#[derive(Clone, Default, uniffi::Record)]
pub struct ProfileKeys {
    /// The 32-byte shared secret (`secret`). Required unless the profile
    /// has a `kek` (then the cathedral delivers the secret).
    pub secret: Option<Vec<u8>>,
    /// The 32-byte device base KEK (`kek`).
    pub kek: Option<Vec<u8>>,
    /// The 32-byte cathedral secret (`cathedral_secret`).
    pub cathedral_secret: Option<Vec<u8>>,
    /// The 64-byte cathedral offer signing key (`cathedral_cosk`).
    pub cathedral_cosk: Option<Vec<u8>>,
}

impl core::fmt::Debug for ProfileKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let shown = |k: &Option<Vec<u8>>| k.as_ref().map(|v| format!("<{} bytes>", v.len()));
        f.debug_struct("ProfileKeys")
            .field("secret", &shown(&self.secret))
            .field("kek", &shown(&self.kek))
            .field("cathedral_secret", &shown(&self.cathedral_secret))
            .field("cathedral_cosk", &shown(&self.cathedral_cosk))
            .finish()
    }
}

impl ProfileKeys {
    /// Wipes every key byte.
    fn wipe(&mut self) {
        for k in [
            &mut self.secret,
            &mut self.kek,
            &mut self.cathedral_secret,
            &mut self.cathedral_cosk,
        ] {
            if let Some(v) = k.as_mut() {
                v.zeroize();
            }
        }
    }
}

/// What an engine is made from.
#[derive(Clone, uniffi::Enum)]
pub enum Profile {
    /// A tunnel-mode sanctum.conf and its key material. `run` lines are
    /// optional here (there are no processes to run) and so is the
    /// `secret` line; `tap`, other modes, `shroud` together with a
    /// cathedral and cathedral host names are not supported.
    Conf {
        /// The text of sanctum.conf.
        text: String,
        /// The key files' contents.
        keys: ProfileKeys,
    },
    /// A vicar file and its passphrase. The engine registers with the
    /// cathedral recorded in the file, waits for its ambry (the shared
    /// secret) and reaches the peer through the cathedral.
    Vicar {
        /// The 216-byte vicar file.
        file: Vec<u8>,
        /// Its passphrase.
        passphrase: String,
        /// This device's tunnel interface as in a sanctum.conf `tunnel`
        /// line: `<ipv4>/<prefix> <mtu|auto>`, e.g. `10.9.0.2/30 1422`.
        tunnel: String,
    },
}

impl core::fmt::Debug for Profile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Profile::Conf { text, keys } => f
                .debug_struct("Conf")
                .field("text_len", &text.len())
                .field("keys", keys)
                .finish(),
            Profile::Vicar { file, tunnel, .. } => f
                .debug_struct("Vicar")
                .field("file_len", &file.len())
                .field("passphrase", &"<redacted>")
                .field("tunnel", tunnel)
                .finish(),
        }
    }
}

/// The cathedral side of a profile.
pub(crate) struct CathedralSetup {
    /// The client's configuration (keys inside).
    pub client: ClientConfig,
    /// The device base KEK; `None` means the shared secret is fixed.
    pub kek: Option<Key32>,
}

impl core::fmt::Debug for CathedralSetup {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CathedralSetup")
            .field("cathedral", &self.client.cathedral)
            .field("kek", &self.kek.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A profile made ready for the engine.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// What the host shows and configures.
    pub settings: TunnelSettings,
    /// The tunnel's configuration. Its shared secret is all zeros when
    /// the secret comes from an ambry (`secret_known` is false).
    pub tunnel: TunnelConfig,
    /// False while the shared secret must still come from an ambry.
    pub secret_known: bool,
    /// Networks a decrypted packet must come from or go to.
    pub allowed: Vec<Ipv4Net>,
    /// The cathedral client, if the profile has one.
    pub cathedral: Option<CathedralSetup>,
}

impl Profile {
    /// Turns the profile into engine settings, wiping the FFI copies of
    /// the key material whatever the outcome.
    pub(crate) fn resolve(self) -> Result<Resolved, ProfileError> {
        match self {
            Profile::Conf { text, mut keys } => {
                let r = resolve_conf(&text, &keys);
                keys.wipe();
                r
            }
            Profile::Vicar {
                file,
                passphrase,
                tunnel,
            } => {
                let passphrase = Zeroizing::new(passphrase);
                resolve_vicar(&file, passphrase.as_bytes(), &tunnel)
            }
        }
    }
}

/// True if `text` has a `run <role> ...` line.
fn has_run_line(text: &str, role: Role) -> bool {
    text.lines().any(|l| {
        let mut w = l.split_ascii_whitespace();
        w.next() == Some("run") && w.next() == Some(role.as_str())
    })
}

/// True if `text` has a line starting with `keyword`.
fn has_keyword(text: &str, keyword: &str) -> bool {
    text.lines()
        .any(|l| l.split_ascii_whitespace().next() == Some(keyword))
}

/// The text with what a phone does not need filled in: `run` lines for
/// every process (any mode; the engine refuses other modes with a clearer
/// message than a missing `run` line) and a `secret` line (keys come as bytes).
/// Appended at the end, so line numbers in errors stay those of the text.
fn complete_conf(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 256);
    s.push_str(text);
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    if !has_keyword(text, "secret") {
        s.push_str("secret /mobile/secret\n");
    }
    for role in Role::ALL {
        if !has_run_line(text, role) {
            s.push_str("run ");
            s.push_str(role.as_str());
            s.push_str(" as mobile\n");
        }
    }
    s
}

/// A key of exactly `N` bytes from the profile's keys.
fn key<const N: usize>(name: &str, bytes: Option<&Vec<u8>>) -> Result<Secret<N>, ProfileError> {
    let bytes = bytes.ok_or_else(|| ProfileError::MissingKey {
        name: name.to_owned(),
    })?;
    Secret::<N>::from_slice(bytes).ok_or_else(|| ProfileError::BadKey {
        name: name.to_owned(),
        expected: u32::try_from(N).unwrap_or(u32::MAX),
        actual: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
    })
}

fn unsupported(message: impl Into<String>) -> ProfileError {
    ProfileError::Unsupported {
        message: message.into(),
    }
}

fn network(n: &Ipv4Net) -> Ipv4Network {
    Ipv4Network {
        address: n.network().to_string(),
        prefix: n.prefix(),
    }
}

/// A parsed sanctum.conf and its keys.
fn resolve_conf(text: &str, keys: &ProfileKeys) -> Result<Resolved, ProfileError> {
    let config = Config::parse(PROFILE_PATH, &complete_conf(text))?;
    if config.mode() != Mode::Tunnel {
        return Err(unsupported(format!(
            "mode {}: the mobile engine runs tunnel mode only",
            config.mode()
        )));
    }
    if config.tap() {
        return Err(unsupported("tap devices (mobile hosts have a TUN only)"));
    }
    let Some(tun) = config.tunnel().copied() else {
        return Err(unsupported("a profile without a `tunnel` line"));
    };
    let cathedral = match config.cathedral() {
        None => None,
        Some(hp) => {
            if config.shroud() {
                return Err(unsupported(
                    "shroud together with a cathedral (relayed datagrams would need the cathedral's shroud key)",
                ));
            }
            let Some(addr) = hp.literal() else {
                return Err(unsupported(format!(
                    "cathedral host name {:?}: give its IPv4 address (the engine resolves no names)",
                    hp.host
                )));
            };
            let kek = match config.kek() {
                Some(_) => Some(key::<32>("kek", keys.kek.as_ref())?),
                None => None,
            };
            let cs = key::<32>("cathedral_secret", keys.cathedral_secret.as_ref())?;
            let cosk = key::<64>("cathedral_cosk", keys.cathedral_cosk.as_ref())?;
            let flock = config.cathedral_flock().unwrap_or(0);
            let id = config.cathedral_id().unwrap_or(0);
            let mut client = ClientConfig::new(id, cs, cosk, flock, config.spi(), addr);
            client.flock_dst = config.cathedral_flock_dst().unwrap_or(flock);
            client.nat_port = config.cathedral_nat_port();
            client.has_kek = kek.is_some();
            client.peer_configured = config.peer_configured();
            if config.tfc() {
                client.tfc_tun_mtu = Some(config.tun_mtu());
            }
            Some(CathedralSetup { client, kek })
        }
    };
    let secret_known = cathedral.as_ref().is_none_or(|c| c.kek.is_none());
    let secret = if secret_known {
        key::<32>("secret", keys.secret.as_ref())?
    } else {
        Key32::zero()
    };
    let peer = match config.effective_peer() {
        InitialPeer::Fixed(a) => Some(a),
        InitialPeer::Cathedral => cathedral.as_ref().map(|c| c.client.cathedral),
        InitialPeer::Learn => None,
    };
    let mut tunnel = TunnelConfig::new(secret, peer, usize::from(config.tun_mtu()));
    tunnel.flock_src = config.cathedral_flock().unwrap_or(0);
    tunnel.flock_dst = config.cathedral_flock_dst().unwrap_or(0);
    tunnel.tunnel_id = config.spi();
    tunnel.tfc = config.tfc();
    tunnel.shroud = config.shroud();
    let mut allowed = vec![tun.net];
    allowed.extend_from_slice(config.accepts());
    let mut routes: Vec<Ipv4Network> = vec![network(&tun.net)];
    routes.extend(config.routes().iter().map(network));
    routes.dedup();
    let settings = TunnelSettings {
        name: config.instance().to_owned(),
        address: tun.net.addr().to_string(),
        prefix: tun.net.prefix(),
        mtu: config.tun_mtu(),
        routes,
        peer: peer.map(Endpoint::from),
        cathedral: cathedral
            .as_ref()
            .map(|c| Endpoint::from(c.client.cathedral)),
    };
    Ok(Resolved {
        settings,
        tunnel,
        secret_known,
        allowed,
        cathedral,
    })
}

/// Opens a vicar file and builds the equivalent sanctum.conf: tunnel
/// mode, relayed through the file's cathedral, shared secret from ambries.
fn resolve_vicar(file: &[u8], passphrase: &[u8], tunnel: &str) -> Result<Resolved, ProfileError> {
    // Cheap checks first: the KDF costs seconds and 32 MiB.
    vicar::salt_of(file)?;
    let tunnel_error = |message: String| ProfileError::MalformedConf {
        line: None,
        keyword: Some("tunnel".to_owned()),
        message,
    };
    if tunnel.contains('\n') {
        return Err(tunnel_error(
            "the tunnel setting must be one line".to_owned(),
        ));
    }
    Config::parse(
        PROFILE_PATH,
        &complete_conf(&format!("instance vicar\ntunnel {tunnel}\n")),
    )
    .map_err(|e| tunnel_error(e.to_string()))?;
    let v = vicar::decrypt(passphrase, file)?;
    let cathedral = SocketAddrV4::new(v.cathedral_ip, v.cathedral_port);
    let text = format!(
        "instance vicar\nspi {:#06x}\ncathedral {cathedral}\ncathedral_id {:#x}\n\
         cathedral_flock {:#x}\ncathedral_secret /mobile/cs\ncathedral_cosk /mobile/cosk\n\
         kek /mobile/kek\nsecret /mobile/secret\ntunnel {tunnel}\n",
        v.tunnel, v.cathedral_id, v.flock,
    );
    let keys = ProfileKeys {
        secret: None,
        kek: Some(v.kek.expose().to_vec()),
        cathedral_secret: Some(v.cathedral_secret.expose().to_vec()),
        cathedral_cosk: Some(v.cosk.expose().to_vec()),
    };
    let mut keys = keys;
    let r = resolve_conf(&text, &keys);
    keys.wipe();
    // Errors in the made-up configuration are about the `tunnel` value the
    // host gave, or about values inside the vicar file.
    r.map_err(|e| match e {
        ProfileError::MalformedConf {
            keyword, message, ..
        } if keyword.as_deref() == Some("tunnel") => ProfileError::MalformedConf {
            line: None,
            keyword,
            message,
        },
        ProfileError::MalformedConf { message, .. } => ProfileError::MalformedVicar { message },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "instance phone\nlocal 0.0.0.0:0\npeer 192.0.2.7:4500\n\
                        tunnel 10.9.0.2/30 1400\nroute 10.20.0.0/16\n";

    fn keys() -> ProfileKeys {
        ProfileKeys {
            secret: Some(vec![7; 32]),
            ..ProfileKeys::default()
        }
    }

    #[test]
    fn conf_without_run_or_secret_lines_resolves() {
        let r = Profile::Conf {
            text: CONF.to_owned(),
            keys: keys(),
        }
        .resolve()
        .unwrap();
        assert_eq!(r.settings.address, "10.9.0.2");
        assert_eq!(r.settings.prefix, 30);
        assert_eq!(r.settings.mtu, 1400);
        assert_eq!(
            r.settings.routes,
            vec![
                Ipv4Network {
                    address: "10.9.0.0".into(),
                    prefix: 30
                },
                Ipv4Network {
                    address: "10.20.0.0".into(),
                    prefix: 16
                }
            ]
        );
        assert_eq!(
            r.settings.peer,
            Some(Endpoint {
                ip: "192.0.2.7".into(),
                port: 4500
            })
        );
        assert!(r.secret_known);
        assert_eq!(r.tunnel.shared_secret, Key32::new([7; 32]));
        assert!(r.cathedral.is_none());
    }

    #[test]
    fn conf_with_run_lines_keeps_them() {
        let mut text = CONF.to_owned();
        for role in Mode::Tunnel.roles() {
            text += &format!("run {} as nobody\n", role.as_str());
        }
        text += "secret /etc/sanctum/secret\n";
        let r = Profile::Conf { text, keys: keys() }.resolve();
        assert!(r.is_ok(), "{r:?}");
    }

    #[test]
    fn malformed_conf_names_line_and_keyword() {
        let text = "instance phone\ntunnel 10.9.0.2/30 400\n".to_owned();
        let e = Profile::Conf { text, keys: keys() }.resolve().unwrap_err();
        match e {
            ProfileError::MalformedConf {
                line,
                keyword,
                message,
            } => {
                assert_eq!(line, Some(2));
                assert_eq!(keyword.as_deref(), Some("tunnel"));
                assert!(message.starts_with("profile:2: tunnel: "), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_are_checked() {
        let e = Profile::Conf {
            text: CONF.to_owned(),
            keys: ProfileKeys::default(),
        }
        .resolve()
        .unwrap_err();
        assert_eq!(
            e,
            ProfileError::MissingKey {
                name: "secret".into()
            }
        );
        let e = Profile::Conf {
            text: CONF.to_owned(),
            keys: ProfileKeys {
                secret: Some(vec![1; 31]),
                ..ProfileKeys::default()
            },
        }
        .resolve()
        .unwrap_err();
        assert_eq!(
            e,
            ProfileError::BadKey {
                name: "secret".into(),
                expected: 32,
                actual: 31
            }
        );
    }

    #[test]
    fn other_modes_and_tap_are_unsupported() {
        let text = "mode pilgrim\ninstance p\npeer 192.0.2.7:4500\ntunnel 10.9.0.2/30 1400\n";
        let e = Profile::Conf {
            text: text.to_owned(),
            keys: keys(),
        }
        .resolve()
        .unwrap_err();
        assert!(matches!(e, ProfileError::Unsupported { .. }), "{e:?}");
    }

    #[test]
    fn wrong_length_vicar_is_malformed_before_any_kdf() {
        let e = Profile::Vicar {
            file: vec![0; 100],
            passphrase: "x".into(),
            tunnel: "10.9.0.2/30 1400".into(),
        }
        .resolve()
        .unwrap_err();
        assert_eq!(
            e,
            ProfileError::MalformedVicar {
                message: "vicar file is 100 bytes, expected exactly 216".into()
            }
        );
    }

    #[test]
    fn debug_never_shows_keys_or_passphrase() {
        let p = Profile::Vicar {
            file: vec![0xab; 216],
            passphrase: "hunter2".into(),
            tunnel: "10.9.0.2/30 1400".into(),
        };
        let d = format!("{p:?} {:?}", keys());
        assert!(
            !d.contains("hunter2") && !d.contains("171") && !d.contains("7, 7"),
            "{d}"
        );
    }
}
