//! The offline demo: the bundled template and its recorded model conversation,
//! written out to a folder of the user's so nothing in the install is changed.

use std::process::ExitCode;

use super::launch::PrintLaunch;
use super::{job, report};
use crate::project::Template;
use crate::stages;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

/// The demo template, embedded so `aisci demo` works from any directory.
static DEMO_TEMPLATE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../templates/tiny_mlp");

/// The recording's path inside the template (ideas only; the whole loop is `DEMO_RECORDING`).
pub const RECORDING: &str = ".aisci/replay/ideas.json";
/// The model's side of the whole demo loop.
pub const DEMO_RECORDING: &str = ".aisci/replay/demo.json";
/// The literature answers of the demo's novelty queries (a cache that never expires).
pub const LITERATURE_CACHE: &str = ".aisci/replay/literature";
pub const DEMO_IDEAS: u32 = 2;
pub const DEMO_REFLECTIONS: u32 = 3;

pub struct DemoProject {
    pub template: PathBuf,
    pub recording: PathBuf,
}

/// Writes the demo template to `out/tiny_mlp` (or a new temporary folder).
pub fn materialize(out: Option<&Path>) -> std::io::Result<DemoProject> {
    let base = match out {
        Some(p) => {
            std::fs::create_dir_all(p)?;
            p.to_path_buf()
        }
        None => tempfile::Builder::new().prefix("aisci-demo-").tempdir()?.keep(),
    };
    let template = base.join("tiny_mlp");
    if template.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists; choose another --out", template.display()),
        ));
    }
    std::fs::create_dir_all(&template)?;
    DEMO_TEMPLATE.extract(&template)?;
    let recording = template.join(RECORDING);
    Ok(DemoProject { template, recording })
}

/// The settings of the demo: the recording as the model, the recorded literature answers
/// (and a search address nothing listens on, so the network is never used), CPU runs,
/// no citation rounds, a small review ensemble. Nothing from the user's configuration.
pub fn settings(project: &DemoProject) -> crate::config::Settings {
    let mut s = crate::config::Settings::default();
    s.llm.provider = crate::config::ProviderKind::Replay;
    s.llm.replay_file = Some(project.template.join(DEMO_RECORDING));
    s.llm.model = "gpt-4o-2024-11-20".into();
    s.ideas.num_ideas = DEMO_IDEAS;
    s.ideas.num_reflections = DEMO_REFLECTIONS;
    s.literature.engines = vec!["semanticscholar".into()];
    s.literature.cache_dir = Some(project.template.join(LITERATURE_CACHE));
    s.literature.cache_ttl_days = 0;
    s.literature.s2_url = Some("http://127.0.0.1:9".into());
    s.literature.max_retries = 0;
    s.run.gpus = Some(Vec::new());
    s.run.cpu_slots = 1;
    s.writeup.citation_rounds = 0;
    s.writeup.fix_rounds = 0;
    s.review.ensemble = 2;
    s.review.reflection_rounds = 1;
    s
}

// The command.

#[derive(clap::Args)]
pub struct Args {
    /// Where to put the demo project (default: a new temporary folder).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub async fn command(a: Args, model: Option<String>) -> ExitCode {
    report(run_demo(a.out, model).await)
}

async fn run_demo(out: Option<PathBuf>, model: Option<String>) -> anyhow::Result<()> {
    let project = materialize(out.as_deref())?;
    println!("aisci demo: project in {}", project.template.display());
    println!(
        "aisci demo: the model is a RECORDING ({}), not a live model; the literature answers are recorded too; no network is used.",
        project.template.join(DEMO_RECORDING).display()
    );
    if model.is_some() {
        eprintln!("aisci demo: --model is ignored; the demo always replays its recording");
    }
    let template = Template::open(&project.template)
        .ok_or_else(|| stages::StageError::NotATemplate(project.template.clone()))?;
    let mut settings = settings(&project);
    // The interpreter is the one thing taken from the user's config: the demo's runs and
    // plots use the Python the user chose (e.g. one with matplotlib), as real runs would.
    let user = crate::config::load(&crate::config::Sources::from_system(None));
    for w in &user.warnings {
        eprintln!("aisci: warning: {w}");
    }
    settings.run.python = user.settings.run.python;
    println!(
        "aisci demo: experiments and plots run with {} (run.python)",
        settings.run.python
    );
    let tex_ready = crate::latex::build::available_tool().is_some();
    if !tex_ready {
        println!("aisci demo: TeX (latexmk/pdflatex) is not installed: the paper is written and kept as .tex, not compiled");
    }
    let plan = crate::cli::launch::LaunchPlan {
        parallel: Some(1),
        ..Default::default()
    };
    let events = PrintLaunch {
        started: std::time::Instant::now(),
    };
    let show = |idea: Option<&str>, e| events.show(idea, e);
    let job = job("Launch", &project.template)?;
    let report = crate::cli::launch::launch(&template, &settings, &plan, &show, &job).await?;
    println!("{}", report.table());
    // The review as the editor shows it: each comment where it applies in the paper.
    for idea in report
        .ideas
        .iter()
        .filter(|i| i.review == crate::cli::launch::Step::Done)
    {
        let Some(file) = crate::stages::review::read_review(&idea.folder) else {
            continue;
        };
        let tex = crate::stages::writeup::paper_tex(&idea.folder);
        let src = std::fs::read_to_string(&tex)?;
        println!(
            "review of {} ({}), as diagnostics on the paper:",
            idea.name,
            file.headline()
        );
        for p in crate::stages::review::place_comments(&file, &src) {
            let line = src[..p.anchor.span.start].matches('\n').count() + 1;
            let col = p.anchor.span.start - src[..p.anchor.span.start].rfind('\n').map_or(0, |i| i + 1) + 1;
            let severity = match p.kind {
                crate::stages::review::agent::CommentKind::Weakness => "warning",
                crate::stages::review::agent::CommentKind::Question => "info",
                crate::stages::review::agent::CommentKind::Limitation => "hint",
            };
            println!(
                "  {}:{line}:{col}: {severity}: {}: {}",
                tex.display(),
                p.kind.label(),
                p.text
            );
        }
    }
    // What `aisci check --integrity` says of each paper: numbers without a source in the
    // runs, words that contradict their source, figures left out or critiqued.
    for idea in report
        .ideas
        .iter()
        .filter(|i| i.experiments == crate::cli::launch::Step::Done)
    {
        let tex = crate::stages::writeup::paper_tex(&idea.folder);
        let Ok(src) = std::fs::read_to_string(&tex) else {
            continue;
        };
        let problems = super::check::paper_problems(&tex, &src, true);
        if problems.is_empty() {
            println!(
                "integrity of {}: every number traced to its run, no figure problem",
                idea.name
            );
        } else {
            println!("integrity of {}: {} problem(s):", idea.name, problems.len());
            for l in super::check::lines(&problems, &tex, &src, &tex) {
                println!("  {l}");
            }
        }
    }
    if report.papers == 0 && tex_ready {
        anyhow::bail!("the demo wrote no paper (see above)");
    }
    for idea in report
        .ideas
        .iter()
        .filter(|i| i.experiments == crate::cli::launch::Step::Done)
    {
        print!("{}", look_next(&idea.folder));
    }
    Ok(())
}

/// Where the demo's results are and how to open them in an editor.
fn look_next(folder: &Path) -> String {
    let tex = crate::stages::writeup::paper_tex(folder);
    let pdf = tex.with_extension("pdf");
    let mut out = String::from("\nWhat to look at now:\n");
    if pdf.is_file() {
        out.push_str(&format!("  the paper    {}\n", pdf.display()));
    }
    out.push_str(&format!("  its source   {}\n", tex.display()));
    out.push_str(&format!(
        "  the review   {} (v1's format) and review.json (each comment's place in the paper)\n",
        folder.join("review.txt").display()
    ));
    out.push_str(&format!(
        "  the runs     {}/run_0 … and notes.txt; figures and .aisci/figures.json when drawn\n",
        folder.display()
    ));
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "aisci".into());
    // Run from a checkout (cargo run), the plugin is beside the server's sources.
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../editors/nvim");
    let plugin = std::fs::canonicalize(&plugin)
        .ok()
        .filter(|p| p.join("lua/aisci").is_dir());
    match plugin {
        Some(p) => out.push_str(&format!(
            "  in Neovim    nvim --cmd 'set rtp+={}' --cmd \"lua require('aisci').setup({{cmd = {{'{exe}', 'lsp'}}}})\" {}\n",
            p.display(),
            tex.display()
        )),
        None => out.push_str(&format!(
            "  in Neovim    with the plugin (editors/nvim; README, Neovim) and cmd = {{'{exe}', 'lsp'}}: nvim {}\n",
            tex.display()
        )),
    }
    out.push_str(&format!(
        "               the review's comments and the integrity checks are diagnostics; hover a number for its source\n  in VS Code   install the extension (README, VS Code), then open {}\n",
        folder.display()
    ));
    out
}
