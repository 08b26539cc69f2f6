//! A minimal LSP client for the tests: starts `tvix lsp`, frames JSON-RPC messages with
//! `Content-Length` headers, and reads the server's messages on a thread.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A running server and what it sent that no request has consumed yet.
pub struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    pending: Vec<Value>,
    next_id: i64,
    /// The capabilities the server announced.
    pub capabilities: Value,
}

/// How long any one answer may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(60);

impl Client {
    /// Starts `tvix lsp` and runs `initialize` with these initialization options.
    pub fn start(options: Value) -> Client {
        Client::start_with_env(options, &[])
    }

    /// [`Client::start`] with extra environment variables for the server.
    pub fn start_with_env(options: Value, env: &[(&str, &str)]) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tvix"))
            .arg("lsp")
            .env_remove("NIX_PATH")
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tvix lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        length = v.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("Content-Length header")];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let msg: Value = serde_json::from_slice(&body).expect("JSON from the server");
                if tx.send(msg).is_err() {
                    return;
                }
            }
        });
        let mut c = Client {
            child,
            stdin,
            incoming: rx,
            pending: Vec::new(),
            next_id: 0,
            capabilities: Value::Null,
        };
        let init = c.request(
            "initialize",
            json!({"processId": null, "rootUri": null, "capabilities": {}, "initializationOptions": options}),
        );
        assert!(
            init["result"]["capabilities"]["hoverProvider"]
                .as_bool()
                .unwrap_or(false),
            "{init}"
        );
        c.capabilities = init["result"]["capabilities"].clone();
        c.notify("initialized", json!({}));
        c
    }

    fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len())
            .expect("write to server");
        self.stdin.flush().expect("flush");
    }

    /// Sends a notification.
    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn next(&mut self, deadline: Instant) -> Option<Value> {
        match self
            .incoming
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(v) => Some(v),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("the server closed its output"),
        }
    }

    /// Sends a request and returns the whole response (`result` or `error`).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.response(id, method)
    }

    /// Sends a request without waiting for its answer; returns its id.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Waits for the response to request `id`.
    pub fn response(&mut self, id: i64, method: &str) -> Value {
        if let Some(i) = self
            .pending
            .iter()
            .position(|m| m.get("id") == Some(&json!(id)) && m.get("method").is_none())
        {
            return self.pending.remove(i);
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let msg = self
                .next(deadline)
                .unwrap_or_else(|| panic!("no answer to {method}"));
            if msg.get("id") == Some(&json!(id)) && msg.get("method").is_none() {
                return msg;
            }
            if msg.get("method").is_some() && msg.get("id").is_some() {
                // A request from the server (e.g. a configuration request): answer null.
                let reply = json!({"jsonrpc": "2.0", "id": msg["id"], "result": null});
                self.send(reply);
                // Kept (as answered) for tests that check what the server asked.
                self.pending.push(msg);
                continue;
            }
            self.pending.push(msg);
        }
    }

    /// The `result` of a request, failing on an error response.
    pub fn result(&mut self, method: &str, params: Value) -> Value {
        let r = self.request(method, params);
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"].clone()
    }

    /// Waits for diagnostics of `uri` that satisfy `pred` and returns them.
    pub fn diagnostics_until(&mut self, uri: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + TIMEOUT;
        let mut last = Vec::new();
        loop {
            while let Some(i) = self.pending.iter().position(|m| {
                m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
            }) {
                let m = self.pending.remove(i);
                last = m["params"]["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if pred(&last) {
                    return last;
                }
            }
            match self.next(deadline) {
                Some(m) => self.pending.push(m),
                None => panic!("diagnostics of {uri} never matched; last: {last:?}"),
            }
        }
    }

    /// Waits until the server has sent a `method` notification whose message contains
    /// `needle` (notifications may come after the answer of the request that caused them),
    /// then removes and returns all `method` notifications received so far.
    pub fn messages_until(&mut self, method: &str, needle: &str) -> Vec<Value> {
        let deadline = Instant::now() + TIMEOUT;
        let has = |m: &Value| {
            m["method"] == method
                && m["params"]["message"]
                    .as_str()
                    .is_some_and(|t| t.contains(needle))
        };
        while !self.pending.iter().any(has) {
            match self.next(deadline) {
                Some(m) => self.pending.push(m),
                None => panic!("no {method} saying '{needle}'; got {:?}", self.pending),
            }
        }
        self.take(method)
    }

    /// Removes and returns what the server sent with `method` (notifications, and requests
    /// already answered) that no call has consumed, in order.
    pub fn take(&mut self, method: &str) -> Vec<Value> {
        let (taken, kept) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|m| m["method"] == method);
        self.pending = kept;
        taken
    }

    /// Shuts the server down and checks it exits cleanly.
    pub fn shutdown(mut self) {
        let r = self.request("shutdown", Value::Null);
        assert!(r.get("error").is_none(), "{r}");
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "tvix lsp exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "tvix lsp did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fixture: text with `⟨name⟩` cursor markers taken out, and where each marker was.
pub struct Fixture {
    /// The text without markers.
    pub text: String,
    markers: Vec<(String, usize)>,
}

impl Fixture {
    /// Reads `tests/lsp/NAME` and strips its markers.
    pub fn load(name: &str) -> Fixture {
        let path = format!("{}/tests/lsp/{name}", env!("CARGO_MANIFEST_DIR"));
        let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut text = String::new();
        let mut markers = Vec::new();
        let mut rest = raw.as_str();
        while let Some(i) = rest.find('⟨') {
            text.push_str(&rest[..i]);
            let end = rest[i..].find('⟩').expect("closed marker") + i;
            markers.push((rest[i + '⟨'.len_utf8()..end].to_string(), text.len()));
            rest = &rest[end + '⟩'.len_utf8()..];
        }
        text.push_str(rest);
        Fixture { text, markers }
    }

    /// The LSP position of marker `name`.
    pub fn pos(&self, name: &str) -> Value {
        let offset = self
            .markers
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no marker {name}"))
            .1;
        self.position_of(offset)
    }

    /// The LSP position of a byte offset (the fixtures are ASCII around markers).
    pub fn position_of(&self, offset: usize) -> Value {
        let before = &self.text[..offset];
        let line = before.matches('\n').count();
        let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        json!({"line": line, "character": col})
    }
}
