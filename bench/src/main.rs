//! `lspbench`: drives language servers over real stdio JSON-RPC with one client and
//! reports request latency, incremental-edit throughput and resident memory.

mod client;
mod docgen;
mod paper;
mod report;
mod session;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
  --paper FILE          also run the paper scenario on this .tex (see README)
  --paper-copies N      times the paper's body is repeated (default 3)
  --lsp-ai-config FILE  initializationOptions for commands whose program is lsp-ai
                        (default: built-in offline config, see README)
  --no-interleave       time each server's requests back to back instead of
                        alternating servers request by request
  --baseline LABEL      server the ratios are relative to
                        (default: lsp-ai if present, else texlab if present, else the last)
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
    paper: Option<PathBuf>,
    paper_copies: usize,
    baseline: Option<String>,
    json: Option<PathBuf>,
    keep: bool,
    interleave: bool,
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
        paper: None,
        paper_copies: 3,
        baseline: None,
        json: None,
        keep: false,
        interleave: true,
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
            "--paper" => o.paper = Some(val()?.into()),
            "--paper-copies" => o.paper_copies = num(val()?)?,
            "--lsp-ai-config" => o.lsp_ai_config = Some(val()?.into()),
            "--baseline" => o.baseline = Some(val()?),
            "--json" => o.json = Some(val()?.into()),
            "--keep" => o.keep = true,
            "--no-interleave" => o.interleave = false,
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
    let paper = match opts
        .paper
        .as_deref()
        .map(|p| paper::Paper::load(p, opts.paper_copies))
    {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            eprintln!("--paper {e}");
            std::process::exit(2);
        }
    };
    let doc = docgen::experiment_py(opts.lines);
    let results = session::run_all(&opts, &root, &doc, paper.as_ref());
    let find = |name: &str| {
        results
            .iter()
            .find(|r| r.label.contains(name))
            .map(|r| r.label.clone())
    };
    let baseline = opts
        .baseline
        .clone()
        .or_else(|| find("lsp-ai"))
        .or_else(|| find("texlab"))
        .unwrap_or_else(|| results.last().unwrap().label.clone());
    let doc_info = json!({
        "name": "experiment.py", "lines": opts.lines, "bytes": doc.len(),
        "big_docs": opts.big_docs, "big_doc_bytes": opts.big_doc_bytes,
    });
    let paper_info = paper.as_ref().map_or(Value::Null, |p| {
        json!({
            "source": p.source.display().to_string(), "copies": p.copies,
            "lines": p.text.lines().count(), "bytes": p.text.len(),
            "path": format!("{}/latex/template.tex", paper::IDEA_DIR), "copied": p.copied_names(),
        })
    });
    let setup = json!({
        "requests": opts.requests, "warmup": opts.warmup, "edits": opts.edits,
        "interleaved": opts.interleave, "settle_ms": opts.settle.as_millis() as u64,
        "document": doc_info, "paper": paper_info,
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
    std::fs::write(ws.join("ideas.json"), docgen::ideas_json(session::IDEAS))?;
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

/// Resident memory of `pid`, from /proc.
fn rss_kb(pid: u32) -> Option<report::Rss> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some(report::Rss {
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:")?,
        anon: field("RssAnon:")?,
    })
}

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
