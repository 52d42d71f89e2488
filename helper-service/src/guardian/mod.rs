//! The guardian: `chantryd run -c FILE`. It checks the configuration,
//! creates the TUN device, the UDP socket(s) and the control socket (the
//! things that need privileges), starts one sandboxed process per role,
//! and watches them: a role that dies takes the set down (its keys die
//! with it) and the set comes back after a backoff. SIGTERM, SIGINT,
//! SIGHUP or SIGQUIT stop everything and remove the TUN device.

mod roleset;
pub mod setup;
mod wiring_plan;

use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use crate::control;
use crate::platform::{Tun, udp};
use crate::roles::shared::Shared;
use crate::shm::SharedState;
use roleset::{Lent, RoleSet};
pub use setup::{Setup, SetupError};

/// First restart delay after a role died.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest restart delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A set whose roles all started and that ran this long before a role
/// died was healthy: the restart comes after the shortest delay. Only sets
/// that die sooner, or before every role reported in (a crash loop), back
/// off further.
const HEALTHY_AFTER: Duration = Duration::from_secs(1);
/// How often a cathedral checks its settings file and bundles for changes
/// (behaviour.md §8.11).
const RELOAD_CHECK: Duration = Duration::from_secs(10);
/// How long roles get to report that they are sandboxed and running.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the tunnel of `config` until a stop signal.
pub fn run(config: &Path) -> Result<()> {
    let mut setup = setup::load(config)?;
    // Signals are read from a signalfd; children get a clean mask (std
    // resets it before exec).
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGCHLD,
    ] {
        mask.add(s);
    }
    mask.thread_block().context("blocking signals")?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .context("signalfd")?;

    let _pidfile = match setup.config.pidfile() {
        Some(p) => Some(Pidfile::create(p)?),
        None => None,
    };
    let tun = setup.tun.as_ref().map(Tun::create).transpose()?;
    setup.settings.tun_offload = tun.as_ref().is_some_and(Tun::offload);
    let sock = udp::bind(setup.config.local())?;
    // A cathedral's NAT port (behaviour.md §8.1): a second socket on the
    // same address, for purgatory-rx only.
    let nat_sock = setup
        .settings
        .cathedral
        .as_ref()
        .and_then(|c| c.nat_port)
        .map(|port| {
            udp::bind(std::net::SocketAddrV4::new(
                *setup.config.local().ip(),
                port,
            ))
        })
        .transpose()?;
    let (control_path, control_user) = &setup.control;
    let control_sock =
        control::bind_control_socket(control_path, Some((control_user.uid, control_user.gid)))
            .with_context(|| format!("control socket {}", control_path.display()))?;
    let state_page = SharedState::create().context("shared state")?;
    let state = Shared::new(SharedState::attach(
        state_page.fd().try_clone_to_owned().context("dup")?,
    )?);
    tracing::info!(
        instance = setup.settings.instance,
        tun = tun.as_ref().map_or("none", Tun::name),
        offload = setup.settings.tun_offload,
        local = %setup.config.local(),
        nat_port = ?nat_sock.as_ref().and_then(|s| s.local_addr().ok()).map(|a| a.port()),
        mode = ?setup.mode,
        "chantryd starting"
    );

    let mut backoff = BACKOFF_MIN;
    loop {
        state.reset(setup.settings.peer, setup.settings.tun_mtu);
        if let Some(c) = setup.settings.cathedral_client.as_mut() {
            // What earlier sets learnt: the cathedral list, the secret of
            // the last ambry.
            c.failover = setup::load_remembrance(&setup.config);
            if setup.kek.is_some()
                && let Ok(Some(s)) = setup.config.load_secret()
            {
                setup.secret = Some(s);
            }
        }
        let lent = Lent {
            tun: tun.as_ref().map(|t| t as &dyn AsFd),
            udp: &sock,
            nat: nat_sock.as_ref().map(|s| s as &dyn AsFd),
            control: &control_sock,
            state: &state_page,
        };
        let started = Instant::now();
        let mut set = match RoleSet::start(&setup, &lent) {
            Ok(set) => set,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "could not start the roles");
                return Err(e);
            }
        };
        let mut all_started = false;
        let outcome = supervise(
            &mut set,
            &sfd,
            &state,
            tun.as_ref(),
            &setup,
            &mut all_started,
        );
        set.stop();
        state.reset(setup.settings.peer, setup.settings.tun_mtu);
        match outcome? {
            Stop::Signal(sig) => {
                tracing::info!(signal = ?sig, "stopping");
                break;
            }
            Stop::RoleDied(role, how) => {
                if all_started && started.elapsed() >= HEALTHY_AFTER {
                    backoff = BACKOFF_MIN;
                }
                tracing::error!(
                    role = %role,
                    exit = %how,
                    restart_in = ?backoff,
                    "a role died: the tunnel is down, its keys are gone; restarting"
                );
                if wait_or_signal(&sfd, backoff)? {
                    break;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    let _ = std::fs::remove_file(control_path);
    drop(tun);
    Ok(())
}

/// Why a set stopped.
enum Stop {
    Signal(Signal),
    RoleDied(crate::role::Role, String),
}

/// Watches a running set: signals, child exits, start-up deadline, and
/// the MTU acks heaven-tx reports.
fn supervise(
    set: &mut RoleSet,
    sfd: &SignalFd,
    state: &Shared,
    tun: Option<&Tun>,
    setup: &Setup,
    all_started: &mut bool,
) -> Result<Stop> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut reports = crate::report::Reader::default();
    let mut next_reload_check = Instant::now() + RELOAD_CHECK;
    loop {
        {
            let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            if let Some(r) = set.report.as_ref() {
                fds.push(PollFd::new(r.as_fd(), PollFlags::POLLIN));
            }
            let _ = poll(&mut fds, PollTimeout::from(1000u16));
        }
        while let Ok(Some(info)) = sfd.read_signal() {
            let sig = Signal::try_from(info.ssi_signo as i32).ok();
            if sig == Some(Signal::SIGHUP) && set.feed.is_some() {
                set.reload("SIGHUP");
                continue;
            }
            if let Some(
                sig @ (Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP | Signal::SIGQUIT),
            ) = sig
            {
                return Ok(Stop::Signal(sig));
            }
        }
        if Instant::now() >= next_reload_check {
            next_reload_check = Instant::now() + RELOAD_CHECK;
            if set.feed_changed() {
                set.reload("a file changed");
            }
        }
        if let Some(r) = set.report.as_ref() {
            crate::report::drain(r.as_fd(), &mut reports);
            handle_reports(&mut reports, &setup.report_files);
        }
        // Any child that exited, for whatever reason, ends the set.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    if let Some(role) = role_of(set, pid.as_raw()) {
                        return Ok(Stop::RoleDied(role, format!("exit status {code}")));
                    }
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    if let Some(role) = role_of(set, pid.as_raw()) {
                        return Ok(Stop::RoleDied(role, format!("killed by {sig:?}")));
                    }
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if !*all_started {
            let missing: Vec<_> = set
                .children
                .keys()
                .filter(|r| !state.started(**r))
                .copied()
                .collect();
            if missing.is_empty() {
                *all_started = true;
                tracing::info!("all roles sandboxed and running");
            } else if Instant::now() > deadline {
                anyhow::bail!("roles did not start within {START_TIMEOUT:?}: {missing:?}");
            }
        }
        if let Some(size) = state.take_mtu_ack()
            && setup.settings.mtu_discovery
            && let Some(tun) = tun
        {
            {
                match tun.set_mtu(size) {
                    Ok(()) => {
                        state.set_mtu(size);
                        state.mtu_ack_applied();
                        tracing::info!(mtu = size, "MTU discovery: peer acked, tunnel MTU set");
                    }
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "MTU change"),
                }
            }
        }
    }
}

/// Writes the files chapel's reports are about.
fn handle_reports(reports: &mut crate::report::Reader, files: &crate::report::ReportFiles) {
    use crate::report::Report;
    loop {
        match reports.next_report() {
            Ok(None) => return,
            Ok(Some(report)) => {
                let what = match &report {
                    Report::Ambry { generation, .. } => {
                        format!("ambry generation {generation:08x}")
                    }
                    Report::Remembrance(_) => "remembrance".to_owned(),
                };
                match files.apply(&report) {
                    Ok(Some(path)) => {
                        tracing::info!(file = %path.display(), "{what} written");
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "{what}: could not write the file"),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "chapel's report pipe");
                return;
            }
        }
    }
}

fn role_of(set: &mut RoleSet, pid: i32) -> Option<crate::role::Role> {
    let role = set
        .children
        .iter()
        .find(|(_, c)| c.id() as i32 == pid)
        .map(|(r, _)| *r)?;
    // Reaped already: forget it so stop() does not wait on it.
    set.children.remove(&role);
    Some(role)
}

/// Sleeps for `d` unless a stop signal comes first (then true).
fn wait_or_signal(sfd: &SignalFd, d: Duration) -> Result<bool> {
    let end = Instant::now() + d;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX).max(1);
        let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
        while let Ok(Some(info)) = sfd.read_signal() {
            if info.ssi_signo as i32 != Signal::SIGCHLD as i32 {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The `pidfile`: created exclusively, removed on exit.
struct Pidfile(std::path::PathBuf);

impl Pidfile {
    fn create(path: &Path) -> Result<Pidfile> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("pidfile {}", path.display()))?;
        writeln!(f, "{}", std::process::id())?;
        Ok(Pidfile(path.to_owned()))
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
