//! One running set of role processes: the rings between them, their
//! wakeup fds, and the children. Built fresh on every (re)start so a
//! restarted set shares nothing with the one that died.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};
use command_fds::{CommandFdExt, FdMapping};

use super::wiring_plan;
use crate::feed::{FeedWriter, Feeder};
use crate::role::Role;
use crate::roles::USER_ENV;
use crate::shm::{self, SharedState, WakeFd};
use crate::wiring::{FDS_ENV, FdMap, Mode, Ring, SETTINGS_ENV, Slot};

use super::setup::Setup;

/// The children of one set, by role.
pub struct RoleSet {
    /// Running children.
    pub children: BTreeMap<Role, Child>,
    /// The read end of chapel's report pipe (non-blocking), if chapel is a
    /// cathedral client.
    pub report: Option<OwnedFd>,
    /// The cathedral role's feed and what it was last fed.
    pub feed: Option<(FeedWriter, Feeder)>,
}

/// What the guardian keeps open across restarts and lends to each set.
pub struct Lent<'a> {
    /// The TUN device (none in cathedral mode).
    pub tun: Option<&'a dyn AsFd>,
    /// The UDP socket (absent in no mode here, but kept optional for
    /// role sets without purgatory).
    pub udp: &'a dyn AsFd,
    /// A cathedral's NAT-port socket, if `cathedral_nat_port` is set.
    pub nat: Option<&'a dyn AsFd>,
    /// The bound control socket.
    pub control: &'a dyn AsFd,
    /// The state page.
    pub state: &'a SharedState,
}

impl RoleSet {
    /// Creates the rings and wakeup fds of a set and starts its roles in
    /// order.
    pub fn start(setup: &Setup, lent: &Lent<'_>) -> Result<RoleSet> {
        let mode = setup.mode;
        let roles = mode.roles();
        let mut wakes = BTreeMap::new();
        for &role in roles {
            wakes.insert(role, WakeFd::new().context("eventfd")?);
        }
        // Every ring whose consumer runs in this mode.
        let mut rings: BTreeMap<Ring, OwnedFd> = BTreeMap::new();
        for ring in Ring::ALL {
            if wiring_plan::consumer(ring, mode).is_some() {
                let name = format!("chantry-{}", ring.as_str());
                rings.insert(ring, shm::create_ring(&name, ring.slots_in(mode))?);
            }
        }
        let exe = std::env::current_exe().context("finding the chantryd executable")?;
        let settings = serde_json::to_string(&setup.settings)?;
        let mut children = BTreeMap::new();
        let mut report = None;
        let mut feed = None;
        for &role in roles {
            let mut given: Vec<(Slot, OwnedFd)> = Vec::new();
            let dup = |fd: &dyn AsFd| -> Result<OwnedFd> {
                fd.as_fd().try_clone_to_owned().context("dup")
            };
            given.push((Slot::Wake, dup(&wakes[&role].as_fd())?));
            given.push((Slot::State, dup(&lent.state.fd())?));
            for (&ring, fd) in &rings {
                if wiring_plan::consumer(ring, mode) == Some(role) {
                    given.push((Slot::In(ring), dup(fd)?));
                }
                if wiring_plan::producer(ring, mode) == Some(role) {
                    given.push((Slot::Out(ring), dup(fd)?));
                    if let Some(c) = wiring_plan::consumer(ring, mode) {
                        given.push((Slot::Waker(ring), dup(&wakes[&c].as_fd())?));
                    }
                }
            }
            match role {
                Role::HeavenRx | Role::HeavenTx => {
                    let tun = lent.tun.context("a heaven role without a TUN device")?;
                    given.push((Slot::Tun, dup(tun)?));
                }
                Role::PurgatoryRx | Role::PurgatoryTx => {
                    given.push((Slot::Udp, dup(lent.udp)?));
                    // Only the receiver gets the NAT port: replies leave
                    // from the main socket.
                    if role == Role::PurgatoryRx
                        && let Some(nat) = lent.nat
                    {
                        given.push((Slot::NatUdp, dup(nat)?));
                    }
                }
                Role::Control => given.push((Slot::Control, dup(lent.control)?)),
                Role::Chapel | Role::Pilgrim | Role::Shrine if setup.mode != Mode::Cathedral => {
                    given.push((Slot::Secret, secret_pipe(setup)?));
                    if role == Role::Chapel && setup.settings.cathedral_client.is_some() {
                        let (r, w) = crate::report::pipe().context("report pipe")?;
                        given.push((Slot::Report, w));
                        report = Some(r);
                    }
                }
                Role::Cathedral => {
                    let (r, w) =
                        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("feed pipe")?;
                    given.push((Slot::Feed, r));
                    let paths = setup
                        .settings
                        .cathedral
                        .clone()
                        .context("cathedral mode without its paths")?;
                    let mut feeder = Feeder::new(paths, setup.secret.clone());
                    let writer = FeedWriter::spawn(w)?;
                    writer.send(&feeder.load()?);
                    feed = Some((writer, feeder));
                }
                _ => {}
            }
            let child = spawn(&exe, role, given, &settings, setup)
                .with_context(|| format!("starting {role}"))?;
            children.insert(role, child);
        }
        Ok(RoleSet {
            children,
            report,
            feed,
        })
    }

    /// Reads the settings, keys and bundles again and feeds them to the
    /// cathedral role (SIGHUP, or a changed mtime); registrations stay.
    pub fn reload(&mut self, why: &str) {
        if let Some((writer, feeder)) = self.feed.as_mut() {
            match feeder.load() {
                Ok(s) => {
                    tracing::info!(why, "cathedral settings reloaded");
                    writer.send(&s);
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cathedral settings reload failed; the old ones stay")
                }
            }
        }
    }

    /// Did a file the cathedral was fed change since?
    pub fn feed_changed(&self) -> bool {
        self.feed.as_ref().is_some_and(|(_, f)| f.changed())
    }

    /// Stops every child (SIGTERM, then SIGKILL for any that lingers) and
    /// reaps them.
    pub fn stop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        for child in self.children.values() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        }
        for child in self.children.values_mut() {
            let _ = child.wait();
        }
        self.children.clear();
    }
}

/// A pipe holding the shared secret, for the keying role to read once.
/// A cathedral client's chapel gets more (roles::keying::ClientKeys):
/// secret (zeros if there is none yet), a presence byte, its cathedral
/// secret, COSK, KEK (zeros if none) and a presence byte.
fn secret_pipe(setup: &Setup) -> Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe().context("pipe")?;
    let mut w = std::fs::File::from(w);
    let zero = chantry_core::secret::Key32::new([0; 32]);
    match &setup.cathedral_keys {
        None => {
            let secret = setup
                .secret
                .as_ref()
                .context("a tunnel without a cathedral needs its secret file")?;
            w.write_all(secret.expose())
                .context("writing the secret pipe")?;
        }
        Some((cs, cosk)) => {
            let secret = setup.secret.as_ref().unwrap_or(&zero);
            let kek = setup.kek.as_ref().unwrap_or(&zero);
            let mut all = zeroize::Zeroizing::new(Vec::with_capacity(162));
            all.extend_from_slice(secret.expose());
            all.push(u8::from(setup.secret.is_some()));
            all.extend_from_slice(cs.expose());
            all.extend_from_slice(cosk.expose());
            all.extend_from_slice(kek.expose());
            all.push(u8::from(setup.kek.is_some()));
            w.write_all(&all).context("writing the secret pipe")?;
        }
    }
    Ok(r)
}

/// Execs `chantryd role NAME` with exactly `given` at fds 3.. and nothing
/// else inherited.
fn spawn(
    exe: &std::path::Path,
    role: Role,
    given: Vec<(Slot, OwnedFd)>,
    settings: &str,
    setup: &Setup,
) -> Result<Child> {
    let mut map = FdMap::default();
    let mut mappings = Vec::new();
    for (i, (slot, fd)) in given.into_iter().enumerate() {
        let child_fd = 3 + i as i32;
        map.insert(slot, child_fd);
        mappings.push(FdMapping {
            parent_fd: fd,
            child_fd,
        });
    }
    let mut cmd = Command::new(exe);
    cmd.arg("role")
        .arg(role.as_str())
        .env_clear()
        .env(FDS_ENV, map.encode())
        .env(SETTINGS_ENV, settings)
        .stdin(Stdio::null());
    if let Ok(filter) = std::env::var("RUST_LOG") {
        cmd.env("RUST_LOG", filter);
    }
    if let Some(u) = setup.users.get(&role) {
        cmd.env(USER_ENV, format!("{}:{}", u.uid, u.gid));
    }
    cmd.fd_mappings(mappings)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(cmd.spawn()?)
}
