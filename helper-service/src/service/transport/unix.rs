//! The Unix control socket (Linux and macOS): 0660, group `chantry`, and
//! the peer credentials the kernel recorded when the caller connected.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _, chown};
use std::path::Path;

use tokio::net::{UnixListener, UnixStream};

use super::Caller;
use crate::service::auth::Groups;

/// A connection's byte stream.
pub type Stream = UnixStream;

/// The blocking client's stream.
pub type ClientStream = std::os::unix::net::UnixStream;

/// The bound control socket.
#[derive(Debug)]
pub struct Listener {
    inner: UnixListener,
}

/// Binds the socket at `path` (its directory is created 0755 if missing,
/// a stale socket replaced), mode 0660, owned by the users' group if it
/// exists.
pub fn bind(path: &Path, groups: &Groups) -> std::io::Result<Listener> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let inner = UnixListener::bind(path)?;
    if groups.member_gid.is_some() {
        chown(path, None, groups.member_gid)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(Listener { inner })
}

impl Listener {
    /// The next connection.
    pub async fn accept(&mut self) -> std::io::Result<Accepted> {
        let (stream, _) = self.inner.accept().await?;
        Ok(Accepted { stream })
    }
}

/// A connection whose caller is not identified yet.
#[derive(Debug)]
pub struct Accepted {
    stream: UnixStream,
}

impl Accepted {
    /// The caller: uid, gid and pid from the kernel (SO_PEERCRED,
    /// LOCAL_PEERCRED), its groups from the group database (blocking).
    pub fn identify(&self, groups: &Groups) -> std::io::Result<Caller> {
        let cred = self.stream.peer_cred()?;
        Ok(Caller {
            uid: cred.uid(),
            pid: cred.pid().and_then(|p| u32::try_from(p).ok()),
            privilege: groups.privilege(cred.uid(), cred.gid()),
        })
    }

    /// The byte stream.
    pub fn into_stream(self) -> Stream {
        self.stream
    }
}

/// Connects to the socket at `path`; the error says, for a permission
/// problem, which group the socket is open to.
pub fn connect(path: &Path) -> Result<ClientStream, String> {
    ClientStream::connect(path).map_err(|e| connect_problem(path, &e))
}

/// A sentence for a failed connect; for a permission error it names the
/// group the socket is open to.
fn connect_problem(path: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        let group = std::fs::metadata(path).ok().and_then(|m| {
            nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(m.gid()))
                .ok()
                .flatten()
                .map(|g| g.name)
        });
        return match group {
            Some(g) => format!(
                "permission denied: the socket is open to root and the `{g}` group only; ask an administrator to add you to `{g}`"
            ),
            None => "permission denied: you are not in the group the socket is open to".into(),
        };
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_is_0660_and_the_kernel_names_the_caller() {
        let dir = std::env::temp_dir().join(format!("chantry-unix-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("s.sock");
        let groups = Groups::resolve("chtest-nogroup-a", "chtest-nogroup-b");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let caller = rt.block_on(async {
            let mut listener = bind(&path, &groups).unwrap();
            let client = tokio::task::spawn_blocking({
                let path = path.clone();
                move || connect(&path)
            });
            let accepted = listener.accept().await.unwrap();
            let _client = client.await.unwrap().unwrap();
            let caller = accepted.identify(&groups).unwrap();
            // A second bind replaces the stale socket.
            drop(listener);
            drop(bind(&path, &groups).unwrap());
            caller
        });
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o660);
        assert_eq!(mode(path.parent().unwrap()), 0o755);
        let uid = nix::unistd::geteuid().as_raw();
        assert_eq!(caller.uid, uid);
        assert_eq!(caller.pid, Some(std::process::id()));
        let expected = if uid == 0 {
            chantry_core::ipc::Privilege::Admin
        } else {
            chantry_core::ipc::Privilege::None
        };
        assert_eq!(caller.privilege, expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_socket_is_named_in_the_error() {
        let e = connect(Path::new("/nonexistent/chantry/s.sock")).unwrap_err();
        assert!(e.contains("No such file"), "{e}");
    }
}
