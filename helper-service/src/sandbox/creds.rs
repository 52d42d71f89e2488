//! Who the role runs as: the single-thread check, the drop to the role's
//! own uid/gid, and the checks that the drop cannot be undone.

use nix::unistd::{Gid, Uid};

use super::{SandboxError, User};

/// The value of one `Name:` line of `/proc/self/status`.
fn status_field(status: &str, name: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

fn read_status() -> Result<String, SandboxError> {
    std::fs::read_to_string("/proc/self/status").map_err(|source| SandboxError::Proc {
        what: "/proc/self/status",
        source,
    })
}

/// How many threads this process has. Landlock and the privilege drop
/// (done with raw syscalls by nix) act on the calling thread only, so
/// `enter` refuses to run with more than one.
pub fn thread_count() -> Result<usize, SandboxError> {
    let status = read_status()?;
    status_field(&status, "Threads")
        .and_then(|v| v.parse().ok())
        .ok_or(SandboxError::Proc {
            what: "Threads in /proc/self/status",
            source: std::io::Error::from(std::io::ErrorKind::InvalidData),
        })
}

/// Drops to `user`: supplementary groups become exactly its gid, then
/// real/effective/saved gid, then real/effective/saved uid. Then checks
/// that it stuck: all three ids of both kinds are the user's, the group
/// list is `[gid]`, no capability is left, and going back to root fails.
pub fn drop_to(user: User) -> Result<(), SandboxError> {
    if user.uid == 0 || user.gid == 0 {
        return Err(SandboxError::RootUser(user));
    }
    let uid = Uid::from_raw(user.uid);
    let gid = Gid::from_raw(user.gid);
    nix::unistd::setgroups(&[gid]).map_err(SandboxError::SetGroups)?;
    nix::unistd::setresgid(gid, gid, gid).map_err(SandboxError::SetGid)?;
    nix::unistd::setresuid(uid, uid, uid).map_err(SandboxError::SetUid)?;
    verify(user)
}

fn verify(user: User) -> Result<(), SandboxError> {
    let not_dropped = |what: String| Err(SandboxError::PrivilegesKept(what));
    let r = nix::unistd::getresuid().map_err(SandboxError::SetUid)?;
    let ids = [r.real, r.effective, r.saved].map(Uid::as_raw);
    if ids.iter().any(|&id| id != user.uid || id == 0) {
        return not_dropped(format!("uids are {ids:?}, wanted {}", user.uid));
    }
    let g = nix::unistd::getresgid().map_err(SandboxError::SetGid)?;
    let ids = [g.real, g.effective, g.saved].map(Gid::as_raw);
    if ids.iter().any(|&id| id != user.gid || id == 0) {
        return not_dropped(format!("gids are {ids:?}, wanted {}", user.gid));
    }
    let groups: Vec<u32> = nix::unistd::getgroups()
        .map_err(SandboxError::SetGroups)?
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    if groups != [user.gid] {
        return not_dropped(format!("groups are {groups:?}, wanted [{}]", user.gid));
    }
    let status = read_status()?;
    for cap in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        let value = status_field(&status, cap).unwrap_or_default();
        if !value.trim_start_matches('0').is_empty() {
            return not_dropped(format!("{cap} is {value}"));
        }
    }
    let root = Uid::from_raw(0);
    if nix::unistd::setresuid(root, root, root).is_ok() {
        return not_dropped("setresuid(0, 0, 0) succeeded after the drop".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let s = "Name:\tx\nThreads:\t3\nCapEff:\t0000000000000000\n";
        assert_eq!(status_field(s, "Threads").as_deref(), Some("3"));
        assert_eq!(
            status_field(s, "CapEff").as_deref(),
            Some("0000000000000000")
        );
        assert_eq!(status_field(s, "Cap"), None);
    }

    #[test]
    fn root_is_not_a_role_user() {
        for user in [User { uid: 0, gid: 5 }, User { uid: 5, gid: 0 }] {
            assert!(matches!(drop_to(user), Err(SandboxError::RootUser(u)) if u == user));
        }
    }
}
