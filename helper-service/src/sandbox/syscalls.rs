//! The seccomp allow-lists, one per role, and their compilation to BPF.
//!
//! Every entry carries the reason it is there; docs/sandbox.md repeats
//! them (a unit test checks that it names every syscall listed here).
//! Anything not listed kills the whole process (`SECCOMP_RET_KILL_PROCESS`,
//! seen by the guardian as SIGSYS), as does a syscall made with another
//! architecture's calling convention.

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::{SandboxError, SandboxPlan};
use crate::role::Role;

/// How much of the filesystem a plan lets its role touch (landlock decides
/// where; this decides which syscalls exist at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileAccess {
    /// No paths: no syscall that names a path is allowed.
    None,
    /// Only `fs_read` paths: read-only opens and stat.
    ReadOnly,
    /// `fs_write` paths: create, write, rename, unlink files.
    ReadWrite,
}

impl FileAccess {
    /// What `plan` asks for.
    pub fn of(plan: &SandboxPlan) -> FileAccess {
        if !plan.fs_write.is_empty() {
            FileAccess::ReadWrite
        } else if !plan.fs_read.is_empty() {
            FileAccess::ReadOnly
        } else {
            FileAccess::None
        }
    }
}

/// The condition on an allowed syscall's arguments. Every argument
/// compared is a C `int` (or its low word carries the bits checked), so
/// the comparison is on the low 32 bits, exactly what the kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgCheck {
    /// Any arguments.
    Any,
    /// Argument 2 (`prot`) without `PROT_EXEC`: no new executable memory.
    NoExec,
    /// Argument 0 (the fd) is none of the role's data fds (the TUN device
    /// and sockets it kept): used for the direction a role must not move
    /// data in, e.g. heaven-rx may not `write` to the TUN.
    NotDataFd,
    /// `openat` flags (argument 2) with `O_RDONLY` access and neither
    /// `O_CREAT` nor `O_TRUNC`.
    ReadOnlyOpen,
    /// `tgkill(own pid, any thread, SIGABRT)`: `abort()` only.
    SelfAbort,
    /// `fcntl(any fd, F_GETFD)`: reads the close-on-exec flag, nothing else.
    GetFdFlags,
}

/// One allowed syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllowedSyscall {
    /// Its name (as in `man 2`).
    pub name: &'static str,
    /// Its number on this architecture.
    pub nr: i64,
    /// The argument condition.
    pub check: ArgCheck,
    /// Why the role needs it.
    pub reason: &'static str,
}

const fn allow(
    name: &'static str,
    nr: i64,
    check: ArgCheck,
    reason: &'static str,
) -> AllowedSyscall {
    AllowedSyscall {
        name,
        nr,
        check,
        reason,
    }
}

use ArgCheck::{Any, GetFdFlags, NoExec, NotDataFd, ReadOnlyOpen, SelfAbort};
use libc as c;

/// Every role: its poll loop, the allocator, the Rust runtime and exit.
const COMMON: &[AllowedSyscall] = &[
    allow(
        "ppoll",
        c::SYS_ppoll,
        Any,
        "wait on the eventfd (and the TUN/UDP fd) with a timeout",
    ),
    allow(
        "close",
        c::SYS_close,
        Any,
        "drop handles (also the std runtime at exit)",
    ),
    allow(
        "fcntl",
        c::SYS_fcntl,
        GetFdFlags,
        "std's OwnedFd drop checks the fd is open (debug builds)",
    ),
    allow(
        "clock_gettime",
        c::SYS_clock_gettime,
        Any,
        "timers and log timestamps when the vDSO falls back to the kernel",
    ),
    allow(
        "clock_nanosleep",
        c::SYS_clock_nanosleep,
        Any,
        "std::thread::sleep (backoff)",
    ),
    allow(
        "futex",
        c::SYS_futex,
        Any,
        "std's Mutex/Once/OnceLock (stderr lock, tracing's once-cells)",
    ),
    allow(
        "sched_yield",
        c::SYS_sched_yield,
        Any,
        "std::thread::yield_now between ring retries",
    ),
    allow("brk", c::SYS_brk, Any, "malloc's main heap"),
    allow(
        "mmap",
        c::SYS_mmap,
        NoExec,
        "malloc of large blocks; never executable",
    ),
    allow(
        "munmap",
        c::SYS_munmap,
        Any,
        "free of large blocks; std's signal stack at exit",
    ),
    allow("mremap", c::SYS_mremap, Any, "realloc of large blocks"),
    allow(
        "madvise",
        c::SYS_madvise,
        Any,
        "malloc returning freed pages",
    ),
    allow(
        "mprotect",
        c::SYS_mprotect,
        NoExec,
        "malloc growing a heap; never executable",
    ),
    allow(
        "getrandom",
        c::SYS_getrandom,
        Any,
        "key material, nonces, shroud padding; std's HashMap seeds",
    ),
    allow(
        "rt_sigreturn",
        c::SYS_rt_sigreturn,
        Any,
        "return from a signal handler (SIGQUIT from the guardian)",
    ),
    allow(
        "rt_sigprocmask",
        c::SYS_rt_sigprocmask,
        Any,
        "glibc's abort() and raise() block signals",
    ),
    allow(
        "sigaltstack",
        c::SYS_sigaltstack,
        Any,
        "std removes its stack-overflow signal stack at exit",
    ),
    allow(
        "getpid",
        c::SYS_getpid,
        Any,
        "glibc's raise() (abort) names the process",
    ),
    allow(
        "gettid",
        c::SYS_gettid,
        Any,
        "glibc's raise() and log thread ids",
    ),
    allow(
        "tgkill",
        c::SYS_tgkill,
        SelfAbort,
        "abort() raises SIGABRT on itself, so a panic-abort is told apart from a sandbox kill",
    ),
    allow(
        "restart_syscall",
        c::SYS_restart_syscall,
        Any,
        "the kernel restarts an interrupted sleep",
    ),
    allow("exit", c::SYS_exit, Any, "thread exit"),
    allow("exit_group", c::SYS_exit_group, Any, "process exit"),
];

/// `poll` exists only on older architectures (aarch64 has only `ppoll`).
#[cfg(target_arch = "x86_64")]
const COMMON_LEGACY: &[AllowedSyscall] = &[allow(
    "poll",
    c::SYS_poll,
    Any,
    "glibc's poll() (nix::poll) on x86_64",
)];
#[cfg(not(target_arch = "x86_64"))]
const COMMON_LEGACY: &[AllowedSyscall] = &[];

const HEAVEN_RX: &[AllowedSyscall] = &[
    allow(
        "read",
        c::SYS_read,
        Any,
        "clear packets from the TUN; drain its eventfd",
    ),
    allow(
        "readv",
        c::SYS_readv,
        Any,
        "clear packets from the TUN (vectored)",
    ),
    allow(
        "write",
        c::SYS_write,
        NotDataFd,
        "wake bless's eventfd; logs on fd 2; never the TUN",
    ),
];

const HEAVEN_TX: &[AllowedSyscall] = &[
    allow(
        "read",
        c::SYS_read,
        NotDataFd,
        "drain its eventfd; never the TUN",
    ),
    allow(
        "write",
        c::SYS_write,
        Any,
        "decrypted packets to the TUN; eventfd wakes; logs",
    ),
    allow(
        "writev",
        c::SYS_writev,
        Any,
        "decrypted packets to the TUN (vectored)",
    ),
];

const PURGATORY_RX: &[AllowedSyscall] = &[
    allow(
        "read",
        c::SYS_read,
        NotDataFd,
        "drain its eventfd; never the socket",
    ),
    allow(
        "write",
        c::SYS_write,
        NotDataFd,
        "wake consumers' eventfds; logs; never the socket",
    ),
    allow(
        "recvfrom",
        c::SYS_recvfrom,
        Any,
        "datagrams from the UDP socket",
    ),
    allow(
        "recvmsg",
        c::SYS_recvmsg,
        Any,
        "datagrams from the UDP socket",
    ),
    allow(
        "recvmmsg",
        c::SYS_recvmmsg,
        Any,
        "datagram batches from the UDP socket",
    ),
];

const PURGATORY_TX: &[AllowedSyscall] = &[
    allow(
        "read",
        c::SYS_read,
        NotDataFd,
        "drain its eventfd; never the socket",
    ),
    allow(
        "write",
        c::SYS_write,
        NotDataFd,
        "wake producers' eventfds; logs; never the socket",
    ),
    allow(
        "sendto",
        c::SYS_sendto,
        Any,
        "datagrams to the peer/cathedral",
    ),
    allow(
        "sendmsg",
        c::SYS_sendmsg,
        Any,
        "datagrams to the peer/cathedral",
    ),
    allow("sendmmsg", c::SYS_sendmmsg, Any, "datagram batches"),
];

/// bless, confess, chapel, pilgrim, shrine: they hold no data fd at all
/// (checked), so `NotDataFd` changes nothing for them; it is kept for
/// uniformity.
const CRYPTO: &[AllowedSyscall] = &[
    allow("read", c::SYS_read, NotDataFd, "drain its eventfd"),
    allow(
        "write",
        c::SYS_write,
        NotDataFd,
        "wake other roles' eventfds; logs",
    ),
];

const CONTROL: &[AllowedSyscall] = &[
    allow(
        "read",
        c::SYS_read,
        NotDataFd,
        "drain its eventfd; requests only via recvfrom",
    ),
    allow(
        "write",
        c::SYS_write,
        NotDataFd,
        "logs; replies only via sendto",
    ),
    allow(
        "recvfrom",
        c::SYS_recvfrom,
        Any,
        "status requests on the control socket",
    ),
    allow(
        "sendto",
        c::SYS_sendto,
        Any,
        "status replies to the requester's address",
    ),
];

const FILES_READ: &[AllowedSyscall] = &[allow(
    "openat",
    c::SYS_openat,
    ReadOnlyOpen,
    "open a file under fs_read (landlock confines where)",
)];

/// What std does around reading a file, whether opened read-only or not.
const FILES_META: &[AllowedSyscall] = &[
    allow(
        "statx",
        c::SYS_statx,
        Any,
        "std's File::metadata (size hint of fs::read), Path::exists",
    ),
    allow(
        "newfstatat",
        c::SYS_newfstatat,
        Any,
        "std's metadata fallback where statx is missing (glibc's fstat)",
    ),
    allow(
        "lseek",
        c::SYS_lseek,
        Any,
        "File::read_to_end asks the stream position",
    ),
];

const FILES_WRITE: &[AllowedSyscall] = &[
    allow(
        "openat",
        c::SYS_openat,
        Any,
        "create/open a file under fs_write (landlock confines where)",
    ),
    allow(
        "fsync",
        c::SYS_fsync,
        Any,
        "make the new file durable before renaming it over the old",
    ),
];

/// Renaming and unlinking: x86_64 glibc uses the old syscalls, newer
/// architectures only have the `*at` forms.
#[cfg(target_arch = "x86_64")]
const FILES_WRITE_ARCH: &[AllowedSyscall] = &[
    allow(
        "rename",
        c::SYS_rename,
        Any,
        "replace a file atomically (glibc's rename() on x86_64)",
    ),
    allow(
        "unlink",
        c::SYS_unlink,
        Any,
        "remove a file (glibc's unlink() on x86_64)",
    ),
];
#[cfg(not(target_arch = "x86_64"))]
const FILES_WRITE_ARCH: &[AllowedSyscall] = &[
    allow(
        "renameat",
        c::SYS_renameat,
        Any,
        "replace a file atomically (glibc's rename())",
    ),
    allow(
        "renameat2",
        c::SYS_renameat2,
        Any,
        "replace a file atomically (where renameat is missing)",
    ),
    allow(
        "unlinkat",
        c::SYS_unlinkat,
        Any,
        "remove a file (glibc's unlink())",
    ),
];

fn role_table(role: Role) -> &'static [AllowedSyscall] {
    match role {
        Role::HeavenRx => HEAVEN_RX,
        Role::HeavenTx => HEAVEN_TX,
        Role::PurgatoryRx => PURGATORY_RX,
        Role::PurgatoryTx => PURGATORY_TX,
        Role::Bless | Role::Confess | Role::Chapel | Role::Pilgrim | Role::Shrine => CRYPTO,
        // The cathedral moves datagrams between rings like a crypto role.
        Role::Cathedral => CRYPTO,
        Role::Control => CONTROL,
        // Not run by chantryd yet: the common list only.
        Role::Liturgy | Role::Bishop => &[],
    }
}

/// The allow-list of `role` given its file access, sorted by number.
/// Each syscall appears once.
pub fn allowed_syscalls(role: Role, files: FileAccess) -> Vec<AllowedSyscall> {
    let file_tables: &[&[AllowedSyscall]] = match files {
        FileAccess::None => &[],
        FileAccess::ReadOnly => &[FILES_READ, FILES_META],
        FileAccess::ReadWrite => &[FILES_WRITE, FILES_META, FILES_WRITE_ARCH],
    };
    let mut by_nr = BTreeMap::new();
    for table in [COMMON, COMMON_LEGACY, role_table(role)]
        .into_iter()
        .chain(file_tables.iter().copied())
    {
        for entry in table {
            by_nr.entry(entry.nr).or_insert(*entry);
        }
    }
    by_nr.into_values().collect()
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, SandboxError> {
    Ok(SeccompCondition::new(
        arg,
        SeccompCmpArgLen::Dword,
        op,
        value,
    )?)
}

fn fd_value(fd: RawFd) -> u64 {
    u64::from(fd.unsigned_abs())
}

/// The seccomp rules for one entry (empty = any arguments).
fn rules_for(
    check: ArgCheck,
    data_fds: &[RawFd],
    pid: i32,
) -> Result<Vec<SeccompRule>, SandboxError> {
    let conditions = match check {
        Any => return Ok(Vec::new()),
        NotDataFd if data_fds.is_empty() => return Ok(Vec::new()),
        NotDataFd => data_fds
            .iter()
            .map(|&fd| cond(0, SeccompCmpOp::Ne, fd_value(fd)))
            .collect::<Result<Vec<_>, _>>()?,
        NoExec => vec![cond(2, SeccompCmpOp::MaskedEq(c::PROT_EXEC as u64), 0)?],
        ReadOnlyOpen => vec![cond(
            2,
            SeccompCmpOp::MaskedEq((c::O_ACCMODE | c::O_CREAT | c::O_TRUNC) as u64),
            c::O_RDONLY as u64,
        )?],
        GetFdFlags => vec![cond(1, SeccompCmpOp::Eq, c::F_GETFD as u64)?],
        SelfAbort => vec![
            cond(0, SeccompCmpOp::Eq, u64::from(pid.unsigned_abs()))?,
            cond(2, SeccompCmpOp::Eq, c::SIGABRT as u64)?,
        ],
    };
    Ok(vec![SeccompRule::new(conditions)?])
}

/// The architecture this binary was built for, as seccomp names it.
pub fn target_arch() -> Result<TargetArch, SandboxError> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| SandboxError::UnsupportedArch(std::env::consts::ARCH))
}

/// Compiles `list` to a BPF program: architecture check (kill on
/// mismatch), then the allow-list, default action kill the process.
pub fn compile(
    list: &[AllowedSyscall],
    data_fds: &[RawFd],
    pid: i32,
) -> Result<BpfProgram, SandboxError> {
    let mut rules = BTreeMap::new();
    for entry in list {
        rules.insert(entry.nr, rules_for(entry.check, data_fds, pid)?);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        target_arch()?,
    )?;
    Ok(filter.try_into()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_FILES: [FileAccess; 3] = [
        FileAccess::None,
        FileAccess::ReadOnly,
        FileAccess::ReadWrite,
    ];

    fn names(role: Role, files: FileAccess) -> Vec<&'static str> {
        allowed_syscalls(role, files)
            .iter()
            .map(|a| a.name)
            .collect()
    }

    #[test]
    fn never_allowed_anywhere() {
        let never = [
            c::SYS_socket,
            c::SYS_socketpair,
            c::SYS_connect,
            c::SYS_bind,
            c::SYS_listen,
            c::SYS_accept4,
            c::SYS_execve,
            c::SYS_execveat,
            c::SYS_clone,
            c::SYS_clone3,
            c::SYS_ptrace,
            c::SYS_mount,
            c::SYS_unshare,
            c::SYS_setns,
            c::SYS_setresuid,
            c::SYS_ioctl,
            c::SYS_kill,
            c::SYS_process_vm_writev,
            c::SYS_memfd_create,
            c::SYS_eventfd2,
            c::SYS_seccomp,
            c::SYS_prctl,
            c::SYS_bpf,
            c::SYS_io_uring_setup,
        ];
        for role in Role::ALL {
            for files in ALL_FILES {
                let list = allowed_syscalls(role, files);
                for nr in never {
                    assert!(
                        list.iter().all(|a| a.nr != nr),
                        "{role} ({files:?}) allows syscall {nr}"
                    );
                }
            }
        }
    }

    #[test]
    fn each_role_gets_its_own_io_only() {
        let has = |role, name| names(role, FileAccess::None).contains(&name);
        assert!(has(Role::PurgatoryRx, "recvmmsg") && !has(Role::PurgatoryRx, "sendto"));
        assert!(has(Role::PurgatoryTx, "sendmmsg") && !has(Role::PurgatoryTx, "recvfrom"));
        assert!(has(Role::HeavenRx, "readv") && !has(Role::HeavenRx, "writev"));
        assert!(has(Role::HeavenTx, "writev") && !has(Role::HeavenTx, "readv"));
        assert!(has(Role::Control, "recvfrom") && has(Role::Control, "sendto"));
        for role in [
            Role::Bless,
            Role::Confess,
            Role::Chapel,
            Role::Pilgrim,
            Role::Shrine,
            Role::Cathedral,
        ] {
            for io in [
                "recvfrom", "sendto", "recvmsg", "sendmsg", "readv", "writev", "openat",
            ] {
                assert!(!has(role, io), "{role} has {io}");
            }
        }
        let check = |role, name| {
            allowed_syscalls(role, FileAccess::None)
                .into_iter()
                .find(|a| a.name == name)
                .map(|a| a.check)
        };
        assert_eq!(check(Role::HeavenRx, "write"), Some(NotDataFd));
        assert_eq!(check(Role::HeavenRx, "read"), Some(Any));
        assert_eq!(check(Role::HeavenTx, "read"), Some(NotDataFd));
        assert_eq!(check(Role::HeavenTx, "write"), Some(Any));
        assert_eq!(check(Role::Bless, "mmap"), Some(NoExec));
        assert_eq!(check(Role::Bless, "tgkill"), Some(SelfAbort));
    }

    #[test]
    fn files_only_when_the_plan_has_paths() {
        for role in Role::ALL {
            assert!(!names(role, FileAccess::None).contains(&"openat"));
            let ro = allowed_syscalls(role, FileAccess::ReadOnly);
            let open = ro.iter().find(|a| a.name == "openat").map(|a| a.check);
            assert_eq!(open, Some(ReadOnlyOpen));
            assert!(
                !ro.iter()
                    .any(|a| a.name.starts_with("rename") || a.name.starts_with("unlink"))
            );
            let rw = names(role, FileAccess::ReadWrite);
            assert!(rw.contains(&"openat") && rw.contains(&"fsync"));
            assert!(
                rw.iter().any(|n| n.starts_with("rename"))
                    && rw.iter().any(|n| n.starts_with("unlink"))
            );
        }
    }

    #[test]
    fn one_entry_per_number_sorted() {
        for role in Role::ALL {
            for files in ALL_FILES {
                let list = allowed_syscalls(role, files);
                assert!(list.windows(2).all(|w| w[0].nr < w[1].nr), "{role}");
            }
        }
    }

    #[test]
    fn every_list_compiles() {
        for role in Role::ALL {
            for files in ALL_FILES {
                let list = allowed_syscalls(role, files);
                let prog = compile(&list, &[3, 9], 4242).expect("compiles");
                // Arch check (3) + load nr (1) + at least 3 per syscall + default.
                assert!(prog.len() > 3 * list.len() + 4, "{role}");
            }
        }
        assert_eq!(rules_for(NotDataFd, &[], 1).expect("rules"), Vec::new());
        assert_eq!(rules_for(NotDataFd, &[5, 6], 1).expect("rules").len(), 1);
    }

    #[test]
    fn docs_name_every_syscall() {
        let doc = include_str!("../../../docs/sandbox.md");
        for role in Role::ALL {
            for files in ALL_FILES {
                for a in allowed_syscalls(role, files) {
                    assert!(
                        doc.contains(&format!("`{}`", a.name)),
                        "docs/sandbox.md lacks `{}`",
                        a.name
                    );
                }
            }
        }
        for a in FILES_WRITE_ARCH.iter().chain(COMMON_LEGACY) {
            assert!(
                doc.contains(&format!("`{}`", a.name)),
                "docs/sandbox.md lacks `{}`",
                a.name
            );
        }
    }
}
