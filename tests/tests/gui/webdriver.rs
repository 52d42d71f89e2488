//! A minimal W3C WebDriver client (HTTP/1.1 over a loopback TCP
//! connection, one request per connection): enough to drive the app
//! through tauri-driver and WebKitWebDriver.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key W3C uses for element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver failure: the HTTP status and the driver's error.
#[derive(Debug)]
pub struct WdError(pub String);

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session with the app.
#[derive(Debug)]
pub struct Session {
    port: u16,
    id: String,
}

/// One HTTP exchange with the driver on 127.0.0.1:`port`.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, WdError> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| WdError(format!("connect to the driver on port {port}: {e}")))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| WdError(e.to_string()))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| WdError(format!("write to the driver: {e}")))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| WdError(format!("read from the driver: {e}")))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            WdError(format!(
                "no HTTP header in {:?}",
                String::from_utf8_lossy(&raw)
            ))
        })?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut payload = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload);
    }
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let v: Value = if payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&payload).map_err(|e| {
            WdError(format!(
                "driver answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&payload)
            ))
        })?
    };
    if status != 200 {
        return Err(WdError(format!("{method} {path}: HTTP {status}: {v}")));
    }
    Ok(v["value"].clone())
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        let end = (start + size).min(b.len());
        out.extend_from_slice(&b[start..end]);
        b = b.get(end + 2..).unwrap_or_default();
    }
}

impl Session {
    /// Waits (bounded) for the driver on `port` to answer, then opens a
    /// session that starts `app` with `args`.
    pub fn start(port: u16, app: &Path, args: &[&str]) -> Result<Session, WdError> {
        let begin = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if begin.elapsed() > Duration::from_secs(20) {
                return Err(WdError(format!("no driver on port {port} after 20 s")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "tauri:options": { "application": app, "args": args }
                }
            }
        });
        let v = http(port, "POST", "/session", Some(&caps))?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| WdError(format!("no session id in {v}")))?
            .to_owned();
        Ok(Session { port, id })
    }

    /// One command. tauri-driver answers nothing when its pooled
    /// connection to WebKitWebDriver was closed under it (the command did
    /// not reach WebKit): that case is sent once more.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let path = format!("/session/{}{path}", self.id);
        match http(self.port, method, &path, body.as_ref()) {
            Err(WdError(e)) if e.starts_with("no HTTP header") => {
                std::thread::sleep(Duration::from_millis(200));
                http(self.port, method, &path, body.as_ref())
            }
            other => other,
        }
    }

    /// Finds `css` and does `f` with it, again (at most 3 times) if the
    /// page redrew the element in between.
    fn with_element<T>(
        &self,
        css: &str,
        f: impl Fn(&str) -> Result<T, WdError>,
    ) -> Result<T, WdError> {
        let mut tries = 0;
        loop {
            let el = self.find(css)?;
            match f(&el) {
                Err(WdError(e)) if e.contains("stale element reference") && tries < 3 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// The first element matching `css`.
    pub fn find(&self, css: &str) -> Result<String, WdError> {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        v[ELEMENT]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| WdError(format!("no element id for {css}: {v}")))
    }

    /// Clicks the element matching `css` (a real click, through WebKit).
    pub fn click(&self, css: &str) -> Result<(), WdError> {
        self.with_element(css, |el| {
            self.call("POST", &format!("/element/{el}/click"), Some(json!({})))
                .map(drop)
        })
    }

    /// Types `text` into the element matching `css` after clearing it.
    pub fn type_into(&self, css: &str, text: &str) -> Result<(), WdError> {
        self.with_element(css, |el| {
            self.call("POST", &format!("/element/{el}/clear"), Some(json!({})))?;
            self.call(
                "POST",
                &format!("/element/{el}/value"),
                Some(json!({"text": text})),
            )
            .map(drop)
        })
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub fn run(&self, script: &str, args: Value) -> Result<Value, WdError> {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Ends the session (the driver stops the app).
    pub fn end(self) -> Result<(), WdError> {
        http(self.port, "DELETE", &format!("/session/{}", self.id), None).map(drop)
    }

    /// Polls `script` (bounded by `limit`) until `done` likes its value;
    /// returns the last value and whether it was liked. Errors of the
    /// script (an element re-drawn under it) count as "not yet".
    pub fn wait_for(
        &self,
        script: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> (Value, bool) {
        let begin = Instant::now();
        let mut last = Value::Null;
        while begin.elapsed() < limit {
            match self.run(script, json!([])) {
                Ok(v) if done(&v) => return (v, true),
                Ok(v) => last = v,
                Err(e) => last = Value::String(e.0),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        (last, false)
    }
}
