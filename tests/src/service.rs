//! Helpers for the tests of `chantryd service`: the service process in a
//! namespace, chantryctl runs (as root or as another user), the state of
//! a profile, a process's resident memory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::{Netns, TempDir, chantryd};

/// A `chantryd service` process, SIGTERM'd on drop.
#[derive(Debug)]
pub struct Service {
    child: Option<Child>,
    /// Its stdout and stderr.
    pub log: PathBuf,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its state directory.
    pub state: PathBuf,
}

impl Service {
    /// Starts the service in `ns` with its socket under `dir/run` and its
    /// state in `dir/state`, granting `group` and `admin_group` (groups
    /// that do not exist grant nothing: then only root may use it), and
    /// waits (bounded) until it is ready.
    pub fn start(ns: &Netns, dir: &TempDir, group: &str, admin_group: &str) -> Service {
        let sockdir = dir.join("run");
        fs::create_dir_all(&sockdir).expect("socket dir");
        fs::set_permissions(&sockdir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let socket = sockdir.join("chantryd.sock");
        let state = dir.join("state");
        let log = dir.join("service.log");
        let bin = chantryd();
        let mut cmd = ns.cmd(&[
            bin.to_str().expect("utf-8"),
            "service",
            "--socket",
            socket.to_str().expect("utf-8"),
            "--state-dir",
            state.to_str().expect("utf-8"),
            "--group",
            group,
            "--admin-group",
            admin_group,
        ]);
        let file = fs::File::create(&log).expect("log");
        cmd.stdout(file.try_clone().expect("log"))
            .stderr(file)
            .env("RUST_LOG", "info");
        let child = cmd.spawn().expect("chantryd service");
        let s = Service {
            child: Some(child),
            log,
            socket,
            state,
        };
        let start = Instant::now();
        while !s.log_text().contains("chantryd service ready") {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "service did not start\n{}",
                s.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// The service's pid (`ip netns exec` execs in place), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its output so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait (bounded, then SIGKILL); returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The chantryctl built beside the chantryd under test.
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

/// A command's exit status and output, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The status of `name` as the service reports it (as root, JSON); null
/// if the service did not answer.
pub fn status_of(socket: &Path, name: &str) -> serde_json::Value {
    let o = ctl(None, socket, &["status", name, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["tunnels"][0].clone()
}

/// The state of `name` as the service reports it (as root).
pub fn state_of(socket: &Path, name: &str) -> String {
    status_of(socket, name)["state"]
        .as_str()
        .unwrap_or("")
        .to_owned()
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
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// The resident memory of a process in KiB (VmRSS of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
