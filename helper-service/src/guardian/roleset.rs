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
use crate::role::Role;
use crate::roles::USER_ENV;
use crate::shm::{self, SharedState, WakeFd};
use crate::wiring::{FDS_ENV, FdMap, Mode, Ring, SETTINGS_ENV, Slot};

use super::setup::Setup;

/// The children of one set, by role.
#[derive(Debug)]
pub struct RoleSet {
    /// Running children.
    pub children: BTreeMap<Role, Child>,
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
                }
                _ => {}
            }
            let child = spawn(&exe, role, given, &settings, setup)
                .with_context(|| format!("starting {role}"))?;
            children.insert(role, child);
        }
        Ok(RoleSet { children })
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
fn secret_pipe(setup: &Setup) -> Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe().context("pipe")?;
    let mut w = std::fs::File::from(w);
    w.write_all(setup.secret.expose())
        .context("writing the secret pipe")?;
    // A cathedral client's chapel also gets its cathedral secret and COSK.
    if let Some((cs, cosk)) = &setup.cathedral_keys {
        w.write_all(cs.expose())
            .and_then(|()| w.write_all(cosk.expose()))
            .context("writing the secret pipe")?;
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
