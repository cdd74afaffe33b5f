//! An in-process LSP client for protocol tests: the real server runs on a
//! `tokio::io::duplex` pair, messages are framed as on stdio.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{oneshot, Notify};

type Pending = Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

pub struct TestClient {
    writer: Arc<tokio::sync::Mutex<Writer>>,
    pending: Pending,
    next_id: Mutex<i64>,
    /// Every notification and server→client request, in arrival order.
    pub received: Arc<Mutex<Vec<Value>>>,
    arrived: Arc<Notify>,
    /// The title of the action to pick in a `window/showMessageRequest` (None: dismiss).
    message_choice: Arc<Mutex<Option<String>>>,
    pub server: tokio::task::JoinHandle<i32>,
    /// The server's process, when it runs as a child ([`TestClient::spawn`]).
    pub server_pid: Option<u32>,
}

async fn write_msg(w: &mut Writer, v: &Value) {
    let body = serde_json::to_vec(v).unwrap();
    w.write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())
        .await
        .unwrap();
    w.write_all(&body).await.unwrap();
    w.flush().await.unwrap();
}

/// What the test client answers to a server request.
fn answer(method: &str, params: &Value, config: &Value, choice: Option<&str>) -> Value {
    match method {
        "window/showMessageRequest" => params["actions"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|x| Some(x["title"].as_str().unwrap_or("")) == choice)
            })
            .cloned()
            .unwrap_or(Value::Null),
        "workspace/configuration" => {
            let n = params["items"].as_array().map(|a| a.len()).unwrap_or(1);
            Value::Array(vec![config.clone(); n])
        }
        "window/showDocument" => json!({ "success": true }),
        "workspace/applyEdit" => json!({ "applied": true }),
        _ => Value::Null,
    }
}

impl TestClient {
    /// Starts the server in-process. `config` answers `workspace/configuration`. The
    /// server reads its user-level settings from this process's environment, which
    /// [`super::env::hermetic`] has made hermetic.
    pub fn start(config: Value) -> Self {
        super::env::hermetic();
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let (server_read, server_write) = tokio::io::split(server_io);
        let server = tokio::spawn(aisci::lsp::serve(server_read, server_write));
        let (client_read, client_write) = tokio::io::split(client_io);
        Self::over(client_read, Box::new(client_write), server, config)
    }

    /// Starts the built `aisci lsp` as a child process with only PATH and `env`, for
    /// tests that need an environment of their own (a user config file the server may
    /// write, say), which the in-process server cannot have.
    pub fn spawn(config: Value, env: &[(&str, &std::ffi::OsStr)]) -> Self {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aisci"));
        cmd.arg("lsp")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting aisci lsp");
        let pid = child.id();
        let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let server =
            tokio::spawn(async move { child.wait().await.ok().and_then(|s| s.code()).unwrap_or(-1) });
        let mut c = Self::over(stdout, Box::new(stdin), server, config);
        c.server_pid = pid;
        c
    }

    fn over(
        client_read: impl AsyncRead + Send + Unpin + 'static,
        client_write: Writer,
        server: tokio::task::JoinHandle<i32>,
        config: Value,
    ) -> Self {
        let writer = Arc::new(tokio::sync::Mutex::new(client_write));
        let pending: Pending = Default::default();
        let received: Arc<Mutex<Vec<Value>>> = Default::default();
        let arrived = Arc::new(Notify::new());
        let message_choice: Arc<Mutex<Option<String>>> = Default::default();

        let (p, r, a, w, c) = (
            pending.clone(),
            received.clone(),
            arrived.clone(),
            writer.clone(),
            message_choice.clone(),
        );
        tokio::spawn(async move {
            let mut reader = BufReader::new(client_read);
            loop {
                let mut len = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; len.expect("Content-Length")];
                reader.read_exact(&mut body).await.unwrap();
                let msg: Value = serde_json::from_slice(&body).unwrap();
                let is_response = msg.get("method").is_none();
                if is_response {
                    // A parse error is answered with id null: nobody waits for it.
                    let Some(id) = msg["id"].as_i64() else {
                        r.lock().unwrap().push(msg);
                        continue;
                    };
                    match p.lock().unwrap().remove(&id) {
                        Some(tx) => {
                            let _ = tx.send(msg);
                        }
                        // An answer to a message sent raw: kept for `wait_for`.
                        None => {
                            r.lock().unwrap().push(msg);
                            a.notify_waiters();
                        }
                    }
                    continue;
                }
                if msg.get("id").is_some() {
                    let reply = json!({
                        "jsonrpc": "2.0",
                        "id": msg["id"],
                        "result": answer(
                            msg["method"].as_str().unwrap(),
                            &msg["params"],
                            &config,
                            c.lock().unwrap().as_deref(),
                        ),
                    });
                    write_msg(&mut *w.lock().await, &reply).await;
                }
                r.lock().unwrap().push(msg);
                a.notify_waiters();
            }
        });
        Self {
            writer,
            pending,
            next_id: Mutex::new(0),
            received,
            arrived,
            message_choice,
            server,
            server_pid: None,
        }
    }

    /// Answers every later `window/showMessageRequest` with the action titled `title`
    /// (`None`: dismisses it).
    pub fn answer_message_requests_with(&self, title: Option<&str>) {
        *self.message_choice.lock().unwrap() = title.map(str::to_owned);
    }

    /// Sends a request and returns the whole response (with `result` or `error`).
    pub async fn request_raw(&self, method: &str, params: Value) -> Value {
        let id = {
            let mut n = self.next_id.lock().unwrap();
            *n += 1;
            *n
        };
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let msg = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        write_msg(&mut *self.writer.lock().await, &msg).await;
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .unwrap_or_else(|_| panic!("no answer to {method} within 10 s"))
            .unwrap()
    }

    /// Sends a request and returns its `result`, failing the test on an error.
    pub async fn request(&self, method: &str, params: Value) -> Value {
        let resp = self.request_raw(method, params).await;
        assert!(resp.get("error").is_none(), "{method} failed: {resp}");
        resp["result"].clone()
    }

    pub async fn notify(&self, method: &str, params: Value) {
        let msg = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        write_msg(&mut *self.writer.lock().await, &msg).await;
    }

    /// Sends raw bytes (for malformed-input tests).
    /// Writes bytes to the server as they are (no framing added).
    pub async fn send_bytes(&self, bytes: &[u8]) {
        let mut w = self.writer.lock().await;
        w.write_all(bytes).await.unwrap();
        w.flush().await.unwrap();
    }

    pub async fn send_raw(&self, body: &str) {
        let mut w = self.writer.lock().await;
        w.write_all(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
            .await
            .unwrap();
        w.flush().await.unwrap();
    }

    pub async fn initialize(&self, capabilities: Value, options: Value) -> Value {
        let result = self
            .request(
                "initialize",
                json!({ "capabilities": capabilities, "initializationOptions": options }),
            )
            .await;
        self.notify("initialized", json!({})).await;
        result
    }

    /// Waits until a received message satisfies `pred`, and returns it.
    pub async fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let notified = self.arrived.notified();
            if let Some(v) = self.received.lock().unwrap().iter().find(|m| pred(m)) {
                return v.clone();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let got = self.received.lock().unwrap().clone();
                panic!(
                    "timed out waiting for {what}; received: {}",
                    serde_json::to_string_pretty(&got).unwrap()
                );
            }
        }
    }

    pub fn messages(&self, method: &str) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m["method"] == method)
            .cloned()
            .collect()
    }

    /// The titles of the code actions at the start of the document `uri`.
    pub async fn code_action_titles(&self, uri: &str) -> Vec<String> {
        let actions = self
            .request(
                "textDocument/codeAction",
                json!({
                    "textDocument": { "uri": uri },
                    "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 0 } },
                    "context": { "diagnostics": [] }
                }),
            )
            .await;
        actions
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["title"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn open(&self, uri: &str, language: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": language, "version": 1, "text": text } }),
        )
        .await;
    }
}

pub fn file_uri(path: &std::path::Path) -> String {
    url_from_path(path)
}

fn url_from_path(path: &std::path::Path) -> String {
    let mut s = String::from("file://");
    for c in path.to_str().unwrap().chars() {
        match c {
            ' ' => s.push_str("%20"),
            _ => s.push(c),
        }
    }
    s
}
