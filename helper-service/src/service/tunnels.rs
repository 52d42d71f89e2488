//! The tunnels the service runs: one `chantryd run -c FILE` child (the
//! guardian of docs/architecture.md) per wanted profile, each watched by
//! a supervisor task of its own.
//!
//! A profile is *wanted* from a connect (a user's or auto-connect's)
//! until a disconnect. While it is wanted its supervisor keeps a guardian
//! running: one that exits on its own is started again after a backoff
//! (1 s doubling to 30 s, back to 1 s after a minute up), at once on a
//! network change, and every running one is restarted after a resume
//! from sleep (both while [`Tunnels::reconnect_on_network_change`] is
//! on; the events come from [`super::netwatch`]). An always-on profile
//! keeps the [kill switch](super::killswitch) on while it is wanted.
//!
//! The guardian's stderr is read line by line: "all roles sandboxed and
//! running" marks the tunnel up, and every line becomes a log event. The
//! guardian is started with `--die-with-parent PID`, so it tears itself
//! down when the service dies, even by SIGKILL ([`follow_parent`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chantry_core::ipc::{Event, TunnelState, TunnelStatus};
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, ChildStderr};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::killswitch::{KillSwitch, KillSwitchError, Lockdown};
use super::store::{Profile, Store};

/// The line of the guardian that says every role runs.
const UP_MARKER: &str = "all roles sandboxed and running";
/// How long a disconnect waits for the guardian to exit before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Events buffered for slow subscribers before they are cut off.
pub const EVENT_BACKLOG: usize = 1024;
/// First delay before a failed wanted tunnel is started again.
pub const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest delay between two starts of a failing tunnel.
pub const RETRY_MAX: Duration = Duration::from_secs(30);
/// A guardian up this long was stable: the next failure waits
/// [`RETRY_MIN`] again.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);
/// The option of `chantryd run` that makes the guardian die with the
/// process whose pid follows ([`follow_parent`]).
pub const DIE_WITH_PARENT: &str = "--die-with-parent";

/// What a supervisor is told.
#[derive(Debug)]
enum Control {
    /// Disconnect: stop the guardian, unlock, answer, end.
    Stop(oneshot::Sender<()>),
    /// Start again now if waiting after a failure (connect, network
    /// change).
    Retry(&'static str),
    /// Restart now, even if up (resume from sleep).
    Restart(&'static str),
    /// The profile's flags changed: read it again.
    Refresh,
}

#[derive(Debug, Default)]
struct Entry {
    state: Option<TunnelState>,
    detail: Option<String>,
    pid: Option<u32>,
    /// The TUN device, while wanted.
    instance: Option<String>,
    /// The supervisor, while wanted.
    control: Option<mpsc::UnboundedSender<Control>>,
}

/// The tunnels, shared by every connection (clones share everything).
#[derive(Debug, Clone)]
pub struct Tunnels {
    map: Arc<Mutex<HashMap<String, Entry>>>,
    chantryd: PathBuf,
    store: Store,
    events: broadcast::Sender<Event>,
    killswitch: KillSwitch,
    reconnect: Arc<AtomicBool>,
    retry_min: Duration,
}

impl Tunnels {
    /// No tunnels yet; `chantryd` is the binary that runs them.
    pub fn new(chantryd: PathBuf, store: Store) -> Tunnels {
        Tunnels {
            map: Arc::default(),
            chantryd,
            store,
            events: broadcast::channel(EVENT_BACKLOG).0,
            killswitch: KillSwitch::default(),
            reconnect: Arc::new(AtomicBool::new(true)),
            retry_min: test_retry_min().unwrap_or(RETRY_MIN),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A receiver of every later event.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The kill switch the always-on profiles use.
    pub fn killswitch(&self) -> &KillSwitch {
        &self.killswitch
    }

    /// Whether network changes retry, and resumes restart, wanted
    /// tunnels (the `reconnect_on_network_change` setting; on by default).
    pub fn reconnect_on_network_change(&self) -> bool {
        self.reconnect.load(Ordering::Relaxed)
    }

    /// Sets [`Tunnels::reconnect_on_network_change`].
    pub fn set_reconnect_on_network_change(&self, on: bool) {
        self.reconnect.store(on, Ordering::Relaxed);
    }

    /// The status of `name` (down if never started).
    pub fn status(&self, name: &str) -> TunnelStatus {
        let map = self.lock();
        let e = map.get(name);
        TunnelStatus {
            name: name.to_owned(),
            state: e.and_then(|e| e.state).unwrap_or(TunnelState::Down),
            detail: e.and_then(|e| e.detail.clone()),
            pid: e.and_then(|e| e.pid),
            stats: None,
        }
    }

    /// True while `name` is wanted (connected and not disconnected since),
    /// whatever its state.
    pub fn wanted(&self, name: &str) -> bool {
        self.lock()
            .get(name)
            .is_some_and(|e| e.control.as_ref().is_some_and(|c| !c.is_closed()))
    }

    /// The TUN devices of the wanted tunnels.
    pub fn interfaces(&self) -> Vec<String> {
        self.lock()
            .values()
            .filter_map(|e| e.instance.clone())
            .collect()
    }

    fn set(&self, name: &str, state: TunnelState, detail: Option<String>, pid: Option<u32>) {
        match &detail {
            Some(d) => tracing::info!(profile = name, %state, detail = d, "tunnel state"),
            None => tracing::info!(profile = name, %state, "tunnel state"),
        }
        {
            let mut map = self.lock();
            let e = map.entry(name.to_owned()).or_default();
            e.state = Some(state);
            e.detail = detail;
            e.pid = pid;
        }
        let _ = self.events.send(Event::State(self.status(name)));
    }

    /// An error about `name`'s tunnel: to the logs (and from there to the
    /// ring and the subscribers, see [`super::logbook`]).
    fn log_error(&self, name: &str, message: &str) {
        tracing::error!(profile = name, "{message}");
    }

    /// The sender of the subscription stream, for the other parts of the
    /// service that publish on it (log lines, stats, the event log).
    pub fn event_sender(&self) -> broadcast::Sender<Event> {
        self.events.clone()
    }

    /// The tunnels whose guardian runs, with the control socket each one
    /// answers on.
    pub fn running(&self) -> Vec<(String, PathBuf)> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.pid.is_some())
            .map(|(n, _)| (n.clone(), self.store.control_path(n)))
            .collect()
    }

    /// Makes `profile` wanted: locks the kill switch if it is always-on,
    /// starts its guardian and a supervisor that keeps it running. A
    /// profile already wanted is only retried at once if it is waiting
    /// after a failure. On `Err` (the guardian could not be started at
    /// all) nothing stays behind.
    pub async fn connect(&self, profile: &Profile) -> Result<(), String> {
        // Where there is no kill switch an always-on profile would run
        // open: refused, never started unprotected.
        if profile.always_on
            && let Some(why) = super::killswitch::unsupported()
        {
            return Err(why);
        }
        if let Some(why) = super::system::tunnels_unsupported() {
            return Err(why);
        }
        let name = profile.name.clone();
        let rx = {
            let mut map = self.lock();
            let e = map.entry(name.clone()).or_default();
            if let Some(c) = &e.control
                && c.send(Control::Retry("connect asked")).is_ok()
            {
                return Ok(());
            }
            let (tx, rx) = mpsc::unbounded_channel();
            e.control = Some(tx);
            e.instance = Some(profile.instance.clone());
            rx
        };
        self.lock_down(profile).await;
        match self.launch(profile).await {
            Ok(child) => {
                let me = self.clone();
                let profile = profile.clone();
                tokio::spawn(async move { me.supervise(profile, rx, Ok(child)).await });
                Ok(())
            }
            Err(e) => {
                self.forget(&name).await;
                Err(e)
            }
        }
    }

    /// Ends the wish for `name`: its supervisor stops the guardian
    /// (SIGTERM, SIGKILL after 10 s), unlocks the kill switch, and no
    /// retry follows. Returns once that is done.
    pub async fn disconnect(&self, name: &str) -> Result<(), String> {
        let control = self.lock().get(name).and_then(|e| e.control.clone());
        let Some(control) = control else {
            return Ok(());
        };
        let (tx, rx) = oneshot::channel();
        if control.send(Control::Stop(tx)).is_err() {
            return Ok(());
        }
        match tokio::time::timeout(STOP_TIMEOUT + Duration::from_secs(5), rx).await {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("{name}: the guardian did not exit within 15 s")),
        }
    }

    /// Tells `name`'s supervisor that the profile's flags changed (the
    /// kill switch follows `always_on`).
    pub fn refresh(&self, name: &str) {
        if let Some(c) = self.lock().get(name).and_then(|e| e.control.as_ref()) {
            let _ = c.send(Control::Refresh);
        }
    }

    /// A link, address or route changed: every wanted tunnel waiting
    /// after a failure is started now. Returns how many were told.
    pub fn network_changed(&self) -> usize {
        if !self.reconnect_on_network_change() {
            return 0;
        }
        self.tell_all(
            |state| state == Some(TunnelState::Failed),
            || Control::Retry("network changed"),
        )
    }

    /// The machine woke up: every wanted tunnel is started again (its
    /// peer may have forgotten it, its socket may be bound to an address
    /// that is gone). Returns how many were told.
    pub fn resumed(&self) -> usize {
        if !self.reconnect_on_network_change() {
            return 0;
        }
        self.tell_all(|_| true, || Control::Restart("resumed from sleep"))
    }

    fn tell_all(
        &self,
        which: impl Fn(Option<TunnelState>) -> bool,
        what: impl Fn() -> Control,
    ) -> usize {
        let map = self.lock();
        map.values()
            .filter(|e| which(e.state))
            .filter_map(|e| e.control.as_ref())
            .filter(|c| c.send(what()).is_ok())
            .count()
    }

    /// Stops every tunnel (service shutdown) and removes the kill switch.
    pub async fn stop_all(&self) {
        let names: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, e)| e.control.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        let mut set = tokio::task::JoinSet::new();
        for name in names {
            let me = self.clone();
            set.spawn(async move {
                if let Err(e) = me.disconnect(&name).await {
                    tracing::warn!("{e}");
                }
            });
        }
        while set.join_next().await.is_some() {}
        if let Err(e) = self.killswitch.clear().await {
            tracing::error!("{e}");
        }
    }

    /// Start-up: takes over the table a killed service may have left.
    /// The always-on auto-connect profiles among `profiles` are locked
    /// first, which replaces a stale table in the same transaction (the
    /// machine is never open in between); with none of them, a stale
    /// table is deleted. What was found, and what became of it.
    pub async fn adopt_stale_rules(&self, profiles: &[Profile]) -> Result<Stale, KillSwitchError> {
        let found = self.killswitch.present().await;
        let mut locked = false;
        for p in profiles.iter().filter(|p| p.auto_connect && p.always_on) {
            self.killswitch
                .set(&p.name, Some(Lockdown::of_profile(p)))
                .await?;
            locked = true;
        }
        Ok(match (found, locked) {
            (false, _) => Stale::None,
            (true, true) => Stale::Replaced,
            (true, false) => {
                self.killswitch.clear().await?;
                Stale::Removed
            }
        })
    }

    /// Locks or unlocks the kill switch for `profile` as its `always_on`
    /// says; a failure is logged (the tunnel runs anyway).
    async fn lock_down(&self, profile: &Profile) {
        let lock = profile.always_on.then(|| Lockdown::of_profile(profile));
        if let Err(e) = self.killswitch.set(&profile.name, lock).await {
            self.log_error(&profile.name, &e.to_string());
            let _ = self
                .store
                .log_event(Some(&profile.name), "killswitch", &e.to_string())
                .await;
        }
    }

    /// The end of a wish: down, unlocked, supervisor gone.
    async fn forget(&self, name: &str) {
        {
            let mut map = self.lock();
            if let Some(e) = map.get_mut(name) {
                e.control = None;
                e.instance = None;
            }
        }
        if let Err(e) = self.killswitch.set(name, None).await {
            self.log_error(name, &e.to_string());
        }
    }

    /// Writes the run configuration and starts the guardian.
    async fn launch(&self, profile: &Profile) -> Result<Child, String> {
        let name = &profile.name;
        let conf = self.store.run_config_path(name);
        super::store::write_atomic(&conf, self.store.run_config_text(profile).as_bytes())
            .map_err(|e| e.to_string())?;
        let child = tokio::process::Command::new(&self.chantryd)
            .arg("run")
            .arg("-c")
            .arg(&conf)
            .arg(DIE_WITH_PARENT)
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.chantryd.display()))?;
        self.set(name, TunnelState::Connecting, None, child.id());
        let _ = self
            .store
            .log_event(Some(name), "connect", "connecting")
            .await;
        Ok(child)
    }

    /// Keeps `profile` running until told to stop.
    async fn supervise(
        self,
        mut profile: Profile,
        mut rx: mpsc::UnboundedReceiver<Control>,
        first: Result<Child, String>,
    ) {
        let name = profile.name.clone();
        let mut backoff = self.retry_min;
        let mut next = first;
        loop {
            let failure = match next {
                Ok(mut child) => match self.watch(&name, &mut child, &mut rx).await {
                    Outcome::Stopped(reply) => return self.finish(&name, reply).await,
                    Outcome::Restart => None,
                    Outcome::Exited { why, stable } => {
                        if stable {
                            backoff = self.retry_min;
                        }
                        Some(why)
                    }
                },
                Err(why) => Some(why),
            };
            if let Some(why) = failure {
                let detail = format!("{why}; next try in {} s", backoff.as_secs());
                self.set(&name, TunnelState::Failed, Some(detail.clone()), None);
                let _ = self.store.log_event(Some(&name), "failed", &detail).await;
                match self.pause(&name, backoff, &mut rx).await {
                    Pause::Stopped(reply) => return self.finish(&name, reply).await,
                    Pause::Elapsed => backoff = (backoff * 2).min(RETRY_MAX.max(self.retry_min)),
                    Pause::Woken(reason) => {
                        tracing::info!(profile = name, reason, "retrying now");
                        let _ = self.store.log_event(Some(&name), "retry", reason).await;
                    }
                }
            }
            // The profile may have changed or gone while it ran.
            match self.store.get(&name).await {
                Ok(Some(p)) => profile = p,
                Ok(None) => return self.finish(&name, None).await,
                Err(e) => tracing::warn!(profile = name, "{e}: using the profile as it was"),
            }
            self.lock_down(&profile).await;
            next = self.launch(&profile).await;
        }
    }

    /// Follows one guardian until it exits or a command ends it.
    async fn watch(
        &self,
        name: &str,
        child: &mut Child,
        rx: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Outcome {
        let pid = child.id();
        let mut lines = child
            .stderr
            .take()
            .map(|s| tokio::io::BufReader::new(s).lines());
        let mut last = String::new();
        let mut up_since: Option<Instant> = None;
        let status = loop {
            tokio::select! {
                line = next_line(&mut lines) => match line {
                    Some(line) => {
                        if line.contains(UP_MARKER) && up_since.is_none() {
                            up_since = Some(Instant::now());
                            self.set(name, TunnelState::Up, None, pid);
                            let _ = self.store.log_event(Some(name), "up", "all roles running").await;
                        }
                        self.on_line(name, &line);
                        last = line;
                    }
                    None => lines = None,
                },
                status = child.wait() => break status,
                cmd = rx.recv() => match cmd {
                    Some(Control::Stop(reply)) => {
                        self.terminate(name, child, &mut lines).await;
                        return Outcome::Stopped(Some(reply));
                    }
                    None => {
                        self.terminate(name, child, &mut lines).await;
                        return Outcome::Stopped(None);
                    }
                    Some(Control::Restart(reason)) => {
                        tracing::info!(profile = name, reason, "restarting");
                        let _ = self.store.log_event(Some(name), "restart", reason).await;
                        self.terminate(name, child, &mut lines).await;
                        return Outcome::Restart;
                    }
                    Some(Control::Retry(_)) => {}
                    Some(Control::Refresh) => self.refresh_lock(name).await,
                },
            }
        };
        // What the guardian still had to say.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while lines.is_some() {
                match next_line(&mut lines).await {
                    Some(line) => {
                        self.on_line(name, &line);
                        last = line;
                    }
                    None => lines = None,
                }
            }
        })
        .await;
        let why = match status {
            Ok(s) if last.is_empty() => format!("guardian exited ({s})"),
            Ok(s) => format!("guardian exited ({s}): {last}"),
            Err(e) => format!("guardian lost: {e}"),
        };
        Outcome::Exited {
            why,
            stable: up_since.is_some_and(|t| t.elapsed() >= STABLE_AFTER),
        }
    }

    fn on_line(&self, name: &str, line: &str) {
        super::logbook::guardian_line(name, line);
    }

    /// SIGTERM, then up to [`STOP_TIMEOUT`] for the guardian to tear down
    /// (its lines still read), then SIGKILL.
    async fn terminate(&self, name: &str, child: &mut Child, lines: &mut Option<Lines>) {
        if let Some(pid) = child.id()
            && let Err(e) = super::system::terminate(pid)
        {
            tracing::warn!(profile = name, "{e}");
        }
        let waited = tokio::time::timeout(STOP_TIMEOUT, async {
            loop {
                tokio::select! {
                    line = next_line(lines) => match line {
                        Some(line) => self.on_line(name, &line),
                        None => *lines = None,
                    },
                    _ = child.wait() => break,
                }
            }
        })
        .await;
        if waited.is_err() {
            tracing::warn!(profile = name, "the guardian ignored SIGTERM: killing it");
            let _ = child.kill().await;
        }
    }

    /// Waits `delay` after a failure, or less if told to.
    async fn pause(
        &self,
        name: &str,
        delay: Duration,
        rx: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Pause {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return Pause::Elapsed,
                cmd = rx.recv() => match cmd {
                    Some(Control::Stop(reply)) => return Pause::Stopped(Some(reply)),
                    None => return Pause::Stopped(None),
                    Some(Control::Retry(reason) | Control::Restart(reason)) => {
                        return Pause::Woken(reason);
                    }
                    Some(Control::Refresh) => self.refresh_lock(name).await,
                },
            }
        }
    }

    /// Reads the profile again and makes the kill switch follow it.
    async fn refresh_lock(&self, name: &str) {
        if let Ok(Some(p)) = self.store.get(name).await {
            self.lock_down(&p).await;
        }
    }

    /// Down, unlocked, forgotten; answers a waiting disconnect.
    async fn finish(&self, name: &str, reply: Option<oneshot::Sender<()>>) {
        self.forget(name).await;
        self.set(name, TunnelState::Down, None, None);
        let _ = self.store.log_event(Some(name), "disconnect", "down").await;
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
    }
}

type Lines = tokio::io::Lines<tokio::io::BufReader<ChildStderr>>;

/// What start-up found of a previous run's kill switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// No table.
    None,
    /// A table, replaced by the one of this start's always-on
    /// auto-connect profiles.
    Replaced,
    /// A table, deleted (nothing to lock at start).
    Removed,
}

/// How one guardian ended.
enum Outcome {
    /// A disconnect (or the end of the service) stopped it.
    Stopped(Option<oneshot::Sender<()>>),
    /// A resume restarted it.
    Restart,
    /// It exited on its own.
    Exited {
        /// Its exit status and last line.
        why: String,
        /// It had been up for [`STABLE_AFTER`].
        stable: bool,
    },
}

/// How a wait after a failure ended.
enum Pause {
    Stopped(Option<oneshot::Sender<()>>),
    Elapsed,
    Woken(&'static str),
}

/// The next line of the guardian's stderr; `None` at its end (after
/// which the caller drops `lines`); pending forever once dropped.
async fn next_line(lines: &mut Option<Lines>) -> Option<String> {
    match lines {
        Some(l) => l.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

/// The first retry delay a test build takes from
/// `CHANTRY_TEST_RETRY_SECS` (so a test can tell a network-change retry
/// from a timed one); `None` in release builds.
fn test_retry_min() -> Option<Duration> {
    if !cfg!(feature = "test-hooks") {
        return None;
    }
    let secs = std::env::var("CHANTRY_TEST_RETRY_SECS").ok()?;
    secs.parse().ok().map(Duration::from_secs)
}

/// Why a guardian refuses to start under a parent that is gone.
#[derive(Debug, thiserror::Error)]
#[error("the process that started this guardian (pid {0}) is gone: not starting")]
pub struct ParentGone(pub i32);

/// Makes this process (a guardian started by the service) receive
/// SIGTERM when its parent dies, which it handles like any stop: roles
/// stopped, TUN device removed. The parent may have died before the
/// request took effect, so the parent pid is checked right after against
/// `expected`, the pid the service passed. (Linux: PR_SET_PDEATHSIG;
/// guardians run nowhere else yet.)
#[cfg(target_os = "linux")]
pub fn follow_parent(expected: i32) -> anyhow::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
        .map_err(|e| anyhow::anyhow!("PR_SET_PDEATHSIG: {e}"))?;
    if nix::unistd::getppid().as_raw() != expected {
        return Err(ParentGone(expected).into());
    }
    Ok(())
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
