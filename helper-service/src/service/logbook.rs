//! The log lines the service keeps and streams: a bounded ring of the
//! service's own tracing lines and of every guardian's stderr lines, at or
//! above the configured level ([`Settings::log_level`]), answered by
//! `Request::Logs` and sent as [`Event::Log`] to subscribers.
//!
//! The service's lines arrive through [`LogLayer`], a tracing layer
//! installed next to the stderr formatter ([`install`]). A guardian's
//! lines are handed to [`guardian_line`], which parses their level and
//! re-emits them as tracing events of target [`GUARDIAN_TARGET`] with a
//! `profile` field, so that they reach stderr (the journal) and the ring
//! the same way. While reading them the book also notes when a tunnel's
//! key exchange starts and ends ([`LogBook::exchange_under_way`]): that is
//! how the service can tell a rekey ([`chantry_core::ipc::Stage::Rekeying`]).
//!
//! Nothing here adds anything to a line: the service never logs key
//! material or passphrases (their types print as `redacted`), and a line
//! longer than [`MAX_LINE`] bytes is cut.
//!
//! [`Settings::log_level`]: chantry_core::ipc::Settings::log_level

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use chantry_core::ipc::{Event, LogLine};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// Lines the ring holds (all profiles and the service together).
pub const RING_LINES: usize = 2000;
/// Longest line kept, in bytes; longer ones are cut (at a character
/// boundary) and end with `…`.
pub const MAX_LINE: usize = 1024;
/// The most lines one `Request::Logs` returns.
pub const MAX_LIMIT: u32 = 1000;
/// The tracing target of re-emitted guardian lines.
pub const GUARDIAN_TARGET: &str = "chantryd::guardian";
/// How long a started key exchange counts as under way without a line
/// that ends it (a lost line must not leave a tunnel "rekeying").
pub const EXCHANGE_STALE: Duration = Duration::from_secs(120);

/// Substring of the chapel's line when a key exchange starts (its
/// `exchange event=ExchangeStarted { .. }`).
const EXCHANGE_STARTED: &str = "event=ExchangeStarted";
/// Substrings of the lines that end one: a new TX key (chapel's event and
/// bless's line), completion, time-out, back-off.
const EXCHANGE_ENDED: [&str; 5] = [
    "event=TxKeyInstalled",
    "TX key installed",
    "event=ExchangeCompleted",
    "event=ExchangeTimedOut",
    "event=Backoff",
];

/// The levels a line can have, least verbose first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `error`.
    Error,
    /// `warn`.
    Warn,
    /// `info`.
    Info,
    /// `debug` (tracing's `trace` lines count as debug).
    Debug,
}

impl LogLevel {
    /// The name used in settings and [`LogLine::level`].
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }

    /// The level of a tracing event.
    pub fn of(level: Level) -> LogLevel {
        match level {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        }
    }

    fn from_u8(v: u8) -> LogLevel {
        match v {
            0 => LogLevel::Error,
            1 => LogLevel::Warn,
            2 => LogLevel::Info,
            _ => LogLevel::Debug,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level name that is not one of `error`, `warn`, `info`, `debug`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log level {0:?}: use error, warn, info or debug")]
pub struct BadLevel(pub String);

impl FromStr for LogLevel {
    type Err = BadLevel;

    fn from_str(s: &str) -> Result<LogLevel, BadLevel> {
        match s {
            "error" => Ok(LogLevel::Error),
            "warn" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            other => Err(BadLevel(other.to_owned())),
        }
    }
}

/// The ring of kept lines, the level that decides what is kept, and the
/// stream new lines go to.
#[derive(Debug)]
pub struct LogBook {
    ring: Mutex<VecDeque<LogLine>>,
    capacity: usize,
    level: AtomicU8,
    stream: OnceLock<broadcast::Sender<Event>>,
    exchanges: Mutex<HashMap<String, Instant>>,
}

impl LogBook {
    /// An empty book that keeps up to `capacity` lines at level `info`.
    pub fn new(capacity: usize) -> Arc<LogBook> {
        Arc::new(LogBook {
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(RING_LINES))),
            capacity: capacity.max(1),
            level: AtomicU8::new(LogLevel::Info as u8),
            stream: OnceLock::new(),
            exchanges: Mutex::default(),
        })
    }

    /// The tracing layer that feeds this book (see [`install`]).
    pub fn layer(self: &Arc<Self>) -> LogLayer {
        LogLayer { book: self.clone() }
    }

    /// Sends every later kept line as [`Event::Log`] on `events`. Only the
    /// first call counts.
    pub fn stream_to(&self, events: broadcast::Sender<Event>) {
        let _ = self.stream.set(events);
    }

    /// The least severe level kept.
    pub fn level(&self) -> LogLevel {
        LogLevel::from_u8(self.level.load(Ordering::Relaxed))
    }

    /// Keeps lines at `level` and above from now on.
    pub fn set_level(&self, level: LogLevel) {
        self.level.store(level as u8, Ordering::Relaxed);
    }

    fn lock_ring(&self) -> MutexGuard<'_, VecDeque<LogLine>> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_exchanges(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.exchanges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a line (if its level is kept) and streams it.
    pub fn push(&self, level: LogLevel, profile: Option<String>, message: &str) {
        if level > self.level() {
            return;
        }
        let line = LogLine {
            at: super::tunnels::unix_now(),
            level: level.as_str().to_owned(),
            profile,
            message: cut(message),
        };
        {
            let mut ring = self.lock_ring();
            while ring.len() >= self.capacity {
                ring.pop_front();
            }
            ring.push_back(line.clone());
        }
        if let Some(events) = self.stream.get() {
            let _ = events.send(Event::Log(line));
        }
    }

    /// The newest `limit` (at most [`MAX_LIMIT`]) kept lines, of `profile`
    /// only if given, oldest first.
    pub fn lines(&self, profile: Option<&str>, limit: u32) -> Vec<LogLine> {
        let limit = usize::try_from(limit.min(MAX_LIMIT)).unwrap_or(0);
        let ring = self.lock_ring();
        let mut out: Vec<LogLine> = ring
            .iter()
            .rev()
            .filter(|l| profile.is_none() || l.profile.as_deref() == profile)
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// Notes the key exchange markers of a guardian line of `profile`.
    pub fn observe_guardian(&self, profile: &str, message: &str) {
        if message.contains(EXCHANGE_STARTED) {
            self.lock_exchanges()
                .insert(profile.to_owned(), Instant::now());
        } else if EXCHANGE_ENDED.iter().any(|m| message.contains(m)) {
            self.lock_exchanges().remove(profile);
        }
    }

    /// True while `profile`'s guardian has said that a key exchange
    /// started and not yet that it ended (for at most
    /// [`EXCHANGE_STALE`]).
    pub fn exchange_under_way(&self, profile: &str) -> bool {
        self.lock_exchanges()
            .get(profile)
            .is_some_and(|t| t.elapsed() < EXCHANGE_STALE)
    }

    /// Forgets `profile`'s exchange (its tunnel stopped).
    pub fn forget_exchange(&self, profile: &str) {
        self.lock_exchanges().remove(profile);
    }
}

/// `message` cut to [`MAX_LINE`] bytes at a character boundary.
fn cut(message: &str) -> String {
    if message.len() <= MAX_LINE {
        return message.to_owned();
    }
    let mut end = MAX_LINE - '…'.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// Installs the process's tracing subscriber for `chantryd service`: the
/// stderr formatter (filtered by `RUST_LOG`, default `info`, as every
/// chantryd command) and `book`'s layer, which sees `chantry*` targets up
/// to `debug` and keeps what its own level allows. Does nothing if a
/// subscriber is already installed.
pub fn install(book: &Arc<LogBook>) {
    install_with(
        book,
        std::io::stderr,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
}

/// [`install`] with the formatted lines written to `writer` instead of
/// stderr (the Windows service, which has none, appends to a file),
/// with ANSI colours if `ansi`.
pub fn install_with<W>(book: &Arc<LogBook>, writer: W, ansi: bool)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let formatted = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false)
        .with_filter(filter);
    let _ = tracing_subscriber::registry()
        .with(formatted)
        .with(book.layer().with_filter(layer_filter()))
        .try_init();
}

/// What [`LogLayer`] is shown: Chantry's own targets, `debug` and up.
pub fn layer_filter() -> tracing_subscriber::filter::FilterFn {
    tracing_subscriber::filter::filter_fn(|m| {
        m.target().starts_with("chantry") && *m.level() <= Level::DEBUG
    })
}

/// The tracing layer of a [`LogBook`]: each event becomes a line, its
/// `profile` field the line's profile, its other fields `key=value`
/// after the message.
#[derive(Debug)]
pub struct LogLayer {
    book: Arc<LogBook>,
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        if meta.target() == GUARDIAN_TARGET
            && let Some(p) = &fields.profile
        {
            self.book.observe_guardian(p, &fields.message);
        }
        let text = fields.text();
        self.book
            .push(LogLevel::of(*meta.level()), fields.profile, &text);
    }
}

/// The fields of one event.
#[derive(Debug, Default)]
struct Fields {
    message: String,
    profile: Option<String>,
    rest: String,
}

impl Fields {
    fn text(&self) -> String {
        format!("{}{}", self.message, self.rest)
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "profile" => self.profile = Some(value.to_owned()),
            name => {
                use std::fmt::Write as _;
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "profile" => {
                self.profile = Some(format!("{value:?}").trim_matches('"').to_owned());
            }
            name => {
                use std::fmt::Write as _;
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

/// A guardian's stderr line as the service keeps it: its level (from the
/// tracing formatter's level word; `error` for the guardian's own exit
/// message and for panics; else `info`) and the line without its
/// timestamp and level word.
pub fn parse_guardian(raw: &str) -> (LogLevel, String) {
    let clean = strip_ansi(raw);
    let line = clean.trim();
    let mut words = line.splitn(3, ' ');
    let first = words.next().unwrap_or("");
    let looks_like_time = first.starts_with(|c: char| c.is_ascii_digit()) && first.contains(':');
    if looks_like_time {
        let rest = line[first.len()..].trim_start();
        let (word, after) = rest.split_once(' ').unwrap_or((rest, ""));
        let level = match word {
            "ERROR" => Some(LogLevel::Error),
            "WARN" => Some(LogLevel::Warn),
            "INFO" => Some(LogLevel::Info),
            "DEBUG" | "TRACE" => Some(LogLevel::Debug),
            _ => None,
        };
        if let Some(level) = level {
            return (level, after.trim_start().to_owned());
        }
    }
    let level = if line.starts_with("chantryd: ") || line.contains(" panicked at ") {
        LogLevel::Error
    } else {
        LogLevel::Info
    };
    (level, line.to_owned())
}

/// `s` without ANSI colour sequences (`ESC [ ... letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Hands one stderr line of `profile`'s guardian to the logs: parsed
/// ([`parse_guardian`]) and re-emitted as a tracing event of target
/// [`GUARDIAN_TARGET`] with the profile, which the stderr formatter and
/// the [`LogLayer`] of the service pick up.
pub fn guardian_line(profile: &str, raw: &str) {
    let (level, message) = parse_guardian(raw);
    match level {
        LogLevel::Error => {
            tracing::error!(target: GUARDIAN_TARGET, profile, "{message}");
        }
        LogLevel::Warn => tracing::warn!(target: GUARDIAN_TARGET, profile, "{message}"),
        LogLevel::Info => tracing::info!(target: GUARDIAN_TARGET, profile, "{message}"),
        LogLevel::Debug => {
            tracing::debug!(target: GUARDIAN_TARGET, profile, "{message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!("warn".parse::<LogLevel>(), Ok(LogLevel::Warn));
        assert_eq!(
            "verbose".parse::<LogLevel>().unwrap_err().to_string(),
            "log level \"verbose\": use error, warn, info or debug"
        );
        assert!(LogLevel::Error < LogLevel::Debug);
        assert_eq!(LogLevel::of(Level::TRACE), LogLevel::Debug);
    }

    #[test]
    fn guardian_lines_lose_time_and_level_word() {
        assert_eq!(
            parse_guardian("2026-11-05T08:31:02.123456Z  WARN chantry_service::roles::chapel: cathedral unresponsive for 45 s cathedral=192.0.2.1:4500"),
            (
                LogLevel::Warn,
                "chantry_service::roles::chapel: cathedral unresponsive for 45 s cathedral=192.0.2.1:4500".into()
            )
        );
        assert_eq!(
            parse_guardian(
                "\u{1b}[2m2026-11-05T08:31:02Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m all roles sandboxed and running"
            ),
            (LogLevel::Info, "all roles sandboxed and running".into())
        );
        assert_eq!(
            parse_guardian("2026-11-05T08:31:02Z DEBUG x"),
            (LogLevel::Debug, "x".into())
        );
        assert_eq!(
            parse_guardian("chantryd: /x.conf: secret: no such file"),
            (
                LogLevel::Error,
                "chantryd: /x.conf: secret: no such file".into()
            )
        );
        assert_eq!(
            parse_guardian("thread 'main' panicked at src/x.rs:1:2:"),
            (
                LogLevel::Error,
                "thread 'main' panicked at src/x.rs:1:2:".into()
            )
        );
        assert_eq!(
            parse_guardian("plain words"),
            (LogLevel::Info, "plain words".into())
        );
    }

    #[test]
    fn the_ring_is_bounded_filtered_and_levelled() {
        let book = LogBook::new(3);
        for i in 0..5 {
            book.push(
                LogLevel::Info,
                Some(format!("p{}", i % 2)),
                &format!("l{i}"),
            );
        }
        book.push(LogLevel::Debug, None, "dropped at info");
        let all: Vec<String> = book
            .lines(None, 10)
            .into_iter()
            .map(|l| l.message)
            .collect();
        assert_eq!(all, ["l2", "l3", "l4"]);
        let p0: Vec<String> = book
            .lines(Some("p0"), 10)
            .into_iter()
            .map(|l| l.message)
            .collect();
        assert_eq!(p0, ["l2", "l4"]);
        assert_eq!(book.lines(None, 1)[0].message, "l4");
        book.set_level(LogLevel::Debug);
        book.push(LogLevel::Debug, None, "kept at debug");
        assert_eq!(book.lines(None, 1)[0].level, "debug");
        book.set_level(LogLevel::Error);
        book.push(LogLevel::Warn, None, "dropped at error");
        assert_eq!(book.lines(None, 1)[0].message, "kept at debug");
    }

    #[test]
    fn long_lines_are_cut_at_a_character() {
        let long = "é".repeat(MAX_LINE);
        let c = cut(&long);
        assert!(c.len() <= MAX_LINE && c.ends_with('…'), "{}", c.len());
        assert_eq!(cut("short"), "short");
    }

    #[test]
    fn the_layer_keeps_service_and_guardian_lines_and_streams_them() {
        let book = LogBook::new(100);
        let (tx, mut rx) = broadcast::channel(16);
        book.stream_to(tx);
        let subscriber =
            tracing_subscriber::registry().with(book.layer().with_filter(layer_filter()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(profile = "home", state = %"up", "tunnel state");
            tracing::debug!("not kept at info");
            tracing::info!(target: "sqlx::query", "not Chantry's");
            guardian_line(
                "home",
                "2026-11-05T08:31:02Z  INFO chantry_service::roles::chapel: exchange event=ExchangeStarted { reason: NoKeys, spi: 7 }",
            );
        });
        let lines = book.lines(None, 10);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].message, "tunnel state state=up");
        assert_eq!(lines[0].profile.as_deref(), Some("home"));
        assert_eq!(lines[1].level, "info");
        assert!(
            lines[1]
                .message
                .starts_with("chantry_service::roles::chapel: exchange")
        );
        assert!(book.exchange_under_way("home"));
        assert!(!book.exchange_under_way("other"));
        match rx.try_recv() {
            Ok(Event::Log(l)) => assert_eq!(l, lines[0]),
            other => panic!("{other:?}"),
        }
        tracing::subscriber::with_default(
            tracing_subscriber::registry().with(book.layer().with_filter(layer_filter())),
            || {
                guardian_line(
                    "home",
                    "2026-11-05T08:31:09Z  INFO chantry_service::roles::bless: TX key installed spi=00000007",
                )
            },
        );
        assert!(!book.exchange_under_way("home"));
    }

    #[test]
    fn the_markers_match_what_the_chapel_logs() {
        // The chapel logs `exchange event=?e`; these are the Debug forms.
        use chantry_core::exchange::{Event as Ex, StartReason};
        let started = format!(
            "event={:?}",
            Ex::ExchangeStarted {
                reason: StartReason::NoKeys,
                spi: 1
            }
        );
        assert!(started.contains(EXCHANGE_STARTED), "{started}");
        for ended in [
            format!("event={:?}", Ex::TxKeyInstalled { spi: 1, peer_id: 2 }),
            format!("event={:?}", Ex::ExchangeCompleted { spi: 1 }),
            format!(
                "event={:?}",
                Ex::ExchangeTimedOut {
                    spi: 1,
                    timeouts: 1
                }
            ),
        ] {
            assert!(EXCHANGE_ENDED.iter().any(|m| ended.contains(m)), "{ended}");
        }
    }
}
