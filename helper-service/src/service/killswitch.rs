//! The kill switch of always-on profiles: one nftables table of the
//! service's own (`inet chantry`) whose chains drop every packet that
//! does not belong to a locked profile's tunnel. The whole table is
//! written as one `nft -f -` transaction (delete and re-create), so the
//! kernel never holds half a rule set, and removing it is deleting the
//! table. docs/architecture.md ("Kill switch") says what each rule is
//! for.
//!
//! nftables is Linux's. On macOS (pf) and Windows (WFP) the kill switch
//! is not built yet: there [`KillSwitch::set`] refuses to lock, and an
//! always-on profile is refused rather than run open ([`unsupported`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use chantry_core::config::{Config, InitialPeer, load_remembrance_file};
use tokio::io::AsyncWriteExt as _;

use super::store::Profile;

/// The nftables family and name of the service's table.
pub const TABLE: &str = "inet chantry";

/// `None` where the service has a kill switch (Linux), else why an
/// always-on profile is refused here.
pub fn unsupported() -> Option<String> {
    if cfg!(target_os = "linux") {
        None
    } else {
        Some(KillSwitchError::Unsupported(std::env::consts::OS).to_string())
    }
}

/// Why the rules could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum KillSwitchError {
    /// `nft` could not be run.
    #[error("kill switch: cannot run {nft}: {source} (install the `nftables` package)")]
    Spawn {
        /// The program.
        nft: String,
        /// Why.
        source: std::io::Error,
    },
    /// `nft` refused the rule set.
    #[error("kill switch: {nft} failed ({status}): {stderr}")]
    Nft {
        /// The program.
        nft: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        stderr: String,
    },
    /// This system has no kill switch yet.
    #[error(
        "kill switch: not built on {0} yet, so an always-on profile cannot be kept \
         fail-closed here: it is refused rather than run open"
    )]
    Unsupported(&'static str),
}

/// What one locked profile lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockdown {
    /// The profile's TUN interface (its `instance`).
    pub interface: String,
    /// UDP endpoints the tunnel talks to: the peer, the cathedral and the
    /// cathedrals of its remembrance file.
    pub endpoints: Vec<SocketAddrV4>,
    /// With no endpoint known (the peer is learnt from traffic), the
    /// tunnel's own UDP port: datagrams from and to it pass.
    pub learn_port: Option<u16>,
}

impl Lockdown {
    /// The lockdown of `profile`'s configuration. A configuration that no
    /// longer parses still locks (only loopback passes): the switch fails
    /// closed.
    pub fn of_profile(profile: &Profile) -> Lockdown {
        let label = format!("{}.conf", profile.name);
        match Config::parse(&label, &profile.config) {
            Ok(c) => Lockdown::of_config(&c),
            Err(e) => {
                tracing::warn!(
                    profile = profile.name,
                    "kill switch: {e}: nothing but loopback passes"
                );
                Lockdown {
                    interface: profile.instance.clone(),
                    endpoints: Vec::new(),
                    learn_port: None,
                }
            }
        }
    }

    /// The lockdown a parsed configuration needs.
    pub fn of_config(config: &Config) -> Lockdown {
        let mut endpoints = Vec::new();
        if let InitialPeer::Fixed(peer) = config.effective_peer() {
            endpoints.push(peer);
        }
        if let Some(hp) = config.cathedral() {
            match hp.literal() {
                Some(a) => {
                    endpoints.push(a);
                    if let Some(port) = config.cathedral_nat_port() {
                        endpoints.push(SocketAddrV4::new(*a.ip(), port));
                    }
                }
                None => tracing::warn!(
                    instance = config.instance(),
                    host = hp.host,
                    "kill switch: the cathedral is named by host name; only addresses are let through"
                ),
            }
        }
        if let Some(path) = config.cathedral_remembrance()
            && let Ok(list) = load_remembrance_file(path)
        {
            endpoints.extend(list.cathedrals());
        }
        endpoints.sort();
        endpoints.dedup();
        let port = config.local().port();
        Lockdown {
            interface: config.instance().to_owned(),
            learn_port: (endpoints.is_empty() && port != 0).then_some(port),
            endpoints,
        }
    }
}

/// The nft script that removes the table if it exists (creating an empty
/// one first makes the delete succeed either way).
pub fn removal() -> String {
    format!("table {TABLE} {{}}\ndelete table {TABLE}\n")
}

/// The nft script that replaces the table by one enforcing `locks`
/// (their union: every locked profile's tunnel passes).
pub fn ruleset<'a>(locks: impl IntoIterator<Item = &'a Lockdown>) -> String {
    let locks: Vec<&Lockdown> = locks.into_iter().collect();
    let mut ifaces: Vec<&str> = locks.iter().map(|l| l.interface.as_str()).collect();
    ifaces.sort_unstable();
    ifaces.dedup();
    let mut endpoints: Vec<SocketAddrV4> = locks.iter().flat_map(|l| l.endpoints.clone()).collect();
    endpoints.sort();
    endpoints.dedup();
    let mut ports: Vec<u16> = locks.iter().filter_map(|l| l.learn_port).collect();
    ports.sort_unstable();
    ports.dedup();
    let set = |names: &[&str]| {
        let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        format!("{{ {} }}", quoted.join(", "))
    };

    let mut s = removal();
    let _ = writeln!(s, "table {TABLE} {{");
    // Output: what leaves this machine.
    s += "\tchain output {\n\t\ttype filter hook output priority filter; policy drop;\n";
    s += "\t\toifname \"lo\" accept\n";
    if !ifaces.is_empty() {
        let _ = writeln!(s, "\t\toifname {} accept", set(&ifaces));
    }
    for e in &endpoints {
        let _ = writeln!(s, "\t\tip daddr {} udp dport {} accept", e.ip(), e.port());
    }
    for p in &ports {
        let _ = writeln!(s, "\t\tudp sport {p} accept");
    }
    s += "\t\tudp sport 68 udp dport 67 accept\n";
    s += "\t\tudp sport 546 udp dport 547 accept\n";
    s += "\t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept\n";
    s += "\t}\n";
    // Input: what reaches it.
    s += "\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n";
    s += "\t\tiifname \"lo\" accept\n";
    if !ifaces.is_empty() {
        let _ = writeln!(s, "\t\tiifname {} accept", set(&ifaces));
    }
    s += "\t\tct state established,related accept\n";
    for e in &endpoints {
        let _ = writeln!(s, "\t\tip saddr {} udp sport {} accept", e.ip(), e.port());
    }
    for p in &ports {
        let _ = writeln!(s, "\t\tudp dport {p} accept");
    }
    s += "\t\tudp sport 67 udp dport 68 accept\n";
    s += "\t\tudp sport 547 udp dport 546 accept\n";
    s += "\t\ticmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept\n";
    s += "\t}\n";
    // Forward: what this machine routes for others (containers, VMs).
    s += "\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n";
    if !ifaces.is_empty() {
        let _ = writeln!(s, "\t\tiifname {} accept", set(&ifaces));
        let _ = writeln!(s, "\t\toifname {} accept", set(&ifaces));
    }
    s += "\t}\n}\n";
    s
}

/// The locked profiles and the table that enforces them. Clones share
/// the same set; every change rewrites the table in one transaction.
#[derive(Debug, Clone)]
pub struct KillSwitch {
    nft: PathBuf,
    locks: Arc<tokio::sync::Mutex<BTreeMap<String, Lockdown>>>,
}

impl Default for KillSwitch {
    fn default() -> Self {
        KillSwitch::new("nft".into())
    }
}

impl KillSwitch {
    /// No profile locked; `nft` is the program that loads rules.
    pub fn new(nft: PathBuf) -> KillSwitch {
        KillSwitch {
            nft,
            locks: Arc::default(),
        }
    }

    /// Locks `profile` with `lock`, or unlocks it (`None`), and rewrites
    /// the table (or deletes it when nothing is locked any more). Nothing
    /// is run when the set does not change.
    pub async fn set(&self, profile: &str, lock: Option<Lockdown>) -> Result<(), KillSwitchError> {
        if lock.is_some() && !cfg!(target_os = "linux") {
            return Err(KillSwitchError::Unsupported(std::env::consts::OS));
        }
        let mut locks = self.locks.lock().await;
        let changed = match lock {
            Some(l) => locks.insert(profile.to_owned(), l.clone()).as_ref() != Some(&l),
            None => locks.remove(profile).is_some(),
        };
        if !changed {
            return Ok(());
        }
        let script = if locks.is_empty() {
            removal()
        } else {
            ruleset(locks.values())
        };
        let result = self.load(&script).await;
        match &result {
            Ok(()) if locks.is_empty() => tracing::info!("kill switch off: table {TABLE} removed"),
            Ok(()) => tracing::info!(
                profiles = ?locks.keys().collect::<Vec<_>>(),
                "kill switch on: table {TABLE} loaded"
            ),
            Err(e) => tracing::error!("{e}"),
        }
        result
    }

    /// True if `profile` is locked.
    pub async fn locked(&self, profile: &str) -> bool {
        self.locks.lock().await.contains_key(profile)
    }

    /// True if the kernel holds the table (whoever loaded it); never
    /// where there is no nftables.
    pub async fn present(&self) -> bool {
        if !cfg!(target_os = "linux") {
            return false;
        }
        tokio::process::Command::new(&self.nft)
            .args(["list", "table"])
            .args(TABLE.split(' '))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }

    /// Deletes the table whatever the set holds (start-up after a killed
    /// service, shutdown) and forgets every lock; true if a table was
    /// there.
    pub async fn clear(&self) -> Result<bool, KillSwitchError> {
        let mut locks = self.locks.lock().await;
        let existed = self.present().await;
        if existed {
            self.load(&removal()).await?;
        }
        locks.clear();
        Ok(existed)
    }

    /// Runs `nft -f -` with `script` as one transaction.
    async fn load(&self, script: &str) -> Result<(), KillSwitchError> {
        let nft = self.nft.display().to_string();
        let spawn = |source| KillSwitchError::Spawn {
            nft: nft.clone(),
            source,
        };
        let mut child = tokio::process::Command::new(&self.nft)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes()).await.map_err(spawn)?;
        }
        let out = child.wait_with_output().await.map_err(spawn)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(KillSwitchError::Nft {
                nft,
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: &str) -> Config {
        let mut text = format!(
            "mode tunnel\ninstance chk0\nsecret /k\nlocal 192.168.77.1:4500\ntunnel 10.77.0.1/30 1422\n{extra}"
        );
        for role in [
            "control",
            "purgatory-rx",
            "purgatory-tx",
            "heaven-rx",
            "bless",
            "heaven-tx",
            "confess",
            "chapel",
        ] {
            text += &format!("run {role} as nobody\n");
        }
        Config::parse("t.conf", &text).expect("test config")
    }

    #[test]
    fn a_fixed_peer_is_the_only_endpoint() {
        let l = Lockdown::of_config(&conf("peer 192.168.77.2:4501\n"));
        assert_eq!(
            l,
            Lockdown {
                interface: "chk0".into(),
                endpoints: vec!["192.168.77.2:4501".parse().unwrap()],
                learn_port: None,
            }
        );
    }

    #[test]
    fn a_learnt_peer_opens_the_own_port() {
        let l = Lockdown::of_config(&conf(""));
        assert_eq!(l.endpoints, vec![]);
        assert_eq!(l.learn_port, Some(4500));
    }

    #[test]
    fn the_ruleset_is_one_replacing_transaction() {
        let a = Lockdown {
            interface: "chk0".into(),
            endpoints: vec!["192.168.77.2:4500".parse().unwrap()],
            learn_port: None,
        };
        let b = Lockdown {
            interface: "chk1".into(),
            endpoints: vec![],
            learn_port: Some(4600),
        };
        let text = ruleset([&a, &b]);
        let expected = "table inet chantry {}
delete table inet chantry
table inet chantry {
\tchain output {
\t\ttype filter hook output priority filter; policy drop;
\t\toifname \"lo\" accept
\t\toifname { \"chk0\", \"chk1\" } accept
\t\tip daddr 192.168.77.2 udp dport 4500 accept
\t\tudp sport 4600 accept
\t\tudp sport 68 udp dport 67 accept
\t\tudp sport 546 udp dport 547 accept
\t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tiifname \"lo\" accept
\t\tiifname { \"chk0\", \"chk1\" } accept
\t\tct state established,related accept
\t\tip saddr 192.168.77.2 udp sport 4500 accept
\t\tudp dport 4600 accept
\t\tudp sport 67 udp dport 68 accept
\t\tudp sport 547 udp dport 546 accept
\t\ticmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy drop;
\t\tiifname { \"chk0\", \"chk1\" } accept
\t\toifname { \"chk0\", \"chk1\" } accept
\t}
}
";
        assert_eq!(text, expected);
    }

    #[test]
    fn only_linux_has_a_kill_switch_and_elsewhere_always_on_is_refused() {
        assert_eq!(unsupported().is_some(), !cfg!(target_os = "linux"));
        assert_eq!(
            KillSwitchError::Unsupported("windows").to_string(),
            "kill switch: not built on windows yet, so an always-on profile cannot be kept \
             fail-closed here: it is refused rather than run open"
        );
    }

    #[test]
    fn removal_never_fails_on_a_missing_table() {
        assert_eq!(
            removal(),
            "table inet chantry {}\ndelete table inet chantry\n"
        );
    }
}
