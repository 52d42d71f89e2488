//! The tunnels the service runs: one `chantryd run -c FILE` child (the
//! guardian of docs/architecture.md) per connected profile. Its stderr is
//! read line by line: the guardian's "all roles sandboxed and running"
//! marks the tunnel up, and every line becomes a log event.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chantry_core::ipc::{Event, LogLine, TunnelState, TunnelStatus};
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::broadcast;

use super::store::{Profile, Store};

/// The line of the guardian that says every role runs.
const UP_MARKER: &str = "all roles sandboxed and running";
/// How long a disconnect waits for the guardian to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Events buffered for slow subscribers before they are cut off.
pub const EVENT_BACKLOG: usize = 1024;

#[derive(Debug, Default)]
struct Entry {
    state: Option<TunnelState>,
    detail: Option<String>,
    pid: Option<u32>,
    stopping: bool,
}

/// The running tunnels, shared by every connection.
#[derive(Debug, Clone)]
pub struct Tunnels {
    map: Arc<Mutex<HashMap<String, Entry>>>,
    chantryd: PathBuf,
    store: Store,
    events: broadcast::Sender<Event>,
}

impl Tunnels {
    /// No tunnels yet; `chantryd` is the binary that runs them.
    pub fn new(chantryd: PathBuf, store: Store) -> Tunnels {
        Tunnels {
            map: Arc::default(),
            chantryd,
            store,
            events: broadcast::channel(EVENT_BACKLOG).0,
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

    fn set(&self, name: &str, state: TunnelState, detail: Option<String>, pid: Option<u32>) {
        {
            let mut map = self.lock();
            let e = map.entry(name.to_owned()).or_default();
            e.state = Some(state);
            e.detail = detail;
            e.pid = pid;
            if state != TunnelState::Connecting && state != TunnelState::Up {
                e.stopping = false;
            }
        }
        tracing::info!(profile = name, %state, "tunnel state");
        let _ = self.events.send(Event::State(self.status(name)));
    }

    /// Starts `profile`'s tunnel unless it is already starting or up.
    pub async fn connect(&self, profile: &Profile) -> Result<(), String> {
        if let Some(why) = super::system::tunnels_unsupported() {
            return Err(why);
        }
        let name = profile.name.clone();
        if matches!(
            self.status(&name).state,
            TunnelState::Connecting | TunnelState::Up
        ) {
            return Ok(());
        }
        let conf = self.store.run_config_path(&name);
        super::store::write_atomic(&conf, profile.config.as_bytes()).map_err(|e| e.to_string())?;
        let mut child = tokio::process::Command::new(&self.chantryd)
            .arg("run")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.chantryd.display()))?;
        let pid = child.id();
        self.set(&name, TunnelState::Connecting, None, pid);
        let _ = self
            .store
            .log_event(Some(&name), "connect", "connecting")
            .await;
        let stderr = child.stderr.take();
        let me = self.clone();
        tokio::spawn(async move {
            let mut last = String::new();
            if let Some(stderr) = stderr {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains(UP_MARKER) {
                        me.set(&name, TunnelState::Up, None, pid);
                    }
                    tracing::info!(profile = name, "{line}");
                    let _ = me.events.send(Event::Log(LogLine {
                        at: unix_now(),
                        level: "info".into(),
                        profile: Some(name.clone()),
                        message: line.clone(),
                    }));
                    last = line;
                }
            }
            let status = child.wait().await;
            let stopping = me.lock().get(&name).is_some_and(|e| e.stopping);
            if stopping {
                me.set(&name, TunnelState::Down, None, None);
                let _ = me.store.log_event(Some(&name), "disconnect", "down").await;
            } else {
                let why = match status {
                    Ok(s) => format!("guardian exited ({s}): {last}"),
                    Err(e) => format!("guardian lost: {e}"),
                };
                me.set(&name, TunnelState::Failed, Some(why.clone()), None);
                let _ = me.store.log_event(Some(&name), "failed", &why).await;
            }
        });
        Ok(())
    }

    /// Stops `name`'s tunnel and waits (bounded) until its guardian exited.
    pub async fn disconnect(&self, name: &str) -> Result<(), String> {
        let pid = {
            let mut map = self.lock();
            match map.get_mut(name) {
                Some(e) if e.pid.is_some() => {
                    e.stopping = true;
                    e.pid
                }
                _ => return Ok(()),
            }
        };
        if let Some(pid) = pid {
            super::system::terminate(pid)?;
        }
        let start = tokio::time::Instant::now();
        while self.status(name).pid.is_some() {
            if start.elapsed() > STOP_TIMEOUT {
                return Err(format!("{name}: the guardian did not exit within 10 s"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Stops every tunnel (service shutdown).
    pub async fn stop_all(&self) {
        let names: Vec<String> = self.lock().keys().cloned().collect();
        for name in names {
            if let Err(e) = self.disconnect(&name).await {
                tracing::warn!("{e}");
            }
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
