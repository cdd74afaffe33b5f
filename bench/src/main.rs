//! `lspbench`: drives language servers over real stdio JSON-RPC with one client and
//! reports request latency, incremental-edit throughput and resident memory.

mod client;
mod docgen;
mod report;

use client::Client;
use report::{EditStats, Latency, Measure, ServerResult};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: lspbench --server CMD [--server CMD ...] [options]

  --server CMD          server command line (split on whitespace); repeat per server
  --requests N          timed requests per method (default 1000)
  --warmup N            untimed requests per method before timing (default 100)
  --edits N             single-character didChange notifications (default 10000)
  --lines N             lines of the generated experiment.py (default 5000)
  --big-docs N          extra documents opened for the memory check (default 10)
  --big-doc-bytes N     size of each extra document (default 1048576)
  --settle-ms N         pause before each RSS sample (default 500)
  --timeout-ms N        per-request timeout (default 10000)
  --lsp-ai-config FILE  initializationOptions for commands whose program is lsp-ai
                        (default: built-in offline config, see README)
  --baseline LABEL      server the ratios are relative to (default: lsp-ai if present, else last)
  --json FILE           also write the results as JSON
  --keep                keep the temporary workspaces and server stderr logs";

struct Opts {
    servers: Vec<String>,
    requests: usize,
    warmup: usize,
    edits: usize,
    lines: usize,
    big_docs: usize,
    big_doc_bytes: usize,
    settle: Duration,
    timeout: Duration,
    lsp_ai_config: Option<PathBuf>,
    baseline: Option<String>,
    json: Option<PathBuf>,
    keep: bool,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        servers: vec![],
        requests: 1000,
        warmup: 100,
        edits: 10_000,
        lines: 5000,
        big_docs: 10,
        big_doc_bytes: 1 << 20,
        settle: Duration::from_millis(500),
        timeout: Duration::from_secs(10),
        lsp_ai_config: None,
        baseline: None,
        json: None,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{a}: {e}"));
        match a.as_str() {
            "--server" => o.servers.push(val()?),
            "--requests" => o.requests = num(val()?)?,
            "--warmup" => o.warmup = num(val()?)?,
            "--edits" => o.edits = num(val()?)?,
            "--lines" => o.lines = num(val()?)?,
            "--big-docs" => o.big_docs = num(val()?)?,
            "--big-doc-bytes" => o.big_doc_bytes = num(val()?)?,
            "--settle-ms" => o.settle = Duration::from_millis(num(val()?)? as u64),
            "--timeout-ms" => o.timeout = Duration::from_millis(num(val()?)? as u64),
            "--lsp-ai-config" => o.lsp_ai_config = Some(val()?.into()),
            "--baseline" => o.baseline = Some(val()?),
            "--json" => o.json = Some(val()?.into()),
            "--keep" => o.keep = true,
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    if o.servers.is_empty() {
        return Err(USAGE.into());
    }
    if o.requests == 0 {
        return Err("--requests must be at least 1".into());
    }
    Ok(o)
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let root = std::env::temp_dir().join(format!("lspbench-{}", std::process::id()));
    let doc = docgen::experiment_py(opts.lines);
    let mut results = Vec::new();
    for (i, cmd) in opts.servers.iter().enumerate() {
        let label = label_of(cmd, &opts.servers);
        eprintln!("== {label}: {cmd}");
        let dir = root.join(format!("{i}-{label}"));
        let r = bench_server(&opts, cmd, &label, &dir, &doc).unwrap_or_else(|e| {
            let mut r = ServerResult::new(&label, cmd);
            r.notes.push(format!("aborted: {e}"));
            r
        });
        for n in &r.notes {
            eprintln!("   note: {n}");
        }
        results.push(r);
    }
    let baseline = opts
        .baseline
        .clone()
        .or_else(|| {
            results
                .iter()
                .find(|r| r.label.contains("lsp-ai"))
                .map(|r| r.label.clone())
        })
        .unwrap_or_else(|| results.last().unwrap().label.clone());
    let doc_info = json!({
        "name": "experiment.py", "lines": opts.lines, "bytes": doc.len(),
        "big_docs": opts.big_docs, "big_doc_bytes": opts.big_doc_bytes,
    });
    let setup = json!({
        "requests": opts.requests, "warmup": opts.warmup, "edits": opts.edits,
        "document": doc_info,
    });
    print!("{}", report::table(&results, &baseline, &setup));
    if let Some(path) = &opts.json {
        let out = report::to_json(&results, &baseline, setup);
        if let Err(e) = std::fs::write(path, serde_json::to_string_pretty(&out).unwrap() + "\n") {
            eprintln!("writing {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    if opts.keep {
        eprintln!("workspaces and stderr logs kept in {}", root.display());
    } else {
        let _ = std::fs::remove_dir_all(&root);
    }
}

/// Short column label: the program's file name (plus an index if two servers share it).
fn label_of(cmd: &str, all: &[String]) -> String {
    let base = |c: &str| {
        let prog = c.split_whitespace().next().unwrap_or("server");
        Path::new(prog)
            .file_name()
            .map_or(prog.to_string(), |f| f.to_string_lossy().into_owned())
    };
    let label = base(cmd);
    let same: Vec<_> = all.iter().filter(|c| base(c) == label).collect();
    if same.len() > 1 {
        let k = all
            .iter()
            .take_while(|c| *c != cmd)
            .filter(|c| base(c) == label)
            .count();
        format!("{label}#{}", k + 1)
    } else {
        label
    }
}

fn file_uri(p: &Path) -> String {
    // Temp paths contain no characters that need percent-encoding.
    format!("file://{}", p.display())
}

/// Writes the aisci template layout the document lives in.
fn write_workspace(ws: &Path, doc: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(ws.join("run_0"))?;
    let exp = ws.join("experiment.py");
    std::fs::write(&exp, doc)?;
    let prompt = json!({
        "system": "You are an ambitious AI PhD student who is looking to publish a paper that will contribute significantly to the field.",
        "task_description": "You are given the following file to work with, which trains a small transformer on character-level data."
    });
    std::fs::write(ws.join("prompt.json"), serde_json::to_string_pretty(&prompt)?)?;
    std::fs::write(
        ws.join("run_0/final_info.json"),
        serde_json::to_string_pretty(&json!({"ds": {"means": {"loss": 1.0}}}))?,
    )?;
    Ok(exp)
}

/// Offline lsp-ai config: an OpenAI-compatible model pointed at a closed local port
/// (never contacted: nothing is resolved or completed), one action and one chat.
/// The chat makes every codeAction consult lsp-ai's memory worker, which applies
/// didChange in order, so a codeAction round trip also drains pending edits.
fn default_lsp_ai_config() -> Value {
    let params = json!({
        "max_context": 4096,
        "max_tokens": 64,
        "messages": [{"role": "system", "content": "You are a helpful coding assistant."},
                     {"role": "user", "content": "{CODE}"}]
    });
    json!({
        "memory": {"file_store": {}},
        "models": {"model1": {
            "type": "open_ai",
            "chat_endpoint": "http://127.0.0.1:9/v1/chat/completions",
            "model": "offline-benchmark",
            "auth_token": "unused"
        }},
        "actions": [{"action_display_name": "Complete", "model": "model1", "parameters": params}],
        "chats": [{"trigger": "!C", "action_display_name": "Chat", "model": "model1", "parameters": params}]
    })
}

fn init_options(opts: &Opts, cmd: &str) -> Result<Value, String> {
    let prog = cmd.split_whitespace().next().unwrap_or("");
    if !Path::new(prog)
        .file_name()
        .is_some_and(|f| f.to_string_lossy().starts_with("lsp-ai"))
    {
        return Ok(Value::Null);
    }
    match &opts.lsp_ai_config {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
        }
        None => Ok(default_lsp_ai_config()),
    }
}

/// VmRSS and VmHWM of `pid`, in kB, from /proc.
fn rss_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Builds the params of the i-th request of one method.
type ParamsFn<'a> = dyn Fn(usize) -> Value + 'a;

fn capable(caps: &Value, key: &str) -> bool {
    match caps.get(key) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(_) => true,
    }
}

/// Per-line facts the request generators need (UTF-16 lengths, first non-blank column).
struct LineInfo {
    len16: u32,
    indent: u32,
}

fn line_infos(doc: &str) -> Vec<LineInfo> {
    doc.split('\n')
        .map(|l| LineInfo {
            len16: l.encode_utf16().count() as u32,
            indent: l.chars().take_while(|c| *c == ' ').count() as u32,
        })
        .collect()
}

fn pos(line: u32, character: u32) -> Value {
    json!({"line": line, "character": character})
}

fn bench_server(opts: &Opts, cmd: &str, label: &str, dir: &Path, doc: &str) -> Result<ServerResult, String> {
    let mut r = ServerResult::new(label, cmd);
    let ws = dir.join("ws");
    let exp = write_workspace(&ws, doc).map_err(|e| format!("workspace: {e}"))?;
    let argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
    let stderr_log = dir.join("stderr.log");
    let mut c = Client::spawn(&argv, &ws, &stderr_log).map_err(|e| format!("spawn {cmd}: {e}"))?;
    let pid = c.pid();

    // initialize / initialized
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
    let caps = result["capabilities"].clone();
    r.server_info = result.get("serverInfo").cloned();
    r.sync = caps.get("textDocumentSync").cloned();
    c.notify("initialized", json!({})).map_err(|e| e.to_string())?;
    std::thread::sleep(opts.settle);
    r.rss_init_kb = rss_kb(pid);

    // Open experiment.py.
    let uri = file_uri(&exp);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": doc}}),
    )
    .map_err(|e| e.to_string())?;
    let lines = line_infos(doc);
    let n_lines = lines.len() as u32 - 1; // the text ends with '\n'
    let line_of = |i: usize| ((i as u64 * 37 + 11) % n_lines as u64) as u32;
    let td = json!({"uri": uri});

    let code_action = |i: usize| {
        let l = line_of(i);
        json!({
            "textDocument": td,
            "range": {"start": pos(l, 0), "end": pos(l, lines[l as usize].len16)},
            "context": {"diagnostics": [], "triggerKind": 1}
        })
    };
    let code_lens = |_: usize| json!({"textDocument": td});
    let hover = |i: usize| {
        let l = line_of(i);
        let info = &lines[l as usize];
        json!({"textDocument": td, "position": pos(l, (info.indent + 1).min(info.len16))})
    };

    // The first request after didOpen also waits for the open to be processed.
    let methods: [(&str, &str, &ParamsFn); 3] = [
        ("textDocument/codeAction", "codeActionProvider", &code_action),
        ("textDocument/codeLens", "codeLensProvider", &code_lens),
        ("textDocument/hover", "hoverProvider", &hover),
    ];
    for (method, cap, params) in methods {
        let m = if capable(&caps, cap) {
            time_requests(&mut c, method, opts, params)
        } else {
            Measure::Unsupported
        };
        r.latency
            .push((method.trim_start_matches("textDocument/").to_string(), m));
    }
    r.rss_open_kb = rss_kb(pid);

    // A request every server answers, used as a barrier after notifications.
    let barrier: Option<(&str, &ParamsFn)> = methods
        .iter()
        .find(|(_, cap, _)| capable(&caps, cap))
        .map(|(m, _, p)| (*m, *p));

    // Single-character incremental edits, typed as comment lines after the marker.
    r.edits = Some(match barrier {
        None => Err("no request to synchronise on (no codeAction/codeLens/hover)".into()),
        Some((method, params)) => {
            let marker = doc.lines().position(|l| l == docgen::EDIT_MARKER).unwrap() as u32;
            let at = (marker, lines[marker as usize].len16);
            type_edits(&mut c, &uri, at, opts.edits, method, params(0))
        }
    });
    r.rss_edits_kb = rss_kb(pid);

    // Ten (by default) 1 MB documents.
    if opts.big_docs > 0 {
        let mut last_uri = String::new();
        for k in 0..opts.big_docs {
            let text = docgen::large_module(k as u64, opts.big_doc_bytes);
            let path = ws.join(format!("module_{k}.py"));
            std::fs::write(&path, &text).map_err(|e| e.to_string())?;
            last_uri = file_uri(&path);
            c.notify(
                "textDocument/didOpen",
                json!({"textDocument": {"uri": last_uri, "languageId": "python", "version": 1, "text": text}}),
            )
            .map_err(|e| e.to_string())?;
        }
        if let Some((method, params)) = barrier {
            let mut p = params(0);
            p["textDocument"] = json!({"uri": last_uri});
            if let Some(range) = p.get_mut("range") {
                *range = json!({"start": pos(0, 0), "end": pos(0, 0)});
            }
            if let Some(position) = p.get_mut("position") {
                *position = pos(0, 0);
            }
            if let Err(e) = c.request(method, p, Duration::from_secs(60)) {
                r.notes.push(format!("after opening big documents: {e}"));
            }
        }
        std::thread::sleep(opts.settle);
        r.rss_docs_kb = rss_kb(pid);
    }

    r.notifications = c.notifications.load(std::sync::atomic::Ordering::Relaxed);
    r.server_requests = c.server_requests.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(note) = c.shutdown(Duration::from_secs(2)) {
        r.notes.push(format!("shutdown: {note}"));
    }
    if opts.keep {
        r.notes.push(format!("stderr log: {}", stderr_log.display()));
    }
    Ok(r)
}

/// `warmup` untimed then `requests` timed sequential round trips.
fn time_requests(c: &mut Client, method: &str, opts: &Opts, params: &ParamsFn) -> Measure {
    let mut samples = Vec::with_capacity(opts.requests);
    let mut errors = 0;
    let mut first_error = None;
    for i in 0..opts.warmup + opts.requests {
        let p = params(i);
        let start = Instant::now();
        let resp = match c.request(method, p, opts.timeout) {
            Ok(resp) => resp,
            Err(e) => return Measure::Failed(e),
        };
        let elapsed = start.elapsed();
        if i < opts.warmup {
            continue;
        }
        if let Some(err) = resp.get("error") {
            errors += 1;
            first_error.get_or_insert_with(|| err.to_string());
        }
        samples.push(elapsed);
    }
    if errors == samples.len() {
        return Measure::Failed(format!("every response was an error: {}", first_error.unwrap()));
    }
    Measure::Latency(Latency::from_samples(samples, errors))
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
    let sent = start.elapsed();
    let resp = c.request(barrier, barrier_params, Duration::from_secs(120))?;
    let total = start.elapsed();
    let mut stats = EditStats {
        edits: n,
        send: sent,
        total,
        barrier: barrier.to_string(),
        error: None,
    };
    if let Some(err) = resp.get("error") {
        stats.error = Some(err.to_string());
    }
    Ok(stats)
}
