//! Server and client talking over real sockets in a private directory.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use super::*;

/// A directory of its own under the temporary directory, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let dir = std::env::temp_dir().join(format!("chantry-ctl-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        TestDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn sample() -> Status {
    Status {
        tx: SaStats {
            spi: 0xa1b2_c3d4,
            age: 100,
            pkt: 3,
            last: 120,
            bytes: 4096,
        },
        rx: SaStats {
            spi: 0x0102_0304,
            age: 101,
            pkt: 2,
            last: 0,
            bytes: 77,
        },
        peer: Some(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 4500)),
        mtu: 1422,
    }
}

/// A blocking control socket at `dir/control`.
fn control_socket(dir: &TestDir) -> (UnixDatagram, PathBuf) {
    let path = dir.path("control");
    let sock = bind_control_socket(&path, None).unwrap();
    sock.set_nonblocking(false).unwrap();
    (sock, path)
}

/// A client socket bound in `dir` that waits at most 5 s for anything.
fn client_socket(dir: &TestDir, name: &str) -> UnixDatagram {
    let sock = UnixDatagram::bind(dir.path(name)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock
}

#[test]
fn query_gets_the_servers_snapshot() {
    let dir = TestDir::new("query");
    let (sock, path) = control_socket(&dir);
    let server = thread::spawn(move || serve_one(&sock, sample).unwrap());
    let status = query(&path, Duration::from_secs(10)).unwrap();
    assert_eq!(server.join().unwrap(), Served::Replied);
    assert_eq!(status, sample());
}

#[test]
fn query_removes_its_reply_socket() {
    let dir = TestDir::new("cleanup");
    let (sock, path) = control_socket(&dir);
    let server = thread::spawn(move || serve_one(&sock, Status::default).unwrap());
    let status = client::query_via(&dir.0, &path, Duration::from_secs(10)).unwrap();
    assert_eq!(server.join().unwrap(), Served::Replied);
    assert_eq!(status, Status::default());
    let left: Vec<_> = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["control"]);
}

#[test]
fn requests_that_are_not_exactly_status_are_ignored() {
    let dir = TestDir::new("ignored");
    let (sock, path) = control_socket(&dir);
    let client = client_socket(&dir, "client");
    let bad: [&[u8]; 5] = [&[], &[0x02], &[0x00], &[0x01, 0x00], &[0x01; 100]];
    for req in bad {
        client.send_to(req, &path).unwrap();
        let served = serve_one(&sock, || panic!("snapshot taken for {req:?}")).unwrap();
        assert_eq!(
            served,
            Served::Ignored {
                len: req.len().min(64)
            }
        );
    }
    // Datagrams keep their order: if any ignored request had been
    // answered, that answer would arrive before this one.
    client.send_to(&[STATUS_REQUEST], &path).unwrap();
    assert_eq!(serve_one(&sock, sample).unwrap(), Served::Replied);
    let mut buf = [0u8; 200];
    let (len, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(len, STATUS_LEN);
    assert_eq!(&buf[..len], &sample().encode());
    assert_eq!(from.as_pathname(), Some(path.as_path()));
    client.set_nonblocking(true).unwrap();
    assert_eq!(
        client.recv(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
}

#[test]
fn unbound_sender_gets_no_reply_and_no_snapshot() {
    let dir = TestDir::new("unbound");
    let (sock, path) = control_socket(&dir);
    let client = UnixDatagram::unbound().unwrap();
    client.send_to(&[STATUS_REQUEST], &path).unwrap();
    let served = serve_one(&sock, || panic!("snapshot taken")).unwrap();
    assert_eq!(served, Served::NoReplyAddress);
}

#[test]
fn vanished_client_is_not_fatal() {
    let dir = TestDir::new("vanished");
    let (sock, path) = control_socket(&dir);
    let client = client_socket(&dir, "client");
    client.send_to(&[STATUS_REQUEST], &path).unwrap();
    drop(client);
    fs::remove_file(dir.path("client")).unwrap();
    let served = serve_one(&sock, sample).unwrap();
    assert_eq!(served, Served::ReplyFailed(io::ErrorKind::NotFound));
}

#[test]
fn non_blocking_socket_without_request_is_idle() {
    let dir = TestDir::new("idle");
    let sock = bind_control_socket(&dir.path("control"), None).unwrap();
    assert_eq!(serve_one(&sock, sample).unwrap(), Served::Idle);
}

#[test]
fn control_socket_is_0700_and_replaces_a_stale_socket() {
    let dir = TestDir::new("bind");
    let path = dir.path("control");
    let stale = UnixDatagram::bind(&path).unwrap();
    drop(stale);
    let sock = bind_control_socket(&path, None).unwrap();
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
    // Nobody is bound to a stale socket; now someone is.
    let client = UnixDatagram::unbound().unwrap();
    client.send_to(&[STATUS_REQUEST], &path).unwrap();
    sock.set_nonblocking(false).unwrap();
    assert_eq!(serve_one(&sock, sample).unwrap(), Served::NoReplyAddress);
}

#[test]
fn control_socket_is_given_to_its_owner() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: chown needs root");
        return;
    }
    let dir = TestDir::new("owner");
    let path = dir.path("control");
    let _sock = bind_control_socket(&path, Some((65534, 65533))).unwrap();
    let meta = fs::symlink_metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65533));
}

#[test]
fn something_else_at_the_control_path_is_left_alone() {
    let dir = TestDir::new("notsocket");
    let file = dir.path("control");
    fs::write(&file, b"keep me").unwrap();
    assert!(matches!(
        bind_control_socket(&file, None),
        Err(ControlError::NotASocket { .. })
    ));
    assert_eq!(fs::read(&file).unwrap(), b"keep me");

    let link = dir.path("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    assert!(matches!(
        bind_control_socket(&link, None),
        Err(ControlError::NotASocket { .. })
    ));
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn too_long_paths_are_refused_before_any_syscall() {
    let long = PathBuf::from(format!("/tmp/{}", "x".repeat(MAX_SOCKET_PATH)));
    assert!(matches!(
        bind_control_socket(&long, None),
        Err(ControlError::PathTooLong { .. })
    ));
    assert!(matches!(
        query(&long, Duration::from_secs(1)),
        Err(ControlError::PathTooLong { .. })
    ));
}

#[test]
fn query_without_socket_names_the_path() {
    let dir = TestDir::new("missing");
    let path = dir.path("nobody-here");
    let err = query(&path, Duration::from_secs(1)).unwrap_err();
    assert!(
        matches!(&err, ControlError::Send { error, .. } if error.kind() == io::ErrorKind::NotFound)
    );
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
}

#[test]
fn query_without_answer_times_out_naming_the_path() {
    let dir = TestDir::new("silent");
    let (_sock, path) = control_socket(&dir);
    let err = query(&path, Duration::from_millis(200)).unwrap_err();
    assert!(matches!(err, ControlError::NoAnswer { .. }), "{err}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
}

#[test]
fn query_skips_datagrams_that_are_not_replies() {
    let dir = TestDir::new("stray");
    let (sock, path) = control_socket(&dir);
    let server = thread::spawn(move || {
        let mut buf = [0u8; 8];
        let (_, from) = sock.recv_from(&mut buf).unwrap();
        let to = from.as_pathname().unwrap().to_owned();
        sock.send_to(&[0u8; 10], &to).unwrap();
        sock.send_to(&[0u8; STATUS_LEN + 1], &to).unwrap();
        sock.send_to(&sample().encode(), &to).unwrap();
    });
    assert_eq!(query(&path, Duration::from_secs(10)).unwrap(), sample());
    server.join().unwrap();
}

/// The reference runs the control role in an empty network namespace; a
/// path-bound socket still reaches it and its reply reaches the client.
#[test]
fn server_in_an_empty_network_namespace_still_answers() {
    let dir = TestDir::new("netns");
    let (sock, path) = control_socket(&dir);
    let server = thread::spawn(move || {
        // unshare(2) moves only this thread into the new namespace.
        match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
            Ok(()) => {}
            Err(e) => return Err(e),
        }
        Ok(serve_one(&sock, sample).unwrap())
    });
    let answer = query(&path, Duration::from_secs(10));
    match server.join().unwrap() {
        Ok(served) => {
            assert_eq!(served, Served::Replied);
            assert_eq!(answer.unwrap(), sample());
        }
        Err(e) => eprintln!("skipped: unshare(CLONE_NEWNET): {e}"),
    }
}
