//! The endpoint in-process: hostile frames close their own connection
//! only, a wrong version is refused, and another connection keeps
//! working throughout.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chantry_core::ipc::{
    ClientHello, ErrorCode, Request, Response, ServerMessage, decode_message, encode_frame,
    encode_message,
};

use super::client::{Client, ClientError};
use super::{auth, endpoint, logbook, stats, store, tunnels};

/// Starts a service on a socket in a fresh directory, on its own thread.
fn start(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chantry-svc-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let socket = dir.join("s.sock");
    let (tx, rx) = std::sync::mpsc::channel();
    let sock = socket.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let store = store::Store::open(&dir.join("state")).await.unwrap();
            let service = Arc::new(endpoint::Service {
                // Groups that do not exist: only root (the test) is let in.
                groups: auth::Groups::resolve("chtest-nogroup-a", "chtest-nogroup-b"),
                tunnels: tunnels::Tunnels::new("/nonexistent".into(), store.clone()),
                store,
                logs: logbook::LogBook::new(100),
                stats: stats::Stats::default(),
            });
            let listener = endpoint::bind(&sock, &service.groups).unwrap();
            tx.send(()).unwrap();
            let _ = endpoint::accept_loop(listener, service).await;
        });
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    socket
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Says hello on a raw stream and reads the answer.
fn raw_hello(socket: &PathBuf, version: u32) -> (UnixStream, ServerMessage) {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hello = ClientHello {
        version,
        client: "test".into(),
    };
    s.write_all(&encode_message(&hello).unwrap()).unwrap();
    let msg = read_one(&mut s).expect("an answer");
    (s, msg)
}

/// One message, or None at end of stream.
fn read_one(s: &mut UnixStream) -> Option<ServerMessage> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(decode_message(&body).unwrap())
}

fn closed(s: &mut UnixStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0))
}

fn invalid_then_closed(s: &mut UnixStream) {
    match read_one(s) {
        Some(ServerMessage::Error { id: None, error }) => {
            assert_eq!(error.code, ErrorCode::Invalid, "{error:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(closed(s));
}

#[test]
fn bad_frames_close_only_their_connection() {
    if !is_root() {
        eprintln!("skipped: needs root (the only caller a group-less service admits)");
        return;
    }
    let socket = start("frames");
    let mut good = Client::connect(&socket).unwrap();
    assert_eq!(
        good.call(Request::List).unwrap(),
        Response::Profiles { profiles: vec![] }
    );

    // Oversized: refused from the length prefix alone.
    let (mut s, hello) = raw_hello(&socket, 1);
    assert!(matches!(hello, ServerMessage::Hello(_)), "{hello:?}");
    s.write_all(&[0x00, 0x10, 0x00, 0x00]).unwrap();
    invalid_then_closed(&mut s);

    // Malformed JSON.
    let (mut s, _) = raw_hello(&socket, 1);
    s.write_all(&encode_frame(b"{\"id\":1,\"request\":{\"op\":\"reboot\"}}").unwrap())
        .unwrap();
    invalid_then_closed(&mut s);

    // Empty frame.
    let (mut s, _) = raw_hello(&socket, 1);
    s.write_all(&[0, 0, 0, 0]).unwrap();
    invalid_then_closed(&mut s);

    // Truncated: half a frame, then the client goes away.
    let (mut s, _) = raw_hello(&socket, 1);
    s.write_all(&[0, 0, 0, 50, b'{']).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    invalid_then_closed(&mut s);

    // A hello of another version.
    let (mut s, answer) = raw_hello(&socket, 99);
    match answer {
        ServerMessage::Error { error, .. } => assert_eq!(error.code, ErrorCode::Version),
        other => panic!("{other:?}"),
    }
    assert!(closed(&mut s));

    // The first connection never noticed.
    assert_eq!(
        good.call(Request::Status { name: None }).unwrap(),
        Response::Status { tunnels: vec![] }
    );
    match good.call(Request::Connect {
        name: "nope".into(),
    }) {
        Err(ClientError::Refused(e)) => assert_eq!(e.code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    if let Some(dir) = socket.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}
