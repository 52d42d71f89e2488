//! The link against a fake chantryd speaking the real frames on a socket
//! in a temporary directory.

use std::sync::atomic::{AtomicU32, Ordering};

use chantry_core::ipc::{ErrorCode, ErrorReply, ServerHello};
use tokio::net::UnixListener;
use tokio::sync::watch;

use super::*;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A directory removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let p = std::env::temp_dir().join(format!(
            "chantry-app-link-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("temp dir");
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the sink saw, published on a watch channel so a test can wait
/// for a condition (bounded).
#[derive(Debug, Clone, Default)]
struct Seen {
    links: Vec<LinkState>,
    profiles: Vec<Vec<ProfileView>>,
    events: Vec<Event>,
}

struct TestSink(watch::Sender<Seen>);

impl Sink for TestSink {
    fn link(&self, state: &LinkState) {
        self.0.send_modify(|s| s.links.push(state.clone()));
    }
    fn profiles(&self, profiles: &[ProfileView]) {
        self.0.send_modify(|s| s.profiles.push(profiles.to_vec()));
    }
    fn event(&self, event: &Event) {
        self.0.send_modify(|s| s.events.push(event.clone()));
    }
}

async fn until(rx: &mut watch::Receiver<Seen>, what: &str, cond: impl Fn(&Seen) -> bool) {
    let ok = matches!(
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| cond(s))).await,
        Ok(Ok(_))
    );
    assert!(ok, "timed out waiting for {what}: {:?}", *rx.borrow());
}

fn profile(name: &str, state: TunnelState) -> ProfileInfo {
    ProfileInfo {
        name: name.into(),
        instance: format!("{name}0"),
        mode: "tunnel".into(),
        auto_connect: false,
        always_on: false,
        state,
    }
}

async fn write(s: &mut UnixStream, msg: &ServerMessage) {
    s.write_all(&encode_message(msg).expect("encode"))
        .await
        .expect("write");
}

async fn read<T: serde::de::DeserializeOwned>(
    s: &mut UnixStream,
    dec: &mut FrameDecoder,
) -> Option<T> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(f) = dec.next_frame().expect("frame") {
            return Some(decode_message(&f).expect("message"));
        }
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        dec.extend(&buf[..n]);
    }
}

/// A fake service: answers the hello with `privilege`, then every
/// request with `answer`, and after a `Connect` sends a state event.
async fn fake_service(
    listener: UnixListener,
    profiles: Vec<ProfileInfo>,
    requests: mpsc::UnboundedSender<Request>,
) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let profiles = profiles.clone();
        let requests = requests.clone();
        tokio::spawn(async move {
            let mut dec = FrameDecoder::default();
            let _: ClientHello = read(&mut s, &mut dec).await.expect("hello");
            write(
                &mut s,
                &ServerMessage::Hello(ServerHello {
                    version: PROTOCOL_VERSION,
                    server: "chantryd test".into(),
                    privilege: Privilege::Member,
                }),
            )
            .await;
            while let Some(RequestFrame { id, request }) = read(&mut s, &mut dec).await {
                let _ = requests.send(request.clone());
                let response = match &request {
                    Request::List => Response::Profiles {
                        profiles: profiles.clone(),
                    },
                    Request::Status { .. } => Response::Status {
                        tunnels: profiles
                            .iter()
                            .map(|p| TunnelStatus {
                                name: p.name.clone(),
                                state: p.state,
                                detail: None,
                                pid: None,
                                stats: None,
                            })
                            .collect(),
                    },
                    Request::Remove { name } => {
                        write(
                            &mut s,
                            &ServerMessage::Error {
                                id: Some(id),
                                error: ErrorReply {
                                    code: ErrorCode::Forbidden,
                                    message: format!("`remove` needs root or membership in the `chantry-admin` group ({name})"),
                                    line: None,
                                },
                            },
                        )
                        .await;
                        continue;
                    }
                    _ => Response::Done,
                };
                write(&mut s, &ServerMessage::Response { id, response }).await;
                if let Request::Connect { name } = request {
                    write(
                        &mut s,
                        &ServerMessage::Event(Event::State(TunnelStatus {
                            name,
                            state: TunnelState::Up,
                            detail: None,
                            pid: Some(42),
                            stats: None,
                        })),
                    )
                    .await;
                }
            }
        });
    }
}

fn start(socket: PathBuf) -> (Link, watch::Receiver<Seen>) {
    let (tx, rx) = watch::channel(Seen::default());
    let (link, task) = Link::new(socket, Arc::new(TestSink(tx)));
    tokio::spawn(task);
    (link, rx)
}

#[tokio::test]
async fn no_socket_means_not_running_and_calls_say_so() {
    let dir = Dir::new();
    let socket = dir.0.join("chantryd.sock");
    let (link, mut seen) = start(socket.clone());
    until(&mut seen, "down", |s| {
        s.links.iter().any(|l| matches!(l, LinkState::Down { .. }))
    })
    .await;
    let err = link.call(Request::List).await.expect_err("no service");
    assert_eq!(
        err,
        AppError::NotRunning {
            socket: socket.display().to_string(),
            detail: "No such file or directory (os error 2)".into()
        }
    );
    assert!(link.profiles().is_empty());
}

#[tokio::test]
async fn lists_connects_and_follows_state_events() {
    let dir = Dir::new();
    let socket = dir.0.join("chantryd.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    let (req_tx, mut req_rx) = mpsc::unbounded_channel();
    tokio::spawn(fake_service(
        listener,
        vec![
            profile("home", TunnelState::Down),
            profile("work", TunnelState::Failed),
        ],
        req_tx,
    ));
    let (link, mut seen) = start(socket.clone());
    until(&mut seen, "two profiles", |s| {
        s.profiles.last().is_some_and(|p| p.len() == 2)
    })
    .await;
    assert_eq!(
        link.state(),
        LinkState::Up {
            socket: socket.display().to_string(),
            server: "chantryd test".into(),
            privilege: Privilege::Member
        }
    );
    // The link subscribed, listed and asked for the status by itself.
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(req_rx.recv().await.expect("request"));
    }
    assert_eq!(
        first,
        vec![
            Request::Subscribe,
            Request::List,
            Request::Status { name: None }
        ]
    );

    link.call_done(Request::Connect {
        name: "home".into(),
    })
    .await
    .expect("connect");
    until(&mut seen, "home up", |s| {
        s.profiles.last().is_some_and(|p| {
            p.iter()
                .any(|v| v.info.name == "home" && v.info.state == TunnelState::Up)
        })
    })
    .await;
    assert_eq!(
        link.profile("home").map(|p| p.info.state),
        Some(TunnelState::Up)
    );
    assert!(
        seen.borrow()
            .events
            .iter()
            .any(|e| matches!(e, Event::State(t) if t.name == "home"))
    );

    // A refusal comes back as the service's words.
    let err = link
        .call(Request::Remove {
            name: "home".into(),
        })
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, AppError::Refused { code: ErrorCode::Forbidden, message, .. } if message.contains("`chantry-admin`")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_refused_hello_is_the_link_error() {
    let dir = Dir::new();
    let socket = dir.0.join("chantryd.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut dec = FrameDecoder::default();
            let _: Option<ClientHello> = read(&mut s, &mut dec).await;
            write(
                &mut s,
                &ServerMessage::Error {
                    id: None,
                    error: ErrorReply {
                        code: ErrorCode::Forbidden,
                        message: "uid 1000 may not use chantryd: it needs membership in the `chantry` group (or `chantry-admin`, or root)".into(),
                        line: None,
                    },
                },
            )
            .await;
        }
    });
    let (_link, mut seen) = start(socket);
    until(&mut seen, "refused", |s| {
        s.links.iter().any(|l| {
            matches!(
                l,
                LinkState::Down {
                    error: AppError::Refused {
                        code: ErrorCode::Forbidden,
                        ..
                    },
                    ..
                }
            )
        })
    })
    .await;
}

#[tokio::test]
async fn comes_back_when_the_service_does() {
    let dir = Dir::new();
    let socket = dir.0.join("chantryd.sock");
    let (link, mut seen) = start(socket.clone());
    until(&mut seen, "down", |s| {
        s.links.iter().any(|l| matches!(l, LinkState::Down { .. }))
    })
    .await;
    let listener = UnixListener::bind(&socket).expect("bind");
    let (req_tx, _req_rx) = mpsc::unbounded_channel();
    tokio::spawn(fake_service(
        listener,
        vec![profile("home", TunnelState::Down)],
        req_tx,
    ));
    link.retry();
    until(&mut seen, "up again", |s| {
        matches!(s.links.last(), Some(LinkState::Up { .. }))
            && s.profiles.last().is_some_and(|p| p.len() == 1)
    })
    .await;
}
