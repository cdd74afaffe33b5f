//! What a paper costs in model input: `aisci launch --num-ideas 1` (the release binary,
//! as a user runs it) on a copy of a template, against a fake model whose replies are
//! sized like v1's real replies (`cost/v1_sizes.rs`) and a fake Semantic Scholar that
//! returns 10 papers per query. Prints the characters (and tokens, chars / 4) sent per
//! stage and per call, what an automatic prefix cache would serve, and how the total
//! grows with the number of runs and of citation rounds.
//!
//!     cargo bench -p aisci --bench cost                  # one paper, then both scalings
//!     cargo bench -p aisci --bench cost -- --once        # one paper only
//!     cargo bench -p aisci --bench cost -- --shape tiny  # tiny_mlp's own file sizes
//!
//! `--shape 2d_diffusion` (the default) pads the copy of `templates/tiny_mlp` (pure
//! Python, seconds per run) with comments to the sizes of `templates/2d_diffusion`'s
//! experiment.py, plot.py and template.tex, so the conversation has the shape of the one
//! issue 16 measured for v1 (1,525k tokens per paper) without needing torch.

#[path = "cost/model.rs"]
mod model;
#[path = "cost/scholar.rs"]
mod scholar;
#[path = "cost/v1_sizes.rs"]
mod v1_sizes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use model::{Call, Model};

/// v1's tokens per paper on the same work (issue 16, measured with v1's protocol).
const V1_TOTAL_TOKENS: usize = 1_525_000;
const TARGET_TOKENS: usize = V1_TOTAL_TOKENS / 3;

const STAGES: &[&str] = &[
    "ideas",
    "novelty",
    "experiment",
    "plot",
    "notes",
    "writeup: parts",
    "writeup: citations",
    "writeup: refinement",
    "writeup: fixes",
    "review",
    "writeup: other",
    "other",
];

struct Opts {
    once: bool,
    shape_2d: bool,
    runs: u32,
    rounds: u32,
    keep: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        once: false,
        shape_2d: true,
        runs: 5,
        rounds: 20,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--once" => o.once = true,
            "--keep" => o.keep = true,
            "--shape" => o.shape_2d = args.next().as_deref() != Some("tiny"),
            "--runs" => o.runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(5),
            "--rounds" => o.rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(20),
            // cargo bench passes --bench.
            _ => {}
        }
    }
    o
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Pads `path` with `comment`-prefixed lines to `size` bytes.
fn pad_to(path: &Path, size: usize, comment: &str) {
    let mut text = std::fs::read_to_string(path).unwrap();
    let mut i = 0;
    while text.len() < size {
        text.push_str(&format!(
            "{comment} bench padding line {i}: keeps the file the size of the larger template.\n"
        ));
        i += 1;
    }
    std::fs::write(path, text).unwrap();
}

/// The template: tiny_mlp without its seed ideas (the paper is the generated idea's).
fn template(dir: &Path, shape_2d: bool) -> PathBuf {
    let t = dir.join("template");
    copy_dir(&repo().join("templates/tiny_mlp"), &t);
    std::fs::remove_file(t.join("seed_ideas.json")).ok();
    std::fs::remove_file(t.join("ideas.json")).ok();
    if shape_2d {
        let big = repo().join("templates/2d_diffusion");
        let size = |p: &str| std::fs::metadata(big.join(p)).unwrap().len() as usize;
        pad_to(&t.join("experiment.py"), size("experiment.py"), "#");
        pad_to(&t.join("plot.py"), size("plot.py"), "#");
        // Before \end{document}, so the padding is inside the file LaTeX reads.
        let tex = t.join("latex/template.tex");
        let text = std::fs::read_to_string(&tex).unwrap();
        let extra = size("latex/template.tex").saturating_sub(text.len());
        let mut pad = String::new();
        let mut i = 0;
        while pad.len() < extra {
            pad.push_str(&format!(
                "% bench padding line {i}: keeps the paper the size of the larger template.\n"
            ));
            i += 1;
        }
        let at = text.rfind("\\end{document}").unwrap();
        std::fs::write(&tex, format!("{}{pad}{}", &text[..at], &text[at..])).unwrap();
    }
    t
}

struct Outcome {
    calls: Vec<Call>,
    wall_s: f64,
    paper: bool,
    reviewed: bool,
}

async fn launch(o: &Opts, runs: u32, rounds: u32) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path(), o.shape_2d);
    let sizes = v1_sizes::read(
        &std::fs::read_to_string(repo().join("tests/fixtures/edits/adaptive_dual_scale_denoising_aider.txt"))
            .unwrap(),
    );
    let model = Model::new(sizes, runs);
    let llm_url = model.serve().await;
    let s2_url = scholar::serve().await;
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[llm]\nprovider = \"openai\"\nbase_url = {llm_url:?}\nmodel = \"gpt-4o-2024-08-06\"\nstream = false\nmax_retries = 0\n\n\
             [literature]\nengines = [\"semanticscholar\"]\ns2_url = {s2_url:?}\ncache_dir = {:?}\ns2_rate_per_sec = 100.0\ns2_rate_per_sec_no_key = 100.0\n\n\
             [experiment]\nmax_runs = {}\n\n[run]\ngpus = []\ncpu_slots = 1\n\n[writeup]\ncitation_rounds = {rounds}\n",
            dir.path().join("lit-cache").display().to_string(),
            runs.max(5),
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aisci"))
        .args(["launch", "--template"])
        .arg(&t)
        .args(["--num-ideas", "1"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("AISCI_CONFIG", &cfg)
        .env("OPENAI_API_KEY", "sk-bench")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let wall_s = started.elapsed().as_secs_f64();
    let journal: serde_json::Value = std::fs::read_to_string(t.join(".aisci/launch.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let idea = &journal["ideas"][0];
    let paper = idea["writeup"]["state"] == "done";
    let reviewed = idea["review"]["state"] == "done";
    if !out.status.success() || !paper || !reviewed {
        eprintln!(
            "cost bench: the launch did not finish a reviewed paper ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if o.keep {
        eprintln!("kept {}", dir.keep().display());
    }
    Outcome {
        calls: model.calls(),
        wall_s,
        paper,
        reviewed,
    }
}

fn k(chars: usize) -> String {
    format!("{:.1}k", chars as f64 / 4000.0)
}

fn total_tokens(calls: &[Call]) -> usize {
    calls.iter().map(|c| c.sent).sum::<usize>() / 4
}

fn table(out: &Outcome) {
    let mut by: BTreeMap<usize, (&str, Vec<&Call>)> = BTreeMap::new();
    for c in &out.calls {
        let i = STAGES.iter().position(|s| *s == c.stage).unwrap_or(STAGES.len());
        by.entry(i).or_insert((c.stage, Vec::new())).1.push(c);
    }
    println!(
        "{:<22} {:>6} {:>11} {:>10} {:>9}  per call (tokens, first → last; min / max)",
        "stage", "calls", "input tok", "cacheable", "output"
    );
    let mut sent = 0;
    let mut cached = 0;
    for (stage, calls) in by.values() {
        let s: usize = calls.iter().map(|c| c.sent).sum();
        let h: usize = calls.iter().map(|c| c.cached).sum();
        let r: usize = calls.iter().map(|c| c.reply).sum();
        sent += s;
        cached += h;
        let min = calls.iter().map(|c| c.sent).min().unwrap_or(0);
        let max = calls.iter().map(|c| c.sent).max().unwrap_or(0);
        let n: usize = calls.iter().map(|c| c.n).sum();
        let count = if n != calls.len() {
            format!("{} ({n})", calls.len())
        } else {
            calls.len().to_string()
        };
        println!(
            "{stage:<22} {count:>6} {:>11} {:>9.0}% {:>9}  {} → {}; {} / {}",
            k(s),
            100.0 * h as f64 / s.max(1) as f64,
            k(r),
            k(calls[0].sent),
            k(calls[calls.len() - 1].sent),
            k(min),
            k(max),
        );
    }
    println!(
        "{:<22} {:>6} {:>11} {:>9.0}%\n\ninput tokens per paper: {}k ({:.2}× v1's {}k; target ≤ {}k) — {} calls, {:.0} s wall, paper {}, review {}",
        "total",
        out.calls.len(),
        k(sent),
        100.0 * cached as f64 / sent.max(1) as f64,
        sent / 4000,
        sent as f64 / 4.0 / V1_TOTAL_TOKENS as f64,
        V1_TOTAL_TOKENS / 1000,
        TARGET_TOKENS / 1000,
        out.calls.len(),
        out.wall_s,
        if out.paper { "built" } else { "NOT built" },
        if out.reviewed { "done" } else { "NOT done" },
    );
}

fn stage_tokens(calls: &[Call], prefix: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.stage.starts_with(prefix))
        .map(|c| c.sent)
        .sum::<usize>()
        / 4
}

#[tokio::main]
async fn main() {
    let o = opts();
    println!(
        "cost bench: aisci launch --num-ideas 1, {} runs, {} citation rounds, {} shape\n",
        o.runs,
        o.rounds,
        if o.shape_2d { "2d_diffusion" } else { "tiny_mlp" }
    );
    let one = launch(&o, o.runs, o.rounds).await;
    table(&one);
    if o.once {
        return;
    }
    println!(
        "\nscaling with runs ({} citation rounds): runs, experiment-stage tokens, total tokens",
        o.rounds
    );
    for runs in 1..=5 {
        let out = launch(&o, runs, o.rounds).await;
        println!(
            "  {runs}  {:>7}k  {:>7}k",
            stage_tokens(&out.calls, "experiment") / 1000,
            total_tokens(&out.calls) / 1000
        );
    }
    println!(
        "\nscaling with citation rounds ({} runs): rounds, citation tokens, writeup tokens, total tokens",
        o.runs
    );
    for rounds in [0, 5, 10, 20, 30] {
        let out = launch(&o, o.runs, rounds).await;
        println!(
            "  {rounds:>2}  {:>7}k  {:>7}k  {:>7}k",
            stage_tokens(&out.calls, "writeup: citations") / 1000,
            stage_tokens(&out.calls, "writeup") / 1000,
            total_tokens(&out.calls) / 1000
        );
    }
}
