//! The app's one connection to chantryd's control endpoint: the hello,
//! the event subscription, requests multiplexed by id, and a model of
//! the profiles kept up to date from the answers and the events. When
//! the connection is lost (or cannot be made) every waiting request gets
//! the reason, and the link tries again with a growing pause (at most
//! [`MAX_BACKOFF`]), or at once on [`Link::retry`].
//!
//! Sans-Tauri: what it learns goes to a [`Sink`] (the app emits it to
//! the window and redraws the tray), so it is tested here against a fake
//! service on a socket in a temporary directory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chantry_core::ipc::{
    ClientHello, Event, FrameDecoder, MAX_FRAME, PROTOCOL_VERSION, Privilege, ProfileInfo, Request,
    RequestFrame, Response, ServerMessage, TunnelState, TunnelStats, TunnelStatus, decode_message,
    encode_message,
};
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};

use crate::error::AppError;

/// Longest pause between two connection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// First pause after a failed attempt.
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Time the service has to answer the hello or a request.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection to the service as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkState {
    /// Trying to connect.
    Connecting {
        /// The socket.
        socket: String,
    },
    /// Connected and subscribed.
    Up {
        /// The socket.
        socket: String,
        /// The service's name and version.
        server: String,
        /// What this user may do.
        privilege: Privilege,
    },
    /// Not connected; why, and what to do about it.
    Down {
        /// The socket.
        socket: String,
        /// The reason.
        error: AppError,
    },
}

/// A profile with everything the service last said about its tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileView {
    /// The profile.
    #[serde(flatten)]
    pub info: ProfileInfo,
    /// The last failure, if the service named one.
    pub detail: Option<String>,
    /// The tunnel's numbers, while it runs.
    pub stats: Option<TunnelStats>,
}

/// Where what the link learns goes. Called from the link's task; keep
/// each call short.
pub trait Sink: Send + Sync + 'static {
    /// The connection changed.
    fn link(&self, state: &LinkState);
    /// The profiles or a tunnel's state changed (not sent for stats).
    fn profiles(&self, profiles: &[ProfileView]);
    /// An event of the subscription, as the service sent it.
    fn event(&self, event: &Event);
}

enum Cmd {
    Call(Request, oneshot::Sender<Result<Response, AppError>>),
    Retry,
}

#[derive(Debug)]
struct Shared {
    state: LinkState,
    profiles: BTreeMap<String, ProfileView>,
}

/// A handle on the link; cheap to clone. The link's task ends when every
/// handle is gone.
#[derive(Clone)]
pub struct Link {
    tx: mpsc::UnboundedSender<Cmd>,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").finish_non_exhaustive()
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl Link {
    /// A link to the service at `socket`, and the task that runs it
    /// (spawn it on a tokio runtime).
    pub fn new(
        socket: PathBuf,
        sink: Arc<dyn Sink>,
    ) -> (Link, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Mutex::new(Shared {
            state: LinkState::Connecting {
                socket: socket.display().to_string(),
            },
            profiles: BTreeMap::new(),
        }));
        let task = run(socket, rx, shared.clone(), sink);
        (Link { tx, shared }, task)
    }

    /// Sends `request` and waits for its answer.
    pub async fn call(&self, request: Request) -> Result<Response, AppError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Cmd::Call(request, reply))
            .map_err(|_| AppError::protocol("the app is shutting down"))?;
        match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(AppError::protocol("the connection to chantryd ended")),
            Err(_) => Err(AppError::protocol(format!(
                "chantryd did not answer within {} s",
                ANSWER_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Sends `request` and expects [`Response::Done`].
    pub async fn call_done(&self, request: Request) -> Result<(), AppError> {
        match self.call(request).await? {
            Response::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Try to connect now instead of after the pause.
    pub fn retry(&self) {
        let _ = self.tx.send(Cmd::Retry);
    }

    /// The connection's state.
    pub fn state(&self) -> LinkState {
        lock(&self.shared).state.clone()
    }

    /// The profiles as last known (empty while not connected).
    pub fn profiles(&self) -> Vec<ProfileView> {
        lock(&self.shared).profiles.values().cloned().collect()
    }

    /// One profile as last known.
    pub fn profile(&self, name: &str) -> Option<ProfileView> {
        lock(&self.shared).profiles.get(name).cloned()
    }
}

/// The error for an answer of the wrong kind.
pub fn unexpected(r: &Response) -> AppError {
    AppError::protocol(format!("unexpected answer {r:?}"))
}

/// How a session ended.
enum Ended {
    /// Every handle is gone.
    Quit,
    /// The connection failed or broke.
    Lost(AppError),
}

async fn run(
    socket: PathBuf,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    shared: Arc<Mutex<Shared>>,
    sink: Arc<dyn Sink>,
) {
    let shown = socket.display().to_string();
    let mut backoff = MIN_BACKOFF;
    loop {
        // While down, attempts go on quietly: the reason stays shown
        // (the tray's menu is not rebuilt under the user's pointer).
        if !matches!(lock(&shared).state, LinkState::Down { .. }) {
            set_state(
                &shared,
                &*sink,
                LinkState::Connecting {
                    socket: shown.clone(),
                },
            );
        }
        let mut was_up = false;
        let error = match session(&socket, &mut rx, &shared, &*sink, &mut was_up).await {
            Ended::Quit => return,
            Ended::Lost(e) => e,
        };
        if was_up {
            backoff = MIN_BACKOFF;
        }
        let down = LinkState::Down {
            socket: shown.clone(),
            error: error.clone(),
        };
        if lock(&shared).state == down {
            tracing::debug!("chantryd link still down: {error}");
        } else {
            tracing::info!("chantryd link down: {error}");
            lock(&shared).profiles.clear();
            sink.profiles(&[]);
            set_state(&shared, &*sink, down);
        }
        let pause = tokio::time::sleep(backoff);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                () = &mut pause => break,
                cmd = rx.recv() => match cmd {
                    None => return,
                    Some(Cmd::Retry) => break,
                    Some(Cmd::Call(_, reply)) => {
                        let _ = reply.send(Err(error.clone()));
                    }
                },
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn set_state(shared: &Mutex<Shared>, sink: &dyn Sink, state: LinkState) {
    lock(shared).state = state.clone();
    sink.link(&state);
}

/// Who waits for an answer.
enum Waiter {
    /// A caller; `relist`: list the profiles again once it succeeded.
    Caller(oneshot::Sender<Result<Response, AppError>>, bool),
    /// The link's own list, status or subscribe.
    Own,
}

struct Conn {
    wr: OwnedWriteHalf,
    next_id: u64,
    pending: HashMap<u64, Waiter>,
}

impl Conn {
    async fn send(&mut self, request: Request, waiter: Waiter) -> Result<(), AppError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let frame = encode_message(&RequestFrame { id, request }).map_err(AppError::protocol)?;
        self.pending.insert(id, waiter);
        self.wr
            .write_all(&frame)
            .await
            .map_err(|e| AppError::protocol(format!("writing to chantryd: {e}")))
    }
}

async fn session(
    socket: &Path,
    rx: &mut mpsc::UnboundedReceiver<Cmd>,
    shared: &Mutex<Shared>,
    sink: &dyn Sink,
    was_up: &mut bool,
) -> Ended {
    let stream = match UnixStream::connect(socket).await {
        Ok(s) => s,
        Err(e) => return Ended::Lost(AppError::from_connect(socket, &e)),
    };
    let (mut rd, wr) = stream.into_split();
    let mut conn = Conn {
        wr,
        next_id: 1,
        pending: HashMap::new(),
    };
    let mut dec = FrameDecoder::new(MAX_FRAME);
    let mut buf = vec![0u8; 64 * 1024];

    // Hello.
    let hello = ClientHello {
        version: PROTOCOL_VERSION,
        client: concat!("chantry-app ", env!("CARGO_PKG_VERSION")).to_owned(),
    };
    let hello_answer = async {
        let frame = encode_message(&hello).map_err(AppError::protocol)?;
        conn.wr
            .write_all(&frame)
            .await
            .map_err(|e| AppError::protocol(format!("writing to chantryd: {e}")))?;
        loop {
            if let Some(f) = dec.next_frame().map_err(AppError::protocol)? {
                return decode_message::<ServerMessage>(&f).map_err(AppError::protocol);
            }
            let n = rd
                .read(&mut buf)
                .await
                .map_err(|e| AppError::protocol(format!("reading from chantryd: {e}")))?;
            if n == 0 {
                return Err(AppError::protocol("chantryd closed the connection"));
            }
            dec.extend(&buf[..n]);
        }
    };
    let server = match tokio::time::timeout(ANSWER_TIMEOUT, hello_answer).await {
        Err(_) => return Ended::Lost(AppError::protocol("chantryd did not answer the hello")),
        Ok(Err(e)) => return Ended::Lost(e),
        Ok(Ok(ServerMessage::Hello(h))) => h,
        Ok(Ok(ServerMessage::Error { error, .. })) => {
            return Ended::Lost(AppError::refused(error));
        }
        Ok(Ok(other)) => {
            return Ended::Lost(AppError::protocol(format!(
                "unexpected first message {other:?}"
            )));
        }
    };
    *was_up = true;
    set_state(
        shared,
        sink,
        LinkState::Up {
            socket: socket.display().to_string(),
            server: server.server.clone(),
            privilege: server.privilege,
        },
    );

    let lost = |conn: &mut Conn, e: AppError| {
        for (_, w) in conn.pending.drain() {
            if let Waiter::Caller(reply, _) = w {
                let _ = reply.send(Err(e.clone()));
            }
        }
        Ended::Lost(e)
    };

    for request in [
        Request::Subscribe,
        Request::List,
        Request::Status { name: None },
    ] {
        if let Err(e) = conn.send(request, Waiter::Own).await {
            return lost(&mut conn, e);
        }
    }

    loop {
        // Whole frames already buffered first.
        loop {
            let frame = match dec.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return lost(&mut conn, AppError::protocol(e)),
            };
            let msg = match decode_message::<ServerMessage>(&frame) {
                Ok(m) => m,
                Err(e) => return lost(&mut conn, AppError::protocol(e)),
            };
            if let Err(e) = handle(msg, &mut conn, shared, sink).await {
                return lost(&mut conn, e);
            }
        }
        tokio::select! {
            n = rd.read(&mut buf) => match n {
                Ok(0) => return lost(&mut conn, AppError::protocol("chantryd closed the connection")),
                Ok(n) => dec.extend(&buf[..n]),
                Err(e) => return lost(&mut conn, AppError::protocol(format!("reading from chantryd: {e}"))),
            },
            cmd = rx.recv() => match cmd {
                None => return Ended::Quit,
                Some(Cmd::Retry) => {}
                Some(Cmd::Call(request, reply)) => {
                    let relist = matches!(
                        request,
                        Request::Import(_) | Request::ImportVicar(_) | Request::Edit { .. } | Request::Remove { .. }
                    );
                    if let Err(e) = conn.send(request, Waiter::Caller(reply, relist)).await {
                        return lost(&mut conn, e);
                    }
                }
            },
        }
    }
}

/// Acts on one message of the service.
async fn handle(
    msg: ServerMessage,
    conn: &mut Conn,
    shared: &Mutex<Shared>,
    sink: &dyn Sink,
) -> Result<(), AppError> {
    match msg {
        ServerMessage::Hello(_) => Err(AppError::protocol("a second hello")),
        ServerMessage::Error { id: None, error } => Err(AppError::refused(error)),
        ServerMessage::Error {
            id: Some(id),
            error,
        } => {
            match conn.pending.remove(&id) {
                Some(Waiter::Caller(reply, _)) => {
                    let _ = reply.send(Err(AppError::refused(error)));
                }
                Some(Waiter::Own) => {
                    tracing::warn!("chantryd refused the app's own request: {}", error.message)
                }
                None => {}
            }
            Ok(())
        }
        ServerMessage::Response { id, response } => {
            match conn.pending.remove(&id) {
                Some(Waiter::Caller(reply, relist)) => {
                    if relist {
                        conn.send(Request::List, Waiter::Own).await?;
                    }
                    if let Response::Status { tunnels } = &response {
                        apply_status(shared, sink, tunnels);
                    }
                    let _ = reply.send(Ok(response));
                }
                Some(Waiter::Own) => match response {
                    Response::Profiles { profiles } => apply_list(shared, sink, profiles),
                    Response::Status { tunnels } => apply_status(shared, sink, &tunnels),
                    _ => {}
                },
                None => {}
            }
            Ok(())
        }
        ServerMessage::Event(event) => {
            match &event {
                Event::State(status) => {
                    let known = lock(shared).profiles.contains_key(&status.name);
                    if known {
                        apply_status(shared, sink, std::slice::from_ref(status));
                    } else {
                        conn.send(Request::List, Waiter::Own).await?;
                    }
                }
                Event::Stats { name, stats, .. } => {
                    if let Some(p) = lock(shared).profiles.get_mut(name) {
                        p.stats = Some(stats.clone());
                    }
                }
                Event::Recorded(_) => conn.send(Request::List, Waiter::Own).await?,
                Event::Log(_) => {}
            }
            sink.event(&event);
            Ok(())
        }
    }
}

fn apply_list(shared: &Mutex<Shared>, sink: &dyn Sink, profiles: Vec<ProfileInfo>) {
    let snapshot = {
        let mut s = lock(shared);
        let mut next = BTreeMap::new();
        for info in profiles {
            let (detail, stats) = match s.profiles.remove(&info.name) {
                Some(old) if old.info.state == info.state => (old.detail, old.stats),
                _ => (None, None),
            };
            next.insert(
                info.name.clone(),
                ProfileView {
                    info,
                    detail,
                    stats,
                },
            );
        }
        s.profiles = next;
        s.profiles.values().cloned().collect::<Vec<_>>()
    };
    sink.profiles(&snapshot);
}

fn apply_status(shared: &Mutex<Shared>, sink: &dyn Sink, tunnels: &[TunnelStatus]) {
    let snapshot = {
        let mut s = lock(shared);
        let mut changed = false;
        for t in tunnels {
            if let Some(p) = s.profiles.get_mut(&t.name) {
                let stats = if t.state == TunnelState::Up || t.state == TunnelState::Connecting {
                    t.stats.clone().or_else(|| p.stats.clone())
                } else {
                    None
                };
                let next = (t.state, t.detail.clone(), stats);
                if (p.info.state, p.detail.clone(), p.stats.clone()) != next {
                    (p.info.state, p.detail, p.stats) = next;
                    changed = true;
                }
            }
        }
        changed.then(|| s.profiles.values().cloned().collect::<Vec<_>>())
    };
    if let Some(snapshot) = snapshot {
        sink.profiles(&snapshot);
    }
}

#[cfg(test)]
mod tests;
