//! The benchmark phases. All servers run side by side: each phase is applied to
//! every server before the next begins, and timed requests alternate between
//! servers, so load from elsewhere on the machine falls on all of them alike.

use crate::client::Client;
use crate::paper::{self, Paper};
use crate::report::{EditStats, Latency, Measure, ServerResult};
use crate::{capable, docgen, file_uri, init_options, label_of, line_infos, pos, rss_kb, write_workspace};
use crate::{LineInfo, Opts};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Ideas in the generated `ideas.json` (aisci's ideas archive, hovered and lensed).
pub const IDEAS: usize = 50;

struct Session {
    r: ServerResult,
    /// `None` once the server failed; the failure is in `r.notes`.
    client: Option<Client>,
    pid: u32,
    caps: Value,
    ws: PathBuf,
    uri: String,
    ideas_uri: String,
    /// Empty without `--paper`.
    paper_uri: String,
}

impl Session {
    fn fail(&mut self, e: String) {
        eprintln!("   {}: {e}", self.r.label);
        self.r.notes.push(format!("aborted: {e}"));
        self.client = None; // Drop kills the child
    }

    fn rss(&self) -> Option<crate::report::Rss> {
        self.client.as_ref().and_then(|_| rss_kb(self.pid))
    }

    fn uri(&self, doc: Doc) -> &str {
        match doc {
            Doc::Experiment => &self.uri,
            Doc::Ideas => &self.ideas_uri,
            Doc::Paper => &self.paper_uri,
        }
    }
}

/// The open document a timed request is sent on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Doc {
    Experiment,
    Ideas,
    Paper,
}

/// A timed request kind; `row` names it in the report.
struct Timed<'a> {
    row: &'static str,
    method: &'static str,
    cap: &'static str,
    doc: Doc,
    /// Params of request `i` on the document at `uri`.
    params: ParamsFn<'a>,
}

type ParamsFn<'a> = Box<dyn Fn(usize, &str) -> Value + 'a>;

/// Requests walk a file (`line = 37·i + 11 mod lines`) rather than hitting one cached position.
fn walk(lines: &[LineInfo]) -> impl Fn(usize) -> u32 + Copy {
    let n = lines.len() as u64 - 1; // the text ends with '\n'
    move |i| ((i as u64 * 37 + 11) % n) as u32
}

/// Hover on the first non-blank character of the walked line.
fn hover_on<'a>(
    lines: &'a [LineInfo],
    line_of: impl Fn(usize) -> u32 + 'a,
) -> impl Fn(usize, &str) -> Value + 'a {
    move |i, uri| {
        let l = line_of(i);
        let info = &lines[l as usize];
        json!({"textDocument": {"uri": uri}, "position": pos(l, (info.indent + 1).min(info.len16))})
    }
}

fn timed<'a>(exp: &'a [LineInfo], ideas: &'a [LineInfo]) -> Vec<Timed<'a>> {
    let (exp_line, ideas_line) = (walk(exp), walk(ideas));
    let lens = |_: usize, uri: &str| json!({"textDocument": {"uri": uri}});
    vec![
        Timed {
            row: "codeAction",
            method: "textDocument/codeAction",
            cap: "codeActionProvider",
            doc: Doc::Experiment,
            params: Box::new(move |i, uri| {
                let l = exp_line(i);
                json!({
                    "textDocument": {"uri": uri},
                    "range": {"start": pos(l, 0), "end": pos(l, exp[l as usize].len16)},
                    "context": {"diagnostics": [], "triggerKind": 1}
                })
            }),
        },
        Timed {
            row: "codeLens",
            method: "textDocument/codeLens",
            cap: "codeLensProvider",
            doc: Doc::Experiment,
            params: Box::new(lens),
        },
        Timed {
            row: "hover",
            method: "textDocument/hover",
            cap: "hoverProvider",
            doc: Doc::Experiment,
            params: Box::new(hover_on(exp, exp_line)),
        },
        Timed {
            row: "codeLens ideas.json",
            method: "textDocument/codeLens",
            cap: "codeLensProvider",
            doc: Doc::Ideas,
            params: Box::new(lens),
        },
        Timed {
            row: "hover ideas.json",
            method: "textDocument/hover",
            cap: "hoverProvider",
            doc: Doc::Ideas,
            params: Box::new(hover_on(ideas, ideas_line)),
        },
    ]
}

/// The paper scenario's requests: hover and a one-line codeAction at pseudo-random
/// positions (`hovers[i]`, `actions[i]` for request `i`), and documentSymbol.
fn paper_timed<'a>(
    hovers: &'a [(u32, u32)],
    actions: &'a [(u32, u32)],
    lines: &'a [LineInfo],
) -> Vec<Timed<'a>> {
    vec![
        Timed {
            row: "paper hover",
            method: "textDocument/hover",
            cap: "hoverProvider",
            doc: Doc::Paper,
            params: Box::new(move |i, uri| {
                let (l, c) = hovers[i];
                json!({"textDocument": {"uri": uri}, "position": pos(l, c)})
            }),
        },
        Timed {
            row: "paper codeAction",
            method: "textDocument/codeAction",
            cap: "codeActionProvider",
            doc: Doc::Paper,
            params: Box::new(move |i, uri| {
                let (l, c) = actions[i];
                json!({
                    "textDocument": {"uri": uri},
                    "range": {"start": pos(l, c), "end": pos(l, lines[l as usize].len16)},
                    "context": {"diagnostics": [], "triggerKind": 1}
                })
            }),
        },
        Timed {
            row: "paper documentSymbol",
            method: "textDocument/documentSymbol",
            cap: "documentSymbolProvider",
            doc: Doc::Paper,
            params: Box::new(|_, uri| json!({"textDocument": {"uri": uri}})),
        },
    ]
}

pub fn run_all(opts: &Opts, root: &Path, doc: &str, paper: Option<&Paper>) -> Vec<ServerResult> {
    let mut sessions: Vec<Session> = opts
        .servers
        .iter()
        .enumerate()
        .map(|(i, cmd)| {
            let label = label_of(cmd, &opts.servers);
            eprintln!("== {label}: {cmd}");
            let dir = root.join(format!("{i}-{label}"));
            start(opts, cmd, &label, &dir, doc, paper).unwrap_or_else(|e| {
                let mut r = ServerResult::new(&label, cmd);
                r.notes.push(format!("aborted: {e}"));
                Session {
                    r,
                    client: None,
                    pid: 0,
                    caps: Value::Null,
                    ws: dir,
                    uri: String::new(),
                    ideas_uri: String::new(),
                    paper_uri: String::new(),
                }
            })
        })
        .collect();
    std::thread::sleep(opts.settle);
    for s in &mut sessions {
        s.r.rss_init_kb = s.rss();
    }

    // The paper first, so its RSS is the server's with only the paper open.
    if let Some(paper) = paper {
        paper_phase(&mut sessions, opts, paper);
    }

    // Open experiment.py and ideas.json, then let work deferred by the opens
    // (parsing, checks) finish.
    let ideas = docgen::ideas_json(IDEAS);
    for s in &mut sessions {
        let Some(c) = &s.client else { continue };
        let docs = [(&s.uri, "python", doc), (&s.ideas_uri, "json", ideas.as_str())];
        let opened: Result<(), _> = docs.into_iter().try_for_each(|(uri, language, text)| {
            let doc = json!({"uri": uri, "languageId": language, "version": 1, "text": text});
            c.notify("textDocument/didOpen", json!({ "textDocument": doc }))
        });
        if let Err(e) = opened {
            s.fail(format!("didOpen: {e}"));
        }
    }
    std::thread::sleep(opts.settle);

    let (lines, ideas_lines) = (line_infos(doc), line_infos(&ideas));
    let timed = timed(&lines, &ideas_lines);
    for t in &timed {
        eprintln!("   timing {}", t.row);
        time_requests(&mut sessions, opts, t);
    }
    for s in &mut sessions {
        s.r.rss_open_kb = s.rss();
    }

    // The first supported method doubles as the barrier after notifications.
    let barrier = |caps: &Value| {
        timed
            .iter()
            .find(|t| t.doc == Doc::Experiment && capable(caps, t.cap))
    };
    let marker = doc.lines().position(|l| l == docgen::EDIT_MARKER).unwrap();
    let at = (marker as u32, lines[marker].len16);
    for s in &mut sessions {
        let Some(c) = &mut s.client else { continue };
        eprintln!("   {}: {} edits", s.r.label, opts.edits);
        s.r.edits = Some(match barrier(&s.caps) {
            None => Err("no request to synchronise on (no codeAction/codeLens/hover)".into()),
            Some(t) => type_edits(c, &s.uri, at, opts.edits, t.method, (t.params)(0, &s.uri)),
        });
        s.r.rss_edits_kb = s.rss();
    }

    if opts.big_docs > 0 {
        for s in &mut sessions {
            eprintln!("   {}: opening {} big documents", s.r.label, opts.big_docs);
            if let Err(e) = open_big_docs(s, opts, barrier(&s.caps)) {
                s.fail(e);
            }
        }
        std::thread::sleep(opts.settle);
        for s in &mut sessions {
            s.r.rss_docs_kb = s.rss();
        }
    }

    sessions
        .into_iter()
        .map(|mut s| {
            if let Some(c) = s.client.take() {
                s.r.notifications = c.notifications.load(Ordering::Relaxed);
                s.r.server_requests = c.server_requests.load(Ordering::Relaxed);
                if let Some(note) = c.shutdown(Duration::from_secs(2)) {
                    s.r.notes.push(format!("shutdown: {note}"));
                }
            }
            s.r
        })
        .collect()
}

/// Spawns the server in a fresh template workspace and runs initialize/initialized.
fn start(
    opts: &Opts,
    cmd: &str,
    label: &str,
    dir: &Path,
    doc: &str,
    paper: Option<&Paper>,
) -> Result<Session, String> {
    let mut r = ServerResult::new(label, cmd);
    let ws = dir.join("ws");
    let exp = write_workspace(&ws, doc).map_err(|e| format!("workspace: {e}"))?;
    let paper_uri = match paper {
        Some(p) => file_uri(&p.write_into(&ws).map_err(|e| format!("paper workspace: {e}"))?),
        None => String::new(),
    };
    let mut argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
    // The child runs in the workspace, so resolve a relative program path here.
    if argv[0].contains('/') {
        if let Ok(abs) = std::fs::canonicalize(&argv[0]) {
            argv[0] = abs.display().to_string();
        }
    }
    let stderr_log = dir.join("stderr.log");
    let mut c = Client::spawn(&argv, &ws, &stderr_log).map_err(|e| format!("spawn {cmd}: {e}"))?;
    if opts.keep {
        r.notes.push(format!("stderr log: {}", stderr_log.display()));
    }
    let root_uri = file_uri(&ws);
    let init = json!({
        "processId": std::process::id(),
        "clientInfo": {"name": "lspbench", "version": env!("CARGO_PKG_VERSION")},
        "rootUri": root_uri,
        "rootPath": ws.display().to_string(),
        "workspaceFolders": [{"uri": root_uri, "name": "template"}],
        "initializationOptions": init_options(opts, cmd)?,
        "capabilities": {
            "general": {"positionEncodings": ["utf-16"]},
            "workspace": {"configuration": true, "workspaceFolders": true, "applyEdit": true},
            "window": {"workDoneProgress": true},
            "textDocument": {
                "synchronization": {"dynamicRegistration": false, "didSave": true},
                "hover": {"contentFormat": ["markdown", "plaintext"]},
                "codeLens": {},
                "documentSymbol": {"hierarchicalDocumentSymbolSupport": true},
                "codeAction": {
                    "codeActionLiteralSupport": {"codeActionKind": {"valueSet": [
                        "", "quickfix", "refactor", "refactor.rewrite", "source"]}},
                    "resolveSupport": {"properties": ["edit", "command"]},
                    "dataSupport": true
                },
                "publishDiagnostics": {}
            }
        }
    });
    let t0 = Instant::now();
    let resp = c.request("initialize", init, Duration::from_secs(30))?;
    if let Some(err) = resp.get("error") {
        return Err(format!("initialize failed: {err}"));
    }
    r.initialize_ms = Some(t0.elapsed().as_secs_f64() * 1e3);
    let result = &resp["result"];
    r.server_info = result.get("serverInfo").cloned();
    r.sync = result["capabilities"].get("textDocumentSync").cloned();
    c.notify("initialized", json!({}))
        .map_err(|e| format!("initialized: {e}"))?;
    Ok(Session {
        r,
        pid: c.pid(),
        client: Some(c),
        caps: result["capabilities"].clone(),
        ideas_uri: file_uri(&ws.join("ideas.json")),
        paper_uri,
        ws,
        uri: file_uri(&exp),
    })
}

/// Opens the paper in every server, lets deferred work finish, times its requests and
/// samples RSS.
fn paper_phase(sessions: &mut [Session], opts: &Opts, paper: &Paper) {
    for s in sessions.iter_mut() {
        let Some(c) = &s.client else { continue };
        let doc = json!({"uri": s.paper_uri, "languageId": "latex", "version": 1, "text": paper.text});
        if let Err(e) = c.notify("textDocument/didOpen", json!({ "textDocument": doc })) {
            s.fail(format!("didOpen paper: {e}"));
        }
    }
    std::thread::sleep(opts.settle);
    let n = opts.warmup + opts.requests;
    let hovers = paper::positions(&paper.text, n, 1);
    let actions = paper::positions(&paper.text, n, 2);
    let lines = line_infos(&paper.text);
    for t in &paper_timed(&hovers, &actions, &lines) {
        eprintln!("   timing {}", t.row);
        time_requests(sessions, opts, t);
    }
    for s in sessions.iter_mut() {
        s.r.rss_paper_kb = s.rss();
    }
}

/// `warmup` untimed then `requests` timed sequential round trips per server.
fn time_requests(sessions: &mut [Session], opts: &Opts, t: &Timed) {
    let n = sessions.len();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(opts.requests); n];
    let mut errors = vec![0usize; n];
    let mut first_error: Vec<Option<String>> = vec![None; n];
    let mut shapes: Vec<BTreeMap<String, usize>> = vec![BTreeMap::new(); n];
    let mut answered = vec![0usize; n];
    let active: Vec<bool> = sessions.iter().map(|s| capable(&s.caps, t.cap)).collect();
    let rounds = opts.warmup + opts.requests;
    // Interleaved: request i goes to every server before request i + 1 (rotating who
    // goes first). Otherwise each server gets all its requests back to back.
    let order: Vec<(usize, usize)> = if opts.interleave {
        (0..rounds)
            .flat_map(|i| (0..n).map(move |k| (i, (k + i) % n)))
            .collect()
    } else {
        (0..n).flat_map(|k| (0..rounds).map(move |i| (i, k))).collect()
    };
    for (i, k) in order {
        if !active[k] {
            continue;
        }
        let s = &mut sessions[k];
        let p = (t.params)(i, s.uri(t.doc));
        let Some(c) = &mut s.client else { continue };
        let start = Instant::now();
        let resp = c.request(t.method, p, opts.timeout);
        let elapsed = start.elapsed();
        match resp {
            Err(e) => s.fail(e),
            Ok(_) if i < opts.warmup => {}
            Ok(resp) => {
                if let Some(err) = resp.get("error") {
                    errors[k] += 1;
                    first_error[k].get_or_insert_with(|| err.to_string());
                } else if !resp.get("result").is_none_or(Value::is_null) {
                    answered[k] += 1;
                }
                *shapes[k].entry(shape(&resp)).or_default() += 1;
                samples[k].push(elapsed);
            }
        }
    }
    let name = t.row.to_string();
    for (k, s) in sessions.iter_mut().enumerate() {
        let m = if !active[k] {
            Measure::Unsupported
        } else if samples[k].len() < opts.requests {
            Measure::Failed("server failed before all requests were answered".into())
        } else if errors[k] == samples[k].len() {
            Measure::Failed(format!(
                "every response was an error: {}",
                first_error[k].take().unwrap()
            ))
        } else {
            let mut l = Latency::from_samples(std::mem::take(&mut samples[k]), errors[k]);
            let parts: Vec<String> = shapes[k].iter().map(|(s, n)| format!("{s} ×{n}")).collect();
            l.shapes = parts.join(", ");
            l.answered = answered[k];
            Measure::Latency(l)
        };
        s.r.latency.push((name.clone(), m));
    }
}

/// A short description of a response, to show what a server actually answered.
fn shape(resp: &Value) -> String {
    match (resp.get("error"), resp.get("result")) {
        (Some(e), _) => format!("error {}", e["code"]),
        (None, Some(Value::Array(a))) if a.len() == 1 => "1 item".into(),
        (None, Some(Value::Array(a))) => format!("{} items", a.len()),
        (None, Some(Value::Null) | None) => "null".into(),
        (None, Some(_)) => "object".into(),
    }
}

/// Types `n` characters as comment lines after (`line`, `col`); returns the wall time
/// from the first send until a following request's response, divided by `n`.
fn type_edits(
    c: &mut Client,
    uri: &str,
    (mut line, mut col): (u32, u32),
    n: usize,
    barrier: &str,
    barrier_params: Value,
) -> Result<EditStats, String> {
    const TEXT: &str = "tune β1 and the warm-up length, then compare val_loss across seeds; ";
    const WIDTH: usize = 60; // characters per typed line, newline included
    let text: Vec<char> = TEXT.chars().collect();
    let start = Instant::now();
    for i in 0..n {
        let ch = match i % WIDTH {
            0 => '\n',
            1 => '#',
            2 => ' ',
            j => text[(i / WIDTH * WIDTH + j) % text.len()],
        };
        let at = pos(line, col);
        let change = json!({
            "textDocument": {"uri": uri, "version": i + 2},
            "contentChanges": [{"range": {"start": at, "end": at}, "text": ch.to_string()}]
        });
        c.notify("textDocument/didChange", change)
            .map_err(|e| format!("didChange #{i}: {e}"))?;
        if ch == '\n' {
            line += 1;
            col = 0;
        } else {
            col += ch.len_utf16() as u32;
        }
    }
    let send = start.elapsed();
    let resp = c.request(barrier, barrier_params, Duration::from_secs(120))?;
    let total = start.elapsed();
    let error = resp.get("error").map(Value::to_string);
    Ok(EditStats {
        edits: n,
        send,
        total,
        barrier: barrier.to_string(),
        error,
    })
}

/// Writes and opens the big documents, then waits for one request on the last one.
fn open_big_docs(s: &mut Session, opts: &Opts, barrier: Option<&Timed>) -> Result<(), String> {
    let Some(c) = &mut s.client else { return Ok(()) };
    let mut last_uri = String::new();
    for k in 0..opts.big_docs {
        let text = docgen::large_module(k as u64, opts.big_doc_bytes);
        let path = s.ws.join(format!("module_{k}.py"));
        std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
        last_uri = file_uri(&path);
        let open =
            json!({"textDocument": {"uri": last_uri, "languageId": "python", "version": 1, "text": text}});
        c.notify("textDocument/didOpen", open)
            .map_err(|e| format!("didOpen big document: {e}"))?;
    }
    if let Some(t) = barrier {
        let mut p = (t.params)(0, &last_uri);
        // Line 0 exists in every document.
        if let Some(range) = p.get_mut("range") {
            *range = json!({"start": pos(0, 0), "end": pos(0, 0)});
        }
        if let Some(position) = p.get_mut("position") {
            *position = pos(0, 0);
        }
        c.request(t.method, p, Duration::from_secs(60))
            .map_err(|e| format!("after opening big documents: {e}"))?;
    }
    Ok(())
}
