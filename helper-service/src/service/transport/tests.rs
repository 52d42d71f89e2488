//! The connection handling over a stream that is neither a socket nor a
//! pipe (an in-memory duplex), with callers of each privilege: what a
//! Windows caller with the same [`Caller`] would see.

use std::path::PathBuf;
use std::time::Duration;

use chantry_core::ipc::{
    ClientHello, ErrorCode, FrameDecoder, MAX_FRAME, PROTOCOL_VERSION, Privilege, Request,
    RequestFrame, Response, ServerMessage, decode_message, encode_message,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

use super::Caller;
use crate::service::{auth, endpoint, logbook, stats, store, tunnels};

struct Peer {
    io: DuplexStream,
    dec: FrameDecoder,
}

impl Peer {
    async fn send<T: serde::Serialize>(&mut self, msg: &T) {
        self.io
            .write_all(&encode_message(msg).unwrap())
            .await
            .unwrap();
    }

    /// The next message, or `None` once the service closed the stream.
    async fn next(&mut self) -> Option<ServerMessage> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(f) = self.dec.next_frame().unwrap() {
                return Some(decode_message(&f).unwrap());
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.io.read(&mut buf))
                .await
                .expect("an answer within 10 s")
                .unwrap();
            if n == 0 {
                return None;
            }
            self.dec.extend(&buf[..n]);
        }
    }

    async fn call(&mut self, id: u64, request: Request) -> ServerMessage {
        self.send(&RequestFrame { id, request }).await;
        self.next().await.expect("an answer")
    }
}

/// Runs `script` against a service connection from a caller with
/// `privilege` (uid 4242), over an in-memory stream.
fn with_caller<F>(tag: &str, privilege: Privilege, script: F)
where
    F: AsyncFnOnce(&mut Peer),
{
    let dir: PathBuf =
        std::env::temp_dir().join(format!("chantry-transport-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = store::Store::open(&dir).await.unwrap();
        let service = endpoint::Service {
            groups: auth::Groups::resolve("chtest-nogroup-a", "chtest-nogroup-b"),
            tunnels: tunnels::Tunnels::new("/nonexistent".into(), store.clone()),
            store,
            logs: logbook::LogBook::new(100),
            stats: stats::Stats::default(),
        };
        let (client, server) = tokio::io::duplex(64 * 1024);
        let caller = Caller {
            uid: 4242,
            pid: Some(7),
            privilege,
        };
        let mut peer = Peer {
            io: client,
            dec: FrameDecoder::new(MAX_FRAME),
        };
        let serve = endpoint::connection(server, caller, &service);
        let talk = async {
            peer.send(&ClientHello {
                version: PROTOCOL_VERSION,
                client: "test".into(),
            })
            .await;
            script(&mut peer).await;
            drop(peer);
        };
        let (served, ()) = tokio::join!(serve, talk);
        served.unwrap();
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

fn refused(msg: &ServerMessage) -> (Option<u64>, ErrorCode, String) {
    match msg {
        ServerMessage::Error { id, error } => (*id, error.code, error.message.clone()),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn a_caller_outside_the_groups_is_refused_at_hello() {
    with_caller("none", Privilege::None, async |peer| {
        let (id, code, message) = refused(&peer.next().await.unwrap());
        assert_eq!((id, code), (None, ErrorCode::Forbidden));
        assert_eq!(
            message,
            "uid 4242 may not use chantryd: it needs membership in the `chtest-nogroup-a` \
             group (or `chtest-nogroup-b`, or root)"
        );
        assert!(peer.next().await.is_none(), "the stream is closed");
    });
}

#[test]
fn a_member_may_list_but_not_remove() {
    with_caller("member", Privilege::Member, async |peer| {
        match peer.next().await.unwrap() {
            ServerMessage::Hello(h) => assert_eq!(h.privilege, Privilege::Member),
            other => panic!("{other:?}"),
        }
        match peer.call(1, Request::List).await {
            ServerMessage::Response { id, response } => {
                assert_eq!(id, 1);
                assert_eq!(response, Response::Profiles { profiles: vec![] });
            }
            other => panic!("{other:?}"),
        }
        let answer = peer.call(2, Request::Remove { name: "x".into() }).await;
        assert_eq!(
            refused(&answer),
            (
                Some(2),
                ErrorCode::Forbidden,
                "`remove` needs root or membership in the `chtest-nogroup-b` group".into()
            )
        );
    });
}

#[test]
fn an_admin_gets_past_authorization() {
    with_caller("admin", Privilege::Admin, async |peer| {
        match peer.next().await.unwrap() {
            ServerMessage::Hello(h) => assert_eq!(h.privilege, Privilege::Admin),
            other => panic!("{other:?}"),
        }
        let answer = peer.call(3, Request::Remove { name: "x".into() }).await;
        assert_eq!(
            refused(&answer),
            (Some(3), ErrorCode::NotFound, "no profile named `x`".into())
        );
    });
}
