//! The per-role sandbox (docs/sandbox.md).
//!
//! Every role process calls [`enter`] with its [`SandboxPlan`] before it
//! reads any input. In this order it: closes every fd it does not keep,
//! sets `no_new_privs`, moves a crypto role into a new, empty network
//! namespace, drops to the role's own uid/gid (and checks it cannot come
//! back), applies landlock (no filesystem access beyond the plan's paths,
//! no TCP, no abstract UNIX sockets or signals out of the sandbox), and
//! installs the role's seccomp allow-list, whose default action kills the
//! process.
//!
//! Linux only. `unsafe` is limited to the raw `close_range`/`close` calls
//! that close inherited fds (no safe wrapper exists), each with a SAFETY
//! comment.

#![cfg(target_os = "linux")]

mod creds;
mod fds;
mod fsrules;
mod syscalls;

use std::os::fd::RawFd;
use std::path::PathBuf;

pub use fds::FdKind;
pub use fsrules::{TARGET_ABI, read_rights, write_rights};
pub use syscalls::{AllowedSyscall, ArgCheck, FileAccess, allowed_syscalls};

use crate::role::Role;

/// The uid/gid a role drops to (from `run ROLE as USER`). The group list
/// becomes exactly `[gid]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct User {
    /// The user id; never 0.
    pub uid: u32,
    /// The primary group id; never 0.
    pub gid: u32,
}

impl User {
    /// Looks `name` up in the user database (call it before the sandbox,
    /// e.g. in the guardian, and pass the numbers down).
    pub fn from_name(name: &str) -> Result<User, SandboxError> {
        match nix::unistd::User::from_name(name) {
            Ok(Some(u)) => Ok(User {
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
            }),
            Ok(None) => Err(SandboxError::UnknownUser(name.to_owned())),
            Err(e) => Err(SandboxError::UserLookup {
                name: name.to_owned(),
                source: e,
            }),
        }
    }
}

/// What one role process gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxPlan {
    /// The role being sandboxed (decides namespace and allow-list).
    pub role: Role,
    /// Fds to keep; every other fd >= 3 is closed (0, 1, 2 are always
    /// kept: stdio and the log on stderr).
    pub keep_fds: Vec<RawFd>,
    /// The uid/gid to drop to; `None` stays (tests only).
    pub user: Option<User>,
    /// Landlock read-only paths (empty for most roles). Must exist.
    pub fs_read: Vec<PathBuf>,
    /// Landlock read-write paths (empty for most roles). Must exist: give
    /// the directory a file is created or renamed in.
    pub fs_write: Vec<PathBuf>,
}

/// Why the sandbox could not be entered. The process must not go on.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Landlock and the uid drop act per thread; a second thread would
    /// stay outside.
    #[error("the sandbox must be entered while single-threaded, found {0} threads")]
    MultiThreaded(usize),
    /// Reading something under /proc failed.
    #[error("cannot read {what}: {source}")]
    Proc {
        /// What was being read.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A negative fd in `keep_fds`.
    #[error("invalid fd {0} in keep_fds")]
    InvalidKeepFd(RawFd),
    /// An fd in `keep_fds` is not open: the guardian and the role disagree.
    #[error("fd {0} is to be kept but is not open")]
    KeptFdNotOpen(RawFd),
    /// A kept fd of a kind the role must never hold.
    #[error("{role} must not hold fd {fd} ({kind})")]
    ForbiddenFd {
        /// The role.
        role: Role,
        /// The fd.
        fd: RawFd,
        /// What it is.
        kind: String,
    },
    /// `close_range` failed.
    #[error("closing inherited fds failed: {0}")]
    CloseFds(nix::errno::Errno),
    /// An fd survived closing.
    #[error("fd {0} is still open after closing every fd not kept")]
    FdStillOpen(RawFd),
    /// `prctl(PR_SET_NO_NEW_PRIVS)` failed.
    #[error("setting no_new_privs failed: {0}")]
    NoNewPrivs(nix::errno::Errno),
    /// `unshare(CLONE_NEWNET)` failed (needs CAP_SYS_ADMIN: before the drop).
    #[error("entering a new network namespace failed: {0}")]
    NetNamespace(nix::errno::Errno),
    /// The role user is root (uid or gid 0).
    #[error("a role may not run as uid/gid 0 ({0:?})")]
    RootUser(User),
    /// The user name is not in the user database.
    #[error("no such user `{0}`")]
    UnknownUser(String),
    /// Looking the user up failed.
    #[error("looking up user `{name}` failed: {source}")]
    UserLookup {
        /// The name.
        name: String,
        /// The error.
        source: nix::errno::Errno,
    },
    /// `setgroups`/`getgroups` failed.
    #[error("setting the group list failed: {0}")]
    SetGroups(nix::errno::Errno),
    /// `setresgid`/`getresgid` failed.
    #[error("setting the gid failed: {0}")]
    SetGid(nix::errno::Errno),
    /// `setresuid`/`getresuid` failed.
    #[error("setting the uid failed: {0}")]
    SetUid(nix::errno::Errno),
    /// The drop did not stick.
    #[error("privileges were not dropped: {0}")]
    PrivilegesKept(String),
    /// A landlock path could not be opened.
    #[error("landlock path {path}: {source}")]
    LandlockPath {
        /// The path.
        path: PathBuf,
        /// The error.
        source: landlock::PathFdError,
    },
    /// Building or enforcing the landlock ruleset failed.
    #[error("landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// seccomp has no filter for this architecture.
    #[error("seccomp filters are not available on {0}")]
    UnsupportedArch(&'static str),
    /// Compiling the seccomp filter failed.
    #[error("building the seccomp filter failed: {0}")]
    SeccompBuild(#[from] seccompiler::BackendError),
    /// Installing the seccomp filter failed.
    #[error("installing the seccomp filter failed: {0}")]
    SeccompInstall(#[from] seccompiler::Error),
}

/// Enters the sandbox described by `plan`; on `Ok` the process is locked
/// down for good, on `Err` it must exit.
///
/// Must be called single-threaded. Every fd that is neither stdio nor in
/// `keep_fds` is closed: objects owning one of them (`File`, `OwnedFd`,
/// sockets) must have been given up with `into_raw_fd` (or forgotten)
/// beforehand, since dropping them afterwards would close an fd number
/// that is no longer theirs (std aborts on that in debug builds).
pub fn enter(plan: &SandboxPlan) -> Result<(), SandboxError> {
    enter_inner(plan, &mut || {})
}

/// [`enter`] with `probe` run after landlock and before seccomp, where a
/// test can still look at namespaces, ids and landlock's effect with
/// syscalls the allow-list will forbid.
#[cfg(feature = "test-hooks")]
pub fn enter_with_probe(plan: &SandboxPlan, probe: &mut dyn FnMut()) -> Result<(), SandboxError> {
    enter_inner(plan, probe)
}

fn enter_inner(plan: &SandboxPlan, probe: &mut dyn FnMut()) -> Result<(), SandboxError> {
    let role = plan.role;
    let threads = creds::thread_count()?;
    if threads != 1 {
        return Err(SandboxError::MultiThreaded(threads));
    }
    if let Some(user) = plan.user
        && (user.uid == 0 || user.gid == 0)
    {
        return Err(SandboxError::RootUser(user));
    }
    // Everything that can fail without touching the process comes first.
    let kept = fds::classify_kept(role, &plan.keep_fds)?;
    let data_fds: Vec<RawFd> = kept
        .iter()
        .filter(|(_, kind)| kind.is_data())
        .map(|(fd, _)| *fd)
        .collect();
    let files = FileAccess::of(plan);
    let list = allowed_syscalls(role, files);
    let pid = nix::unistd::getpid().as_raw();
    let bpf = syscalls::compile(&list, &data_fds, pid)?;

    let closed = fds::close_others(&plan.keep_fds)?;
    tracing::debug!(%role, closed, kept = ?kept, "closed inherited fds");

    nix::sys::prctl::set_no_new_privs().map_err(SandboxError::NoNewPrivs)?;

    if no_network(role) {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(SandboxError::NetNamespace)?;
    }

    match plan.user {
        Some(user) => creds::drop_to(user)?,
        None => tracing::warn!(%role, "sandbox without a privilege drop (tests only)"),
    }

    let enforced = fsrules::restrict(plan)?;
    match enforced.ruleset {
        landlock::RulesetStatus::FullyEnforced => {}
        ref status => tracing::warn!(
            %role,
            ?status,
            landlock = ?enforced.landlock,
            "landlock is not fully enforced on this kernel"
        ),
    }

    probe();

    tracing::info!(
        %role,
        closed_fds = closed,
        kept_fds = ?plan.keep_fds,
        empty_netns = no_network(role),
        uid = plan.user.map(|u| u.uid),
        landlock = ?enforced.landlock,
        landlock_ruleset = ?enforced.ruleset,
        landlock_target_abi = %TARGET_ABI,
        fs_read = ?plan.fs_read,
        fs_write = ?plan.fs_write,
        syscalls = list.len(),
        "entering seccomp; sandbox complete"
    );
    seccompiler::apply_filter_all_threads(&bpf)?;
    Ok(())
}

/// Roles that run in an empty network namespace: the crypto roles and the
/// cathedral, which holds no socket either (purgatory-rx/tx do its I/O).
pub fn no_network(role: Role) -> bool {
    role.is_crypto() || role == Role::Cathedral
}

/// Test-only: makes a syscall outside `role`'s allow-list, so a test can
/// watch the process die of SIGSYS. Crypto roles try to open a UDP socket
/// (they have no network at all); the others try to open `/etc/passwd`.
/// Returns only if the sandbox let the call through (a failure of the
/// test), with its result.
#[cfg(feature = "test-hooks")]
pub fn test_forbidden_syscall(role: Role) -> std::io::Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    if no_network(role) {
        socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map(drop)
        .map_err(std::io::Error::from)
    } else {
        std::fs::File::open("/etc/passwd").map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(role: Role) -> SandboxPlan {
        SandboxPlan {
            role,
            keep_fds: vec![],
            user: None,
            fs_read: vec![],
            fs_write: vec![],
        }
    }

    #[test]
    fn file_access_follows_paths() {
        let mut p = plan(Role::Chapel);
        assert_eq!(FileAccess::of(&p), FileAccess::None);
        p.fs_read.push("/var/lib/chantry".into());
        assert_eq!(FileAccess::of(&p), FileAccess::ReadOnly);
        p.fs_write.push("/var/lib/chantry".into());
        assert_eq!(FileAccess::of(&p), FileAccess::ReadWrite);
    }

    #[test]
    fn root_target_refused_before_anything_happens() {
        let mut p = plan(Role::Bless);
        p.user = Some(User { uid: 0, gid: 1000 });
        // The test harness is multi-threaded, which is refused first; a
        // single-threaded caller gets RootUser. Either way nothing changed.
        let err = enter(&p).expect_err("refused");
        assert!(
            matches!(
                err,
                SandboxError::MultiThreaded(_) | SandboxError::RootUser(_)
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_user() {
        assert!(matches!(
            User::from_name("no-such-user-chantry-xyz"),
            Err(SandboxError::UnknownUser(n)) if n == "no-such-user-chantry-xyz"
        ));
        assert_eq!(
            User::from_name("root").expect("root exists"),
            User { uid: 0, gid: 0 }
        );
    }
}
