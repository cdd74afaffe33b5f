//! A minimal LSP client over a child process's stdio: Content-Length framing,
//! a reader thread, and request/response matching by id.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type SharedStdin = Arc<Mutex<Option<ChildStdin>>>;

pub struct Client {
    child: Child,
    stdin: SharedStdin,
    responses: Receiver<Value>,
    /// Responses that arrived while waiting for a different id.
    stray: HashMap<i64, Value>,
    next_id: i64,
    reader: Option<JoinHandle<()>>,
    /// Server→client notifications seen (diagnostics, logs, progress).
    pub notifications: Arc<AtomicU64>,
    /// Server→client requests answered by the reader thread.
    pub server_requests: Arc<AtomicU64>,
}

impl Client {
    /// Spawns `argv` with piped stdin/stdout; stderr goes to `stderr_log`.
    pub fn spawn(argv: &[String], cwd: &Path, stderr_log: &Path) -> io::Result<Client> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty server command"))?;
        let mut child = Command::new(program)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(stderr_log)?))
            .spawn()?;
        let stdin: SharedStdin = Arc::new(Mutex::new(child.stdin.take()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        let notifications = Arc::new(AtomicU64::new(0));
        let server_requests = Arc::new(AtomicU64::new(0));
        let reader = {
            let stdin = stdin.clone();
            let notifications = notifications.clone();
            let server_requests = server_requests.clone();
            std::thread::Builder::new()
                .name("lsp-reader".into())
                .spawn(move || read_loop(stdout, stdin, tx, notifications, server_requests))?
        };
        Ok(Client {
            child,
            stdin,
            responses: rx,
            stray: HashMap::new(),
            next_id: 1,
            reader: Some(reader),
            notifications,
            server_requests,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn notify(&self, method: &str, params: Value) -> io::Result<()> {
        write_message(
            &self.stdin,
            &json!({"jsonrpc": "2.0", "method": method, "params": params}),
        )
    }

    /// Sends a request and blocks until its response (result or error) arrives.
    pub fn request(&mut self, method: &str, params: Value, timeout: Duration) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        write_message(
            &self.stdin,
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )
        .map_err(|e| format!("{method}: write failed: {e}"))?;
        self.wait_for(id, method, timeout)
    }

    fn wait_for(&mut self, id: i64, method: &str, timeout: Duration) -> Result<Value, String> {
        if let Some(resp) = self.stray.remove(&id) {
            return Ok(resp);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.responses.recv_timeout(left) {
                Ok(resp) => match resp.get("id").and_then(Value::as_i64) {
                    Some(got) if got == id => return Ok(resp),
                    Some(other) => {
                        self.stray.insert(other, resp);
                    }
                    None => {} // e.g. an error response with id null
                },
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("{method}: no response within {timeout:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("{method}: server closed its stdout"))
                }
            }
        }
    }

    /// shutdown → exit → close stdin; kills the child if it is still alive after `grace`.
    /// Returns a note when the shutdown was not clean.
    pub fn shutdown(mut self, grace: Duration) -> Option<String> {
        let mut note = None;
        if let Err(e) = self.request("shutdown", Value::Null, Duration::from_secs(5)) {
            note = Some(e);
        }
        let _ = self.notify("exit", Value::Null);
        self.stdin.lock().unwrap().take(); // closes the pipe
        let deadline = Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    note.get_or_insert_with(|| format!("did not exit within {grace:?}; killed"));
                    break;
                }
            }
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        note
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Only reached on early error paths; `shutdown` already reaped the child otherwise.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn write_message(stdin: &SharedStdin, msg: &Value) -> io::Result<()> {
    let body = serde_json::to_vec(msg)?;
    let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    frame.extend_from_slice(&body);
    let mut guard = stdin.lock().unwrap();
    let w = guard
        .as_mut()
        .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "stdin closed"))?;
    w.write_all(&frame)?;
    w.flush()
}

/// Reads one framed message; `Ok(None)` on EOF.
fn read_message(r: &mut impl BufRead) -> io::Result<Option<Value>> {
    let mut len: Option<usize> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let header = line.trim_end();
        if header.is_empty() {
            if len.is_some() {
                break;
            }
            continue; // tolerate stray blank lines between frames
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                len = value.trim().parse().ok();
            }
        }
    }
    let mut body = vec![0; len.unwrap_or(0)];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn read_loop(
    stdout: ChildStdout,
    stdin: SharedStdin,
    responses: Sender<Value>,
    notifications: Arc<AtomicU64>,
    server_requests: Arc<AtomicU64>,
) {
    let mut r = BufReader::with_capacity(1 << 16, stdout);
    while let Ok(Some(msg)) = read_message(&mut r) {
        let has_id = msg.get("id").is_some_and(|id| !id.is_null());
        match (msg.get("method").and_then(Value::as_str), has_id) {
            (Some(method), true) => {
                server_requests.fetch_add(1, Ordering::Relaxed);
                let result = answer_server_request(method, msg.get("params"));
                let reply = json!({"jsonrpc": "2.0", "id": msg["id"], "result": result});
                let _ = write_message(&stdin, &reply);
            }
            (Some(_), false) => {
                notifications.fetch_add(1, Ordering::Relaxed);
            }
            (None, _) => {
                if responses.send(msg).is_err() {
                    break;
                }
            }
        }
    }
}

/// Null/empty answers: the client has no settings and accepts every registration.
fn answer_server_request(method: &str, params: Option<&Value>) -> Value {
    match method {
        "workspace/configuration" => {
            let n = params
                .and_then(|p| p.get("items"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            Value::Array(vec![Value::Null; n])
        }
        "workspace/workspaceFolders" => json!([]),
        "workspace/applyEdit" => json!({"applied": false}),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_consecutive_frames() {
        let data =
            b"Content-Length: 2\r\n\r\n{}Content-Length: 14\r\nContent-Type: x\r\n\r\n{\"id\":1,\"a\":2}";
        let mut r = BufReader::new(&data[..]);
        assert_eq!(read_message(&mut r).unwrap(), Some(json!({})));
        assert_eq!(read_message(&mut r).unwrap(), Some(json!({"id": 1, "a": 2})));
        assert_eq!(read_message(&mut r).unwrap(), None);
    }

    #[test]
    fn configuration_answer_matches_item_count() {
        let p = json!({"items": [{"section": "a"}, {"section": "b"}]});
        assert_eq!(
            answer_server_request("workspace/configuration", Some(&p)),
            json!([null, null])
        );
        assert_eq!(
            answer_server_request("client/registerCapability", None),
            Value::Null
        );
    }
}
