//! The per-role sandbox, for every role, in real child processes.
//!
//! Run as root: `cargo test -p chantry-service --features test-hooks --test sandbox`.
//! The binary re-executes itself once per (role, case) with
//! `CHANTRY_SANDBOX_CHILD=<role>:<case>`; the child sets up the fds a role
//! of that kind holds, enters the sandbox as uid/gid 6000+i (no passwd
//! entry needed) and reports on stdout. The parent checks how each child
//! ended and what it printed. Every wait is bounded.
//!
//! What it shows, per role: (a) the role's forbidden syscall kills it with
//! SIGSYS; (b) its loop work (eventfd, poll, allocator, clock, randomness,
//! logging, its own TUN/UDP/control I/O) succeeds and it exits 0; (c) a
//! crypto role sees only a down `lo`, the others stay in the host
//! namespace; (d) its uids/gids/groups are its own; (e) /etc/hostname and
//! TCP connects are denied by landlock; (f) an fd open before `enter` and
//! not kept is closed, the kept ones are not. Plus: abort() still shows
//! as SIGABRT; heaven/purgatory roles die when they use their data fd in
//! the wrong direction; a plan with files can use exactly its paths.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chantry_core::entropy::{Entropy, OsEntropy};
use chantry_service::role::Role;
use chantry_service::sandbox::{self, SandboxPlan, User};
use chantry_service::wiring::Mode;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

const CHILD_ENV: &str = "CHANTRY_SANDBOX_CHILD";
/// The roles chantryd runs in some mode (liturgy and bishop come later).
fn chantryd_roles() -> Vec<Role> {
    Role::ALL
        .into_iter()
        .filter(|r| Mode::any_runs(*r))
        .collect()
}
const DIR_ENV: &str = "CHANTRY_SANDBOX_DIR";
const CHILD_TIMEOUT: Duration = Duration::from_secs(30);
const SIGSYS: i32 = 31;
const SIGABRT: i32 = 6;

/// What a child does after entering the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    /// Calls `test_forbidden_syscall`: must die of SIGSYS.
    Forbidden,
    /// The role's loop work: must exit 0 with the expected report.
    Work,
    /// `std::process::abort()`: must die of SIGABRT, not SIGSYS.
    Abort,
    /// Uses its data fd in the direction the role must not: SIGSYS.
    WrongDirection,
    /// A plan with an `fs_write` directory: create/rename/read/unlink there.
    FilesWrite,
    /// A plan with an `fs_read` directory: read there, then open for writing: SIGSYS.
    FilesRead,
    /// Raises SIGUSR1 (glibc's raise is tgkill): only SIGABRT may be, so
    /// SIGSYS (not death by SIGUSR1).
    OtherSignal,
    /// Panics: the message reaches stderr, the stack unwinds, exit 101.
    Panic,
    /// Overflows the main thread's stack: std's handler reports it and
    /// aborts (SIGABRT), the sandbox does not turn it into SIGSYS.
    Overflow,
}

impl Case {
    const ALL: [Case; 9] = [
        Case::Forbidden,
        Case::Work,
        Case::Abort,
        Case::WrongDirection,
        Case::FilesWrite,
        Case::FilesRead,
        Case::Overflow,
        Case::Panic,
        Case::OtherSignal,
    ];

    fn name(self) -> &'static str {
        match self {
            Case::Forbidden => "forbidden",
            Case::Work => "work",
            Case::Abort => "abort",
            Case::WrongDirection => "wrong-direction",
            Case::FilesWrite => "files-write",
            Case::FilesRead => "files-read",
            Case::Overflow => "overflow",
            Case::Panic => "panic",
            Case::OtherSignal => "other-signal",
        }
    }

    fn parse(s: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|c| c.name() == s)
    }
}

fn uid_of(role: Role) -> u32 {
    let i = chantryd_roles()
        .iter()
        .position(|r| *r == role)
        .unwrap_or(99);
    6000 + u32::try_from(i).unwrap_or(99)
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    parent();
}

// ---------------------------------------------------------------- child --

/// Prints one report line and flushes it (stdout is a pipe; a later kill
/// must not lose it).
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn errno_name(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("{:?}", nix::errno::Errno::from_raw(n)),
        None => format!("{e}"),
    }
}

fn outcome<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => errno_name(&e),
    }
}

/// The fds a child of this role and case holds when it enters.
struct Held {
    eventfd: EventFd,
    tun: Option<File>,
    udp: Option<UdpSocket>,
    udp_peer: Option<std::net::SocketAddr>,
    control: Option<(UnixDatagram, UnixDatagram, PathBuf)>,
    memfd: Option<std::os::fd::OwnedFd>,
}

fn child(spec: &str) {
    let (role, case) = spec
        .split_once(':')
        .and_then(|(r, c)| Some((r.parse::<Role>().ok()?, Case::parse(c)?)))
        .expect("CHANTRY_SANDBOX_CHILD is <role>:<case>");
    let dir = PathBuf::from(std::env::var(DIR_ENV).expect("CHANTRY_SANDBOX_DIR set"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::DEBUG)
        .init();

    let uid = uid_of(role);
    let held = hold_fds(role, &dir, uid);
    // An fd open before enter() and not kept: it must be gone afterwards.
    // Its owner is given up first (enter closes it, not a drop).
    let stale = File::open("/dev/null")
        .expect("open /dev/null")
        .into_raw_fd();

    let mut keep = vec![held.eventfd.as_raw_fd()];
    keep.extend(held.tun.as_ref().map(|f| f.as_raw_fd()));
    keep.extend(held.udp.as_ref().map(|s| s.as_raw_fd()));
    if let Some((server, client, _)) = &held.control {
        keep.extend([server.as_raw_fd(), client.as_raw_fd()]);
    }
    keep.extend(held.memfd.as_ref().map(|m| m.as_raw_fd()));

    let mut plan = SandboxPlan {
        role,
        keep_fds: keep.clone(),
        user: Some(User { uid, gid: uid }),
        fs_read: vec![],
        fs_write: vec![],
    };
    match case {
        Case::FilesWrite => plan.fs_write.push(dir.join(format!("rw-{uid}"))),
        Case::FilesRead => plan.fs_read.push(dir.join("ro")),
        _ => {}
    }

    let netns_before = fs::metadata("/proc/self/ns/net").expect("netns").ino();
    let mut probe = || probe(role, netns_before, stale, &keep);
    if let Err(e) = sandbox::enter_with_probe(&plan, &mut probe) {
        report(&format!("enter failed: {e}"));
        std::process::exit(2);
    }
    tracing::info!(%role, "inside the sandbox");

    match case {
        Case::Forbidden => {
            report("entered");
            let r = sandbox::test_forbidden_syscall(role);
            report(&format!("survived: {r:?}"));
            std::process::exit(3);
        }
        Case::Abort => {
            report("entered");
            std::process::abort();
        }
        Case::OtherSignal => {
            report("entered");
            let r = nix::sys::signal::raise(nix::sys::signal::Signal::SIGUSR1);
            report(&format!("survived: {r:?}"));
            std::process::exit(3);
        }
        Case::Panic => {
            report("entered");
            let _guard = ReportOnDrop("unwound");
            panic!("a role panics inside its sandbox");
        }
        Case::Overflow => {
            report("entered");
            let n = recurse(0);
            report(&format!("survived: {n}"));
            std::process::exit(3);
        }
        Case::WrongDirection => {
            report("entered");
            wrong_direction(role, &held);
            report("survived");
            std::process::exit(3);
        }
        Case::Work => {
            common_work(&held.eventfd);
            role_work(role, &held);
            report("done");
        }
        Case::FilesWrite => {
            common_work(&held.eventfd);
            files_write(&dir.join(format!("rw-{uid}")), &dir.join("open"));
            report("done");
        }
        Case::FilesRead => {
            let file = dir.join("ro").join("remembrance");
            report(&format!(
                "read {}",
                outcome(fs::read(&file).map(|b| assert_eq!(b, b"kept")))
            ));
            let mut back = Vec::new();
            let r = File::open(&file).and_then(|mut f| f.read_to_end(&mut back));
            report(&format!(
                "read_to_end {} {}",
                outcome(r),
                String::from_utf8_lossy(&back)
            ));
            report(&format!(
                "hostname {}",
                outcome(File::open("/etc/hostname"))
            ));
            report("entered-write");
            let r = fs::OpenOptions::new().write(true).open(&file);
            report(&format!("survived: {r:?}"));
            std::process::exit(3);
        }
    }
    // Returning from main exercises the std runtime's exit path too.
}

/// Reports a line when dropped, i.e. also while a panic unwinds.
struct ReportOnDrop(&'static str);

impl Drop for ReportOnDrop {
    fn drop(&mut self) {
        report(self.0);
    }
}

/// Recurses until the stack runs out (the depth check never stops it).
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth.to_le_bytes()[0]; 4096]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(u64::from(frame[depth as usize % 4096]))
}

fn hold_fds(role: Role, dir: &Path, uid: u32) -> Held {
    let eventfd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
        .expect("eventfd");
    let mut held = Held {
        eventfd,
        tun: None,
        udp: None,
        udp_peer: None,
        control: None,
        memfd: None,
    };
    match role {
        Role::HeavenRx | Role::HeavenTx => {
            // The guardian's TUN fd; not attached to an interface here, so
            // read/write reach the driver and fail with EBADFD.
            let tun = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/net/tun")
                .expect("open /dev/net/tun");
            held.tun = Some(tun);
        }
        Role::PurgatoryRx | Role::PurgatoryTx => {
            let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
            let peer = UdpSocket::bind("127.0.0.1:0").expect("bind udp peer");
            if role == Role::PurgatoryRx {
                let to = sock.local_addr().expect("addr");
                peer.send_to(b"ping-1", to).expect("send");
                peer.send_to(b"ping-2", to).expect("send");
            }
            held.udp_peer = Some(peer.local_addr().expect("addr"));
            held.udp = Some(sock);
        }
        Role::Control => {
            let server_path = dir.join(format!("ctl-{uid}"));
            let client_path = dir.join(format!("cli-{uid}"));
            let _ = fs::remove_file(&server_path);
            let _ = fs::remove_file(&client_path);
            let server = UnixDatagram::bind(&server_path).expect("bind control");
            let client = UnixDatagram::bind(&client_path).expect("bind client");
            // The role user must be able to send the reply to the client.
            fs::set_permissions(&client_path, fs::Permissions::from_mode(0o777)).expect("chmod");
            client.send_to(&[1], &server_path).expect("request");
            held.control = Some((server, client, client_path));
        }
        Role::Bless
        | Role::Confess
        | Role::Chapel
        | Role::Pilgrim
        | Role::Shrine
        | Role::Cathedral => {
            let memfd =
                nix::sys::memfd::memfd_create(c"ring", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                    .expect("memfd");
            held.memfd = Some(memfd);
        }
        Role::Liturgy | Role::Bishop => unreachable!("not a chantryd role"),
    }
    held
}

/// Runs after landlock, before seccomp: what the allow-list would forbid.
fn probe(role: Role, netns_before: u64, stale: RawFd, keep: &[RawFd]) {
    let r = nix::unistd::getresuid().expect("getresuid");
    let g = nix::unistd::getresgid().expect("getresgid");
    let groups: Vec<String> = nix::unistd::getgroups()
        .expect("getgroups")
        .iter()
        .map(|g| g.as_raw().to_string())
        .collect();
    report(&format!(
        "ids {} {} {} {} {} {} groups {}",
        r.real,
        r.effective,
        r.saved,
        g.real,
        g.effective,
        g.saved,
        groups.join(",")
    ));
    let nnp = nix::sys::prctl::get_no_new_privs().expect("get_no_new_privs");
    report(&format!("no_new_privs {nnp}"));
    let netns = fs::metadata("/proc/self/ns/net").expect("netns").ino();
    report(if netns == netns_before {
        "netns same"
    } else {
        "netns new"
    });
    if sandbox::no_network(role) {
        let mut ifaces = BTreeSet::new();
        for ifa in nix::ifaddrs::getifaddrs().expect("getifaddrs") {
            let up = ifa.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP);
            ifaces.insert(format!(
                "{}:{}",
                ifa.interface_name,
                if up { "up" } else { "down" }
            ));
        }
        report(&format!(
            "ifaces {}",
            ifaces.into_iter().collect::<Vec<_>>().join(",")
        ));
    }
    report(&format!(
        "hostname {}",
        outcome(File::open("/etc/hostname"))
    ));
    report(&format!(
        "tcp {}",
        outcome(TcpStream::connect_timeout(
            &"127.0.0.1:9".parse().expect("addr"),
            Duration::from_secs(2)
        ))
    ));
    // readlink is not a landlock-controlled access: it tells open from closed.
    let open = |fd: RawFd| fs::read_link(format!("/proc/self/fd/{fd}")).is_ok();
    report(if open(stale) {
        "stale open"
    } else {
        "stale closed"
    });
    report(if keep.iter().all(|&fd| open(fd)) {
        "kept open"
    } else {
        "kept closed"
    });
    let others: Vec<RawFd> = (3..256)
        .filter(|fd| !keep.contains(fd) && open(*fd))
        .collect();
    report(&format!("other fds {others:?}"));
}

/// What every role's loop does: eventfd wake and drain, poll, allocator,
/// clocks, sleep/yield, randomness, a HashMap, a log line.
fn common_work(eventfd: &EventFd) {
    eventfd.write(1).expect("eventfd write");
    let mut fds = [PollFd::new(eventfd.as_fd(), PollFlags::POLLIN)];
    let n = nix::poll::poll(&mut fds, PollTimeout::from(1000u16)).expect("poll");
    let readable = fds[0]
        .revents()
        .is_some_and(|r| r.contains(PollFlags::POLLIN));
    report(&format!("poll {n} {readable}"));
    report(&format!(
        "eventfd {}",
        eventfd.read().expect("eventfd read")
    ));

    // Small and large allocations, growth by realloc, release.
    let mut big = vec![7u8; 4 << 20];
    big.resize(16 << 20, 1);
    let small: Vec<Box<[u8; 64]>> = (0..1000).map(|_| Box::new([3u8; 64])).collect();
    report(&format!("alloc {} {}", big.len(), small.len()));
    drop(big);
    drop(small);

    let start = Instant::now();
    let _ = std::time::SystemTime::now();
    std::thread::sleep(Duration::from_millis(1));
    std::thread::yield_now();
    report(&format!(
        "clock {}",
        start.elapsed() >= Duration::from_millis(1)
    ));

    let mut key = [0u8; 32];
    OsEntropy.fill(&mut key);
    report(&format!("random {}", key.iter().any(|&b| b != 0)));
    let mut map = std::collections::HashMap::new();
    map.insert("spi", 1u32);
    report(&format!("map {}", map.len()));
    tracing::info!(entries = map.len(), "loop work done");
    tracing::debug!("a debug line");
}

fn role_work(role: Role, held: &Held) {
    match role {
        Role::HeavenRx => {
            let mut tun = held.tun.as_ref().expect("tun");
            let mut buf = [0u8; 64];
            report(&format!("tun read {}", outcome(tun.read(&mut buf))));
            let mut a = [0u8; 20];
            let mut b = [0u8; 44];
            let mut bufs = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
            report(&format!(
                "tun readv {}",
                outcome(tun.read_vectored(&mut bufs))
            ));
        }
        Role::HeavenTx => {
            let mut tun = held.tun.as_ref().expect("tun");
            report(&format!("tun write {}", outcome(tun.write(&[0x45; 20]))));
            let bufs = [IoSlice::new(&[0x45; 20]), IoSlice::new(&[0; 8])];
            report(&format!(
                "tun writev {}",
                outcome(tun.write_vectored(&bufs))
            ));
        }
        Role::PurgatoryRx => {
            let sock = held.udp.as_ref().expect("udp");
            let mut buf = [0u8; 64];
            let (n, _) = sock.recv_from(&mut buf).expect("recv_from");
            report(&format!(
                "udp recvfrom {}",
                String::from_utf8_lossy(&buf[..n])
            ));
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = nix::sys::socket::recvmsg::<nix::sys::socket::SockaddrIn>(
                sock.as_raw_fd(),
                &mut iov,
                None,
                nix::sys::socket::MsgFlags::empty(),
            )
            .expect("recvmsg");
            let n = msg.bytes;
            report(&format!(
                "udp recvmsg {}",
                String::from_utf8_lossy(&buf[..n])
            ));
        }
        Role::PurgatoryTx => {
            let sock = held.udp.as_ref().expect("udp");
            let to = held.udp_peer.expect("peer");
            report(&format!(
                "udp sendto {}",
                sock.send_to(b"pong", to).expect("send_to")
            ));
            let addr = nix::sys::socket::SockaddrIn::from(match to {
                std::net::SocketAddr::V4(v4) => v4,
                std::net::SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
            });
            let n = nix::sys::socket::sendmsg(
                sock.as_raw_fd(),
                &[IoSlice::new(b"pong")],
                &[],
                nix::sys::socket::MsgFlags::empty(),
                Some(&addr),
            )
            .expect("sendmsg");
            report(&format!("udp sendmsg {n}"));
        }
        Role::Control => {
            let (server, client, client_path) = held.control.as_ref().expect("control");
            let mut buf = [0u8; 16];
            let (n, from) = server.recv_from(&mut buf).expect("recv request");
            let from = from.as_pathname().map(Path::to_path_buf);
            report(&format!(
                "control request {n} {}",
                from.as_deref() == Some(client_path)
            ));
            let sent = server
                .send_to(&[0xab; 88], client_path)
                .expect("send reply");
            let mut reply = [0u8; 128];
            let got = client.recv(&mut reply).expect("recv reply");
            report(&format!("control reply {sent} {got}"));
        }
        Role::Bless
        | Role::Confess
        | Role::Chapel
        | Role::Pilgrim
        | Role::Shrine
        | Role::Cathedral => {
            let memfd = held.memfd.as_ref().expect("memfd");
            report(&format!("memfd {}", memfd.as_raw_fd() > 2));
        }
        Role::Liturgy | Role::Bishop => unreachable!("not a chantryd role"),
    }
}

fn wrong_direction(role: Role, held: &Held) {
    let mut buf = [0u8; 16];
    let r = match role {
        Role::HeavenRx => nix::unistd::write(held.tun.as_ref().expect("tun"), &[0x45; 20]),
        Role::HeavenTx => nix::unistd::read(held.tun.as_ref().expect("tun"), &mut buf),
        Role::PurgatoryRx => nix::unistd::write(held.udp.as_ref().expect("udp"), b"x"),
        Role::PurgatoryTx => nix::unistd::read(held.udp.as_ref().expect("udp"), &mut buf),
        _ => unreachable!("only data roles have a wrong direction"),
    };
    report(&format!("wrong direction returned {r:?}"));
}

fn files_write(rw: &Path, outside: &Path) {
    let tmp = rw.join("remembrance.tmp");
    let done = rw.join("remembrance");
    let mut f = File::create(&tmp).expect("create in fs_write dir");
    f.write_all(b"peer 1.2.3.4:4500").expect("write");
    f.sync_all().expect("fsync");
    drop(f);
    fs::rename(&tmp, &done).expect("rename");
    let back = fs::read(&done).expect("read back");
    report(&format!("remembrance {}", String::from_utf8_lossy(&back)));
    let mut again = Vec::new();
    File::open(&done)
        .and_then(|mut f| f.read_to_end(&mut again))
        .expect("read_to_end");
    report(&format!("read_to_end {}", again == back));
    fs::remove_file(&done).expect("unlink");
    report(&format!("gone {}", !done.exists()));
    report(&format!(
        "hostname {}",
        outcome(File::open("/etc/hostname"))
    ));
    report(&format!(
        "outside {}",
        outcome(File::create(outside.join("escape")))
    ));
}

// --------------------------------------------------------------- parent --

struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn run_child(role: Role, case: Case, dir: &Path) -> Result<Ran, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .env(CHILD_ENV, format!("{}:{}", role.as_str(), case.name()))
        .env(DIR_ENV, dir)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let mut out = child.stdout.take().ok_or("no stdout")?;
    let mut err = child.stderr.take().ok_or("no stderr")?;
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {CHILD_TIMEOUT:?}"));
            }
            Err(e) => return Err(format!("wait: {e}")),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(Ran {
        status,
        stdout,
        stderr,
    })
}

/// The report lines a child must print, in order (other lines may come
/// between them).
fn expected_lines(role: Role, case: Case) -> Vec<String> {
    let uid = uid_of(role);
    let mut lines = vec![
        format!("ids {uid} {uid} {uid} {uid} {uid} {uid} groups {uid}"),
        "no_new_privs true".to_owned(),
        if sandbox::no_network(role) {
            "netns new"
        } else {
            "netns same"
        }
        .to_owned(),
    ];
    if sandbox::no_network(role) {
        lines.push("ifaces lo:down".into());
    }
    lines.extend(
        [
            "hostname EACCES",
            "tcp EACCES",
            "stale closed",
            "kept open",
            "other fds []",
        ]
        .map(String::from),
    );
    let common = [
        "poll 1 true",
        "eventfd 1",
        "alloc 16777216 1000",
        "clock true",
        "random true",
        "map 1",
    ];
    match case {
        Case::Forbidden
        | Case::Abort
        | Case::WrongDirection
        | Case::Overflow
        | Case::OtherSignal => lines.push("entered".into()),
        Case::Panic => lines.extend(["entered", "unwound"].map(String::from)),
        Case::Work => {
            lines.extend(common.map(String::from));
            lines.extend(
                match role {
                    Role::HeavenRx => vec!["tun read EBADFD", "tun readv EBADFD"],
                    Role::HeavenTx => vec!["tun write EBADFD", "tun writev EBADFD"],
                    Role::PurgatoryRx => vec!["udp recvfrom ping-1", "udp recvmsg ping-2"],
                    Role::PurgatoryTx => vec!["udp sendto 4", "udp sendmsg 4"],
                    Role::Control => vec!["control request 1 true", "control reply 88 88"],
                    _ => vec!["memfd true"],
                }
                .into_iter()
                .map(String::from),
            );
            lines.push("done".into());
        }
        Case::FilesWrite => {
            lines.extend(common.map(String::from));
            lines.extend(
                [
                    "remembrance peer 1.2.3.4:4500",
                    "read_to_end true",
                    "gone true",
                    "hostname EACCES",
                    "outside EACCES",
                    "done",
                ]
                .map(String::from),
            );
        }
        Case::FilesRead => lines.extend(
            [
                "read ok",
                "read_to_end ok kept",
                "hostname EACCES",
                "entered-write",
            ]
            .map(String::from),
        ),
    }
    lines
}

fn expected_end(case: Case) -> &'static str {
    match case {
        Case::Work | Case::FilesWrite => "exit 0",
        Case::Abort | Case::Overflow => "SIGABRT",
        Case::Panic => "exit 101",
        Case::Forbidden | Case::WrongDirection | Case::FilesRead | Case::OtherSignal => "SIGSYS",
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(SIGSYS)) => "SIGSYS".into(),
        (None, Some(SIGABRT)) => "SIGABRT".into(),
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => format!("{status:?}"),
    }
}

fn check(role: Role, case: Case, ran: &Ran) -> Result<(), String> {
    let end = describe(ran.status);
    if end != expected_end(case) {
        return Err(format!("ended with {end}, wanted {}", expected_end(case)));
    }
    let got: Vec<&str> = ran.stdout.lines().collect();
    let mut at = 0;
    for want in expected_lines(role, case) {
        match got[at..].iter().position(|l| *l == want) {
            Some(i) => at += i + 1,
            None => return Err(format!("missing (in order) report line `{want}`")),
        }
    }
    if got
        .iter()
        .any(|l| l.starts_with("survived") || l.starts_with("enter failed"))
    {
        return Err("the child reported surviving or failing to enter".into());
    }
    Ok(())
}

fn cases_for(role: Role) -> Vec<Case> {
    let mut cases = vec![
        Case::Forbidden,
        Case::Work,
        Case::Abort,
        Case::Overflow,
        Case::Panic,
        Case::OtherSignal,
    ];
    if matches!(
        role,
        Role::HeavenRx | Role::HeavenTx | Role::PurgatoryRx | Role::PurgatoryTx
    ) {
        cases.push(Case::WrongDirection);
    }
    if role == Role::Chapel {
        cases.push(Case::FilesWrite);
    }
    if role == Role::Shrine {
        cases.push(Case::FilesRead);
    }
    cases
}

fn prepare_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chantry-sandbox-test-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).expect("create test dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod test dir");
    let ro = dir.join("ro");
    fs::create_dir(&ro).expect("create ro");
    fs::write(ro.join("remembrance"), b"kept").expect("write ro file");
    fs::set_permissions(ro.join("remembrance"), fs::Permissions::from_mode(0o644)).expect("chmod");
    // World-writable but outside every plan: only landlock keeps roles out.
    let open = dir.join("open");
    fs::create_dir(&open).expect("create open");
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).expect("chmod open");
    let chapel = uid_of(Role::Chapel);
    let rw = dir.join(format!("rw-{chapel}"));
    fs::create_dir(&rw).expect("create rw");
    std::os::unix::fs::chown(&rw, Some(chapel), Some(chapel)).expect("chown rw");
    dir
}

fn parent() {
    if !nix::unistd::Uid::effective().is_root() {
        println!("sandbox test: skipped, it must run as root (it drops to uids 6000+)");
        return;
    }
    let dir = prepare_dir();
    let mut failures = Vec::new();
    let mut ran_count = 0;
    for role in chantryd_roles() {
        for case in cases_for(role) {
            ran_count += 1;
            let result = run_child(role, case, &dir).and_then(|ran| {
                check(role, case, &ran).map_err(|e| {
                    format!("{e}\n--- stdout\n{}--- stderr\n{}", ran.stdout, ran.stderr)
                })
            });
            match result {
                Ok(()) => println!("ok   {role:<13} {}", case.name()),
                Err(e) => {
                    println!("FAIL {role:<13} {}", case.name());
                    failures.push(format!("{role} {}: {e}", case.name()));
                }
            }
        }
    }
    let _ = fs::remove_dir_all(&dir);
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("\n{f}");
        }
        eprintln!("\n{} of {ran_count} sandbox cases failed", failures.len());
        std::process::exit(1);
    }
    println!("{ran_count} sandbox cases passed");
}
