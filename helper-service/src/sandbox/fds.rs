//! File descriptors: what each kept fd is, closing every other one, and
//! checking that nothing else is left open.

use std::collections::BTreeSet;
use std::os::fd::RawFd;
use std::path::Path;

use super::SandboxError;
use crate::role::Role;

/// What an inherited fd refers to, read from its `/proc/self/fd` link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdKind {
    /// The TUN clone device (`/dev/net/tun`).
    Tun,
    /// A socket of any family (UDP, UNIX, ...).
    Socket,
    /// An eventfd (wakeups).
    EventFd,
    /// A memfd (ring memory).
    Memfd,
    /// Anything else (pipes, files, terminals); the link text.
    Other(String),
}

impl FdKind {
    /// Classifies the text of a `/proc/self/fd/N` link.
    pub fn from_link(link: &str) -> FdKind {
        if link == "/dev/net/tun" {
            FdKind::Tun
        } else if link.starts_with("socket:[") {
            FdKind::Socket
        } else if link == "anon_inode:[eventfd]" {
            FdKind::EventFd
        } else if link.starts_with("/memfd:") {
            FdKind::Memfd
        } else {
            FdKind::Other(link.to_owned())
        }
    }

    /// True for the fds a role moves tunnel data through (the TUN device
    /// and sockets); the seccomp filter decides per role in which
    /// direction each may be used.
    pub fn is_data(&self) -> bool {
        matches!(self, FdKind::Tun | FdKind::Socket)
    }

    /// A short name for messages.
    pub fn name(&self) -> &str {
        match self {
            FdKind::Tun => "TUN device",
            FdKind::Socket => "socket",
            FdKind::EventFd => "eventfd",
            FdKind::Memfd => "memfd",
            FdKind::Other(link) => link,
        }
    }

    /// Whether `role` may hold an fd of this kind at all: only heaven
    /// roles touch the TUN, only purgatory roles and control hold sockets
    /// (a socket in a crypto role would reach the network its empty
    /// namespace is meant to deny).
    pub fn allowed_for(&self, role: Role) -> bool {
        match self {
            FdKind::Tun => matches!(role, Role::HeavenRx | Role::HeavenTx),
            FdKind::Socket => {
                matches!(role, Role::PurgatoryRx | Role::PurgatoryTx | Role::Control)
            }
            FdKind::EventFd | FdKind::Memfd | FdKind::Other(_) => true,
        }
    }
}

/// The standard streams, always kept (stdin, stdout, stderr for logs).
const STDIO: [RawFd; 3] = [0, 1, 2];

/// The set of fds that survive [`close_others`]: stdio plus `keep`.
pub fn kept_set(keep: &[RawFd]) -> Result<BTreeSet<RawFd>, SandboxError> {
    let mut set: BTreeSet<RawFd> = STDIO.into_iter().collect();
    for &fd in keep {
        if fd < 0 {
            return Err(SandboxError::InvalidKeepFd(fd));
        }
        set.insert(fd);
    }
    Ok(set)
}

/// The fds open in this process right now, without the one used to list
/// them.
pub fn open_fds() -> Result<BTreeSet<RawFd>, SandboxError> {
    let proc_err = |source| SandboxError::Proc {
        what: "/proc/self/fd",
        source,
    };
    // The directory fd that read_dir holds while listing shows up too; its
    // link names this very directory, which no inherited fd can.
    let own_dir = format!("/proc/{}/fd", std::process::id());
    let mut fds = BTreeSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").map_err(proc_err)? {
        let entry = entry.map_err(proc_err)?;
        let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        match std::fs::read_link(entry.path()) {
            Ok(link) if link == Path::new(&own_dir) => {}
            // Gone between listing and reading the link: it was the listing's own.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            _ => {
                fds.insert(fd);
            }
        }
    }
    Ok(fds)
}

/// What each kept fd above stdio is, checked against what `role` may hold.
pub fn classify_kept(role: Role, keep: &[RawFd]) -> Result<Vec<(RawFd, FdKind)>, SandboxError> {
    let mut out = Vec::new();
    for &fd in keep {
        if fd < 0 {
            return Err(SandboxError::InvalidKeepFd(fd));
        }
        if STDIO.contains(&fd) {
            continue;
        }
        let path = format!("/proc/self/fd/{fd}");
        let link = match std::fs::read_link(Path::new(&path)) {
            Ok(link) => link,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SandboxError::KeptFdNotOpen(fd));
            }
            Err(source) => {
                return Err(SandboxError::Proc {
                    what: "a /proc/self/fd link",
                    source,
                });
            }
        };
        let kind = FdKind::from_link(&link.to_string_lossy());
        if !kind.allowed_for(role) {
            return Err(SandboxError::ForbiddenFd {
                role,
                fd,
                kind: kind.name().to_owned(),
            });
        }
        out.push((fd, kind));
    }
    Ok(out)
}

/// The ranges `[first, last]` between kept fds, up to the largest fd number.
fn gaps(kept: &BTreeSet<RawFd>) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut next: u32 = 0;
    for &fd in kept {
        let fd = fd.unsigned_abs();
        if fd > next {
            out.push((next, fd - 1));
        }
        next = fd.saturating_add(1);
    }
    out.push((next, u32::MAX));
    out
}

/// Closes every fd that is neither stdio nor in `keep`, then checks with
/// `/proc/self/fd` that exactly the kept ones remain.
///
/// Objects that own a closed fd (`File`, `OwnedFd`, ...) must have been
/// given up with `into_raw_fd`/`forget` beforehand: dropping them later
/// would close a number that may have been reused.
pub fn close_others(keep: &[RawFd]) -> Result<usize, SandboxError> {
    let kept = kept_set(keep)?;
    let before = open_fds()?;
    for fd in &kept {
        if !STDIO.contains(fd) && !before.contains(fd) {
            return Err(SandboxError::KeptFdNotOpen(*fd));
        }
    }
    let mut fallback = false;
    for (first, last) in gaps(&kept) {
        match close_range(first, last) {
            Ok(()) => {}
            Err(nix::errno::Errno::ENOSYS) => {
                fallback = true;
                break;
            }
            Err(e) => return Err(SandboxError::CloseFds(e)),
        }
    }
    if fallback {
        // Kernels before 5.9: close what /proc/self/fd lists.
        for fd in before.iter().filter(|fd| !kept.contains(fd)) {
            close_one(*fd);
        }
    }
    let after = open_fds()?;
    if let Some(fd) = after.iter().find(|fd| !kept.contains(fd)) {
        return Err(SandboxError::FdStillOpen(*fd));
    }
    Ok(before.difference(&kept).count())
}

/// `close_range(first, last, 0)`: closes every fd in the range.
#[allow(unsafe_code)]
fn close_range(first: u32, last: u32) -> Result<(), nix::errno::Errno> {
    // SAFETY: close_range takes two integers and a flag word and touches no
    // memory of ours, so it cannot cause undefined behaviour by itself. The
    // fds it closes are, by `close_others`' contract, not owned by any live
    // Rust object (or their owners are never used or dropped again), so no
    // I/O-safety invariant of another object is broken.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            libc::c_uint::from(first),
            libc::c_uint::from(last),
            0 as libc::c_uint,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(nix::errno::Errno::last())
    }
}

/// `close(fd)`, ignoring the result (the fd is checked afterwards).
#[allow(unsafe_code)]
fn close_one(fd: RawFd) {
    // SAFETY: close on an integer touches no memory of ours. The fd was
    // listed in /proc/self/fd, is not kept, and by `close_others`' contract
    // no live Rust object will use or close it again.
    let _ = unsafe { libc::close(fd) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_kinds() {
        assert_eq!(FdKind::from_link("/dev/net/tun"), FdKind::Tun);
        assert_eq!(FdKind::from_link("socket:[12345]"), FdKind::Socket);
        assert_eq!(FdKind::from_link("anon_inode:[eventfd]"), FdKind::EventFd);
        assert_eq!(FdKind::from_link("/memfd:ring (deleted)"), FdKind::Memfd);
        assert_eq!(
            FdKind::from_link("pipe:[77]"),
            FdKind::Other("pipe:[77]".into())
        );
        assert!(FdKind::Tun.is_data() && FdKind::Socket.is_data());
        assert!(!FdKind::EventFd.is_data() && !FdKind::Memfd.is_data());
    }

    #[test]
    fn who_may_hold_what() {
        for role in Role::ALL {
            assert_eq!(
                FdKind::Tun.allowed_for(role),
                matches!(role, Role::HeavenRx | Role::HeavenTx),
                "{role}"
            );
            if role.is_crypto() {
                assert!(!FdKind::Socket.allowed_for(role), "{role}");
            }
            assert!(FdKind::EventFd.allowed_for(role));
        }
        assert!(FdKind::Socket.allowed_for(Role::Control));
        assert!(!FdKind::Socket.allowed_for(Role::HeavenRx));
    }

    #[test]
    fn gaps_between_kept() {
        let kept = kept_set(&[3, 7, 8]).expect("valid");
        assert_eq!(gaps(&kept), vec![(4, 6), (9, u32::MAX)]);
        let kept = kept_set(&[]).expect("valid");
        assert_eq!(gaps(&kept), vec![(3, u32::MAX)]);
        assert!(matches!(
            kept_set(&[-1]),
            Err(SandboxError::InvalidKeepFd(-1))
        ));
    }
}
