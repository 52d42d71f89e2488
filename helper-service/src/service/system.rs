//! The few things the service does differently per system, other than its
//! transport ([`super::transport`]) and registration
//! ([`super::registration`]): stop signals, stopping a guardian, private
//! files and directories, and whether tunnels run here at all.

use std::path::Path;

/// Listens for SIGTERM (Unix) from now on; the future completes when it
/// arrives. On Windows the service control manager's stop arrives
/// through [`super::run_with`] instead, so the future never completes.
pub fn terminate_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        Ok(async move {
            term.recv().await;
        })
    }
    #[cfg(not(unix))]
    {
        Ok(std::future::pending())
    }
}

/// `None` where the service can run tunnels (Linux), else the sentence a
/// connect request is refused with.
pub fn tunnels_unsupported() -> Option<String> {
    if cfg!(target_os = "linux") {
        None
    } else {
        Some(format!(
            "tunnels on {} are not built yet: the sandboxed role processes are Linux-only \
             (this build serves profiles, but cannot connect them)",
            std::env::consts::OS
        ))
    }
}

/// Asks the guardian `pid` to stop (SIGTERM).
#[cfg(unix)]
pub fn terminate(pid: u32) -> Result<(), String> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let raw = i32::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
    kill(Pid::from_raw(raw), Signal::SIGTERM)
        .map_err(|e| format!("cannot stop the guardian (pid {pid}): {e}"))
}

/// Asks the guardian `pid` to stop (never reached: no tunnels run here).
#[cfg(not(unix))]
pub fn terminate(pid: u32) -> Result<(), String> {
    Err(format!(
        "cannot stop the guardian (pid {pid}): tunnels on this platform are not built yet"
    ))
}

/// Makes `dir` private to the service: 0700 on Unix; on Windows a DACL of
/// SYSTEM and Administrators only that everything created inside inherits
/// (ProgramData would otherwise let every user read the keys).
pub fn restrict_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(windows)]
    {
        super::transport::protect_dir(dir)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Makes the existing file `path` private (0600 on Unix; on Windows it
/// inherits its directory's DACL, see [`restrict_dir`]).
pub fn restrict_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Options that create a private file (0600 from creation on Unix; on
/// Windows the directory's inherited DACL).
pub fn private_file() -> std::fs::OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut o = std::fs::OpenOptions::new();
        o.mode(0o600);
        o
    }
    #[cfg(not(unix))]
    {
        std::fs::OpenOptions::new()
    }
}

/// Flushes `dir`'s entries (a rename into it) to disk. Windows cannot open
/// a directory as a file and commits renames with the file system journal.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    if cfg!(unix) {
        std::fs::File::open(dir)?.sync_all()
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnels_run_on_linux_only() {
        if cfg!(target_os = "linux") {
            assert_eq!(tunnels_unsupported(), None);
        } else {
            let why = tunnels_unsupported().unwrap();
            assert!(why.contains("not built yet"), "{why}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn private_files_and_directories_are_owner_only() {
        use std::io::Write as _;
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("chantry-system-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        restrict_dir(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        let f = dir.join("f");
        private_file()
            .write(true)
            .create_new(true)
            .open(&f)
            .unwrap()
            .write_all(b"x")
            .unwrap();
        assert_eq!(mode(&f), 0o600);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        restrict_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        sync_dir(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
