//! What the tests of `chantryd service` share: the test's own groups and
//! users ([`Accounts`]), the service process ([`Service`]) started in a
//! namespace with its socket and state in a [`TempDir`], and chantryctl
//! run as any user against it ([`ctl`], [`state_of`], [`wait_state`]).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use crate::{Netns, TempDir, chantryd, sh};

/// The users' group the tests give the service.
pub const GROUP: &str = "chtest-users";
/// The admin group the tests give the service.
pub const ADMIN_GROUP: &str = "chtest-admins";
/// A user in [`GROUP`].
pub const MEMBER: &str = "chtest-member";
/// A user in neither group.
pub const OUTSIDER: &str = "chtest-outsider";

/// The test's groups and users ([`GROUP`], [`ADMIN_GROUP`], [`MEMBER`],
/// [`OUTSIDER`]), created idempotently; removed on drop.
#[derive(Debug)]
pub struct Accounts;

impl Accounts {
    /// Creates the groups and users that do not exist yet.
    pub fn create() -> Accounts {
        for g in [GROUP, ADMIN_GROUP] {
            sh(&["groupadd", "-f", g]);
        }
        for (user, groups) in [(MEMBER, Some(GROUP)), (OUTSIDER, None)] {
            let exists = Command::new("id")
                .args(["-u", user])
                .output()
                .is_ok_and(|o| o.status.success());
            if !exists {
                let mut args = vec![
                    "useradd",
                    "-M",
                    "-N",
                    "-s",
                    "/usr/sbin/nologin",
                    "-d",
                    "/nonexistent",
                ];
                if let Some(g) = groups {
                    args.extend(["-G", g]);
                }
                args.push(user);
                sh(&args);
            } else if let Some(g) = groups {
                sh(&["usermod", "-aG", g, user]);
            }
        }
        Accounts
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for u in [MEMBER, OUTSIDER] {
            let _ = Command::new("userdel").arg(u).output();
        }
        for g in [GROUP, ADMIN_GROUP] {
            let _ = Command::new("groupdel").arg(g).output();
        }
    }
}

/// How a [`Service`] is started.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// `--group`.
    pub group: String,
    /// `--admin-group`.
    pub admin_group: String,
    /// Extra environment (test hooks).
    pub env: Vec<(String, String)>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            group: GROUP.into(),
            admin_group: ADMIN_GROUP.into(),
            env: Vec::new(),
        }
    }
}

impl ServiceOptions {
    /// These options with one more environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// A `chantryd service` process, SIGTERM'd on drop. Its socket is
/// `DIR/run/chantryd.sock`, its state `DIR/state`; every start in the
/// same directory gets a log file of its own (`service.log`,
/// `service.2.log`, ...), so a restart keeps the state and waits for its
/// own "ready".
#[derive(Debug)]
pub struct Service {
    child: Option<Child>,
    /// This start's log (stdout and stderr).
    pub log: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
    /// The state directory.
    pub state: PathBuf,
}

impl Service {
    /// Starts the service in `ns` with the default options and waits
    /// (bounded) until it is ready.
    pub fn start(ns: &Netns, dir: &TempDir) -> Service {
        Service::start_with(ns, dir, &ServiceOptions::default())
    }

    /// Starts the service in `ns` with `opts` and waits (bounded) until it
    /// is ready.
    pub fn start_with(ns: &Netns, dir: &TempDir, opts: &ServiceOptions) -> Service {
        let sockdir = dir.join("run");
        fs::create_dir_all(&sockdir).expect("socket dir");
        fs::set_permissions(&sockdir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let socket = sockdir.join("chantryd.sock");
        let state = dir.join("state");
        let log = (1..)
            .map(|n| match n {
                1 => dir.join("service.log"),
                n => dir.join(&format!("service.{n}.log")),
            })
            .find(|p| !p.exists())
            .expect("a free log name");
        let bin = chantryd();
        let mut cmd = ns.cmd(&[
            bin.to_str().expect("utf-8"),
            "service",
            "--socket",
            socket.to_str().expect("utf-8"),
            "--state-dir",
            state.to_str().expect("utf-8"),
            "--group",
            &opts.group,
            "--admin-group",
            &opts.admin_group,
        ]);
        let file = fs::File::create(&log).expect("log");
        cmd.stdout(file.try_clone().expect("log"))
            .stderr(file)
            .env("RUST_LOG", "info");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("chantryd service");
        let s = Service {
            child: Some(child),
            log,
            socket,
            state,
        };
        assert!(
            s.wait_log("chantryd service ready", Duration::from_secs(15)),
            "service did not start\n{}",
            s.log_text()
        );
        s
    }

    /// The service's pid (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// This start's log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// SIGTERM and wait (bounded, then SIGKILL); the exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// SIGKILL (no clean-up runs) and reap; the exit status.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The chantryctl beside the chantryd under test.
pub fn chantryctl() -> PathBuf {
    chantryd().with_file_name("chantryctl")
}

/// A chantryctl command against `socket` as `user` (None: root), to add
/// arguments, environment or pipes to.
pub fn ctl_command(user: Option<&str>, socket: &Path) -> Command {
    let bin = chantryctl();
    let mut cmd = match user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--"]).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    cmd.arg("--service").arg(socket);
    cmd
}

/// Runs chantryctl against `socket` as `user` (None: root).
pub fn ctl(user: Option<&str>, socket: &Path, args: &[&str]) -> Output {
    ctl_command(user, socket)
        .args(args)
        .output()
        .expect("chantryctl")
}

/// Runs chantryctl as root and panics with its output unless it succeeds.
pub fn ctl_ok(socket: &Path, args: &[&str]) -> Output {
    let o = ctl(None, socket, args);
    assert!(
        o.status.success(),
        "chantryctl {}: {}",
        args.join(" "),
        describe(&o)
    );
    o
}

/// A command's exit status and output, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The status of `name` as the service reports it (as root, JSON; Null
/// if it could not be read).
pub fn status_of(socket: &Path, name: &str) -> serde_json::Value {
    let o = ctl(None, socket, &["status", name, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["tunnels"][0].clone()
}

/// The state of `name` as the service reports it (`""` if unknown).
pub fn state_of(socket: &Path, name: &str) -> String {
    status_of(socket, name)["state"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// The guardian pid the service reports for `name`, if any.
pub fn pid_of(socket: &Path, name: &str) -> Option<u32> {
    status_of(socket, name)["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
}

/// Waits (bounded) until `name` is in `state`; its last status JSON on
/// success, None on timeout.
pub fn wait_state(
    socket: &Path,
    name: &str,
    state: &str,
    limit: Duration,
) -> Option<serde_json::Value> {
    wait_status(socket, name, limit, |s| s["state"] == state)
}

/// Polls the status of `name` (bounded by `limit`) until `done` likes
/// it; returns it, or None.
pub fn wait_status(
    socket: &Path,
    name: &str,
    limit: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    let start = Instant::now();
    while start.elapsed() < limit {
        let s = status_of(socket, name);
        if done(&s) {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The resident memory of a process in KiB (VmRSS of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// True while process `pid` exists and is not a zombie (an orphan's
/// zombie may wait a while for whoever reaps it).
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the ")" that closes the name.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state != "Z" && state != "X")
}

/// Waits (bounded) until process `pid` is gone; true if it went.
pub fn wait_gone(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !alive(pid)
}

/// Makes this test process the reaper of its orphaned descendants
/// (PR_SET_CHILD_SUBREAPER): a guardian whose service died becomes this
/// process's child, so [`reap`] can read how it ended.
pub fn become_subreaper() {
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
}

/// Waits (bounded) for `pid`, an orphan adopted after
/// [`become_subreaper`], to end, and reaps it: how it ended, or None if
/// it still runs after `limit` (or is not this process's to reap).
pub fn reap(pid: u32, limit: Duration) -> Option<nix::sys::wait::WaitStatus> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).ok()?);
    let start = Instant::now();
    while start.elapsed() < limit {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(50)),
            Ok(status) => return Some(status),
            Err(_) => return None,
        }
    }
    None
}
