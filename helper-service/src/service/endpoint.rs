//! The control endpoint: a Unix stream socket (0660, group `chantry`), or
//! on Windows a named pipe ([`super::transport`]). Every connection's
//! caller is identified when it is accepted; the caller's privilege
//! decides whether it may stay, and every request is authorized on its
//! own. A malformed, truncated or oversized frame ends that connection
//! only.

use std::sync::Arc;
use std::time::Duration;

use chantry_core::ipc::{
    ClientHello, ErrorCode, ErrorReply, Event, FrameDecoder, FrameError, PROTOCOL_VERSION,
    Privilege, ProfileInfo, Request, RequestFrame, Response, ServerHello, ServerMessage,
    TunnelStatus, decode_message, encode_message,
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{Semaphore, broadcast};

use super::auth::Groups;
use super::logbook::{self, LogBook};
use super::profile::{self, ImportError};
use super::reply::{fail, internal, not_found};
use super::stats::Stats;
use super::store::Store;
use super::transport::{Caller, Listener};
use super::tunnels::Tunnels;
use super::{killswitch, settings, vicar_import};

pub use super::transport::bind;

/// Connections served at once; more are answered with
/// [`ErrorCode::Limit`] and closed.
pub const MAX_CONNECTIONS: usize = 256;
/// Largest frame a client may send (imports carry a configuration and a
/// key: far below this).
pub const MAX_REQUEST_FRAME: usize = 256 * 1024;
/// Time a client has to send its hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection shares.
#[derive(Debug)]
pub struct Service {
    /// The groups that grant privileges.
    pub groups: Groups,
    /// The state store.
    pub store: Store,
    /// The running tunnels.
    pub tunnels: Tunnels,
    /// The kept log lines.
    pub logs: Arc<LogBook>,
    /// The running tunnels' numbers.
    pub stats: Stats,
}

/// Accepts connections until an error of the listening socket.
pub async fn accept_loop(mut listener: Listener, service: Arc<Service>) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = listener.accept().await?;
        let service = service.clone();
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    let served = match accepted.identify(&service.groups) {
                        Ok(caller) => connection(accepted.into_stream(), caller, &service).await,
                        Err(e) => Err(e.into()),
                    };
                    if let Err(e) = served {
                        tracing::debug!("connection closed: {e}");
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let mut stream = accepted.into_stream();
                    let _ = send(
                        &mut stream,
                        &error(None, ErrorCode::Limit, "too many connections".into()),
                    )
                    .await;
                });
            }
        }
    }
}

fn error(id: Option<u64>, code: ErrorCode, message: String) -> ServerMessage {
    ServerMessage::Error {
        id,
        error: ErrorReply {
            code,
            message,
            line: None,
        },
    }
}

async fn send<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    msg: &ServerMessage,
) -> anyhow::Result<()> {
    let frame = encode_message(msg)?;
    w.write_all(&frame).await?;
    Ok(())
}

/// Reads until one whole frame is buffered; `Ok(None)` at a clean end.
async fn read_frame<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    dec: &mut FrameDecoder,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(f) = dec.next_frame()? {
            return Ok(Some(f));
        }
        let n = r
            .read(&mut buf)
            .await
            .map_err(|e| FrameError::Malformed(e.to_string()))?;
        if n == 0 {
            dec.finish()?;
            return Ok(None);
        }
        dec.extend(&buf[..n]);
    }
}

/// Serves one connection from `caller` on `stream`.
pub async fn connection<S: AsyncRead + AsyncWrite>(
    stream: S,
    caller: Caller,
    service: &Service,
) -> anyhow::Result<()> {
    let Caller { uid, privilege, .. } = caller;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut dec = FrameDecoder::new(MAX_REQUEST_FRAME);

    let hello = match tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut rd, &mut dec)).await {
        Err(_) => return Ok(()),
        Ok(Ok(None)) => return Ok(()),
        Ok(Ok(Some(f))) => f,
        Ok(Err(e)) => {
            send(&mut wr, &error(None, ErrorCode::Invalid, e.to_string())).await?;
            return Ok(());
        }
    };
    let hello: ClientHello = match decode_message(&hello) {
        Ok(h) => h,
        Err(e) => {
            send(
                &mut wr,
                &error(None, ErrorCode::Invalid, format!("hello: {e}")),
            )
            .await?;
            return Ok(());
        }
    };
    if hello.version != PROTOCOL_VERSION {
        let msg = format!(
            "protocol version {} is not spoken here (chantryd speaks {PROTOCOL_VERSION})",
            hello.version
        );
        send(&mut wr, &error(None, ErrorCode::Version, msg)).await?;
        return Ok(());
    }
    if privilege == Privilege::None {
        tracing::info!(uid, pid = ?caller.pid, "refused a caller outside the groups");
        send(
            &mut wr,
            &error(
                None,
                ErrorCode::Forbidden,
                service.groups.refuse_connect(uid),
            ),
        )
        .await?;
        return Ok(());
    }
    tracing::debug!(uid, ?privilege, client = hello.client, "client connected");
    let server = ServerHello {
        version: PROTOCOL_VERSION,
        server: concat!("chantryd ", env!("CARGO_PKG_VERSION")).to_owned(),
        privilege,
    };
    send(&mut wr, &ServerMessage::Hello(server)).await?;

    let mut events: Option<broadcast::Receiver<Event>> = None;
    loop {
        tokio::select! {
            frame = read_frame(&mut rd, &mut dec) => {
                let frame = match frame {
                    Ok(Some(f)) => f,
                    Ok(None) => return Ok(()),
                    Err(e) => {
                        send(&mut wr, &error(None, ErrorCode::Invalid, e.to_string())).await?;
                        return Ok(());
                    }
                };
                let req: RequestFrame = match decode_message(&frame) {
                    Ok(r) => r,
                    Err(e) => {
                        send(&mut wr, &error(None, ErrorCode::Invalid, e.to_string())).await?;
                        return Ok(());
                    }
                };
                let id = req.id;
                if let Some(refusal) = service.groups.authorize(privilege, &req.request) {
                    tracing::info!(uid, op = req.request.op(), "refused");
                    send(&mut wr, &error(Some(id), ErrorCode::Forbidden, refusal)).await?;
                    continue;
                }
                if matches!(req.request, Request::Subscribe) && events.is_none() {
                    events = Some(service.tunnels.subscribe());
                }
                let answer = match handle(service, req.request, uid).await {
                    Ok(response) => ServerMessage::Response { id, response },
                    Err(error) => ServerMessage::Error { id: Some(id), error },
                };
                send(&mut wr, &answer).await?;
            }
            ev = next_event(&mut events) => {
                match ev {
                    Ok(ev) => send(&mut wr, &ServerMessage::Event(ev)).await?,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let msg = format!("subscriber too slow: {n} events dropped");
                        send(&mut wr, &error(None, ErrorCode::Limit, msg)).await?;
                        return Ok(());
                    }
                    Err(broadcast::error::RecvError::Closed) => events = None,
                }
            }
        }
    }
}

async fn next_event(
    events: &mut Option<broadcast::Receiver<Event>>,
) -> Result<Event, broadcast::error::RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

type Failure = ErrorReply;

/// Refuses to make a profile always-on where there is no kill switch
/// ([`killswitch::unsupported`]): it would run open.
fn always_on_possible(always_on: bool) -> Result<(), Failure> {
    match killswitch::unsupported() {
        Some(why) if always_on => Err(fail(ErrorCode::Invalid, why)),
        _ => Ok(()),
    }
}

async fn handle(service: &Service, request: Request, uid: u32) -> Result<Response, Failure> {
    let store = &service.store;
    let tunnels = &service.tunnels;
    match request {
        Request::List => {
            let profiles = store.list().await.map_err(internal)?;
            Ok(Response::Profiles {
                profiles: profiles
                    .into_iter()
                    .map(|p| ProfileInfo {
                        state: tunnels.status(&p.name).state,
                        name: p.name,
                        instance: p.instance,
                        mode: p.mode,
                        auto_connect: p.auto_connect,
                        always_on: p.always_on,
                    })
                    .collect(),
            })
        }
        Request::Status { name } => {
            let names = match name {
                Some(n) => {
                    store
                        .get(&n)
                        .await
                        .map_err(internal)?
                        .ok_or_else(|| not_found(&n))?;
                    vec![n]
                }
                None => store
                    .list()
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .map(|p| p.name)
                    .collect(),
            };
            Ok(Response::Status {
                tunnels: names
                    .iter()
                    .map(|n| {
                        let status = tunnels.status(n);
                        let running = matches!(
                            status.state,
                            chantry_core::ipc::TunnelState::Connecting
                                | chantry_core::ipc::TunnelState::Up
                        );
                        TunnelStatus {
                            stats: service.stats.latest(n).filter(|_| running),
                            ..status
                        }
                    })
                    .collect(),
            })
        }
        Request::Subscribe => Ok(Response::Done),
        Request::Connect { name } => {
            let p = store
                .get(&name)
                .await
                .map_err(internal)?
                .ok_or_else(|| not_found(&name))?;
            tracing::info!(uid, profile = name, "connect");
            tunnels.connect(&p).await.map_err(internal)?;
            Ok(Response::Done)
        }
        Request::Disconnect { name } => {
            store
                .get(&name)
                .await
                .map_err(internal)?
                .ok_or_else(|| not_found(&name))?;
            tracing::info!(uid, profile = name, "disconnect");
            tunnels.disconnect(&name).await.map_err(internal)?;
            Ok(Response::Done)
        }
        Request::Import(req) => {
            always_on_possible(req.always_on)?;
            if store.get(&req.name).await.map_err(internal)?.is_some() {
                return Err(fail(
                    ErrorCode::Exists,
                    format!("a profile named `{}` exists", req.name),
                ));
            }
            let p = profile::prepare(store, &req).map_err(|e| match e {
                ImportError::BadName(_) | ImportError::Invalid(_) => {
                    fail(ErrorCode::Invalid, e.to_string())
                }
                ImportError::Store(e) => internal(e),
            })?;
            if !store.insert(&p).await.map_err(internal)? {
                return Err(fail(
                    ErrorCode::Exists,
                    format!("a profile named `{}` exists", p.name),
                ));
            }
            tracing::info!(uid, profile = p.name, "imported");
            let _ = store
                .log_event(Some(&p.name), "import", &format!("imported by uid {uid}"))
                .await;
            Ok(Response::Done)
        }
        Request::Edit {
            name,
            auto_connect,
            always_on,
        } => {
            always_on_possible(always_on == Some(true))?;
            if !store
                .edit(&name, auto_connect, always_on)
                .await
                .map_err(internal)?
            {
                return Err(not_found(&name));
            }
            tunnels.refresh(&name);
            Ok(Response::Done)
        }
        Request::Remove { name } => {
            store
                .get(&name)
                .await
                .map_err(internal)?
                .ok_or_else(|| not_found(&name))?;
            let state = tunnels.status(&name).state;
            if tunnels.wanted(&name) {
                return Err(fail(
                    ErrorCode::Busy,
                    format!("`{name}` is {state}: disconnect it first"),
                ));
            }
            store.remove(&name).await.map_err(internal)?;
            tracing::info!(uid, profile = name, "removed");
            let _ = store
                .log_event(Some(&name), "remove", &format!("removed by uid {uid}"))
                .await;
            Ok(Response::Done)
        }
        Request::Export { name } => {
            let p = store
                .get(&name)
                .await
                .map_err(internal)?
                .ok_or_else(|| not_found(&name))?;
            profile::export(store, p)
                .map(Response::Export)
                .map_err(internal)
        }
        Request::ImportVicar(req) => {
            always_on_possible(req.always_on)?;
            vicar_import::import(store, req, uid).await
        }
        Request::Events { name, limit } => store
            .event_log(name.as_deref(), limit.min(logbook::MAX_LIMIT))
            .await
            .map(|events| Response::Events { events })
            .map_err(internal),
        Request::Logs { name, limit } => Ok(Response::Logs {
            lines: service.logs.lines(name.as_deref(), limit),
        }),
        Request::History { name, seconds } => {
            store
                .get(&name)
                .await
                .map_err(internal)?
                .ok_or_else(|| not_found(&name))?;
            let span = u64::from(seconds).min(super::store::SAMPLES_KEPT_S);
            let since = super::tunnels::unix_now().saturating_sub(span);
            store
                .history(&name, since)
                .await
                .map(|samples| Response::History { samples })
                .map_err(internal)
        }
        Request::GetSettings => settings::get(store).await,
        Request::SetSettings(new) => settings::set(store, &service.logs, tunnels, new, uid).await,
    }
}
