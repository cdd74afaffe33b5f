//! The `aisci` command: the language server and the headless stages.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use aisci::cli::demo;
use aisci::config::{self, Sources};
use aisci::jobs::Progress;
use aisci::project::Template;
use aisci::stages;

#[derive(Parser)]
#[command(
    name = "aisci",
    version,
    about = "The AI Scientist research loop as a language server and CLI"
)]
struct Cli {
    /// Model for this command (overrides config and AISCI_MODEL).
    #[arg(long, global = true)]
    model: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Speak the Language Server Protocol on stdin/stdout.
    Lsp,
    /// Generate research ideas for a template and append them to its ideas.json.
    Ideas {
        /// The template folder (experiment.py, prompt.json, seed_ideas.json).
        #[arg(long, default_value = ".")]
        template: PathBuf,
        /// Number of new ideas.
        #[arg(short = 'n', long)]
        num_ideas: Option<u32>,
        /// Rounds per idea, the first included.
        #[arg(long)]
        reflections: Option<u32>,
    },
    /// Check the ideas in a template's ideas.json against the literature and record the verdicts.
    Novelty {
        #[arg(long, default_value = ".")]
        template: PathBuf,
        /// Only these ideas (by Name); repeatable. Default: every unchecked idea.
        #[arg(long = "idea")]
        ideas: Vec<String>,
        /// Check again ideas that already have a verdict.
        #[arg(long)]
        force: bool,
    },
    /// Implement an idea: the model edits experiment.py, aisci runs it (up to
    /// experiment.max_runs runs), then plot.py and notes.txt.
    Experiment {
        /// An idea folder (results/<template>/<YYYYmmdd_HHMMSS>_<Name>/).
        #[arg(long, conflicts_with_all = ["template", "idea"])]
        idea_folder: Option<PathBuf>,
        /// Or: a template and the Name of one of its ideas (repeat --idea for several);
        /// each idea gets a new idea folder.
        #[arg(long, requires = "idea")]
        template: Option<PathBuf>,
        #[arg(long, requires = "template")]
        idea: Vec<String>,
        /// How many ideas run at once, each in its own folder with its own conversation;
        /// their runs share the GPU queue (one GPU each while they run). Default: one
        /// per GPU slot (or CPU slot).
        #[arg(long, requires = "template", value_parser = clap::value_parser!(u32).range(1..))]
        parallel: Option<u32>,
    },
    /// Run `python experiment.py --out_dir=run_0` in a template to make its baseline.
    Baseline {
        #[arg(long, default_value = ".")]
        template: PathBuf,
    },
    /// Apply the SEARCH/REPLACE blocks of a saved model reply to the files of the current
    /// folder: all blocks or none; `--dry-run` prints the diff instead.
    Apply {
        /// The saved reply ('-' reads standard input).
        reply: PathBuf,
        /// Show the unified diff and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The folder whose files are edited.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Launch the next run_<i> (the first that does not exist, i >= 1) of the experiment
    /// in DIR: `python experiment.py --out_dir=run_<i>` with the editor's runner, GPU
    /// queue and limits, its output streamed here and kept in run_<i>/, facts in
    /// run_<i>/env.json. Exits with the run's status: its exit code, 124 on timeout,
    /// 128+N when killed by signal N, 125 when stopped for a limit, 130 when cancelled;
    /// 2 when aisci could not start it.
    Run {
        /// Wall-clock limit (default: experiment.timeout_secs).
        #[arg(long)]
        timeout: Option<u64>,
        /// GPUs to use, e.g. "0,1" (default: run.gpus, else nvidia-smi); "" for CPU only.
        /// Local runner only: Slurm hands out GPUs itself (run.slurm.gpus_per_run).
        #[arg(long)]
        gpus: Option<String>,
        /// Where the run executes (default: run.runner): `local` or `slurm`.
        #[arg(long, value_parser = ["local", "slurm"])]
        runner: Option<String>,
        /// The experiment folder (holds experiment.py).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// What this machine and configuration give aisci: python and each template's
    /// imports, TeX tools, GPUs, Slurm, API key variables (set or not, never their
    /// values), and whether the model and literature endpoints answer. Exit 1 when
    /// something the configured setup needs is missing.
    Doctor {
        /// A template, or a folder holding templates (default: the current folder).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Write the paper of an idea folder (latex/template.tex): every part, citations from
    /// the literature, a refinement pass, then checks and builds whose errors go back to
    /// the model. Exits 1 unless the paper was written and built without errors.
    Writeup {
        /// The idea folder (holds notes.txt, experiment.py, run_<i>/ and latex/).
        #[arg(long)]
        idea_folder: PathBuf,
        /// Write only this section (its title, e.g. "Results"), then check and build.
        #[arg(long)]
        section: Option<String>,
    },
    /// Review an idea folder's paper (its PDF, else latex/template.tex): an ensemble of
    /// reviews in the NeurIPS form, a meta-review, reflection rounds; writes review.json and
    /// review.txt. With --improvement, then revises the paper for every comment, rebuilds it
    /// and reviews it again (review_improved.txt).
    Review {
        #[arg(long)]
        idea_folder: PathBuf,
        #[arg(long)]
        improvement: bool,
    },
    /// Measure a reviewer model on labelled papers (v1's ICLR benchmark format): accuracy,
    /// balanced accuracy, F1, AUC, FPR, FNR for the model's decision and the calibrated one.
    ReviewBench {
        /// Folder of papers named <paper_id>.pdf, .txt, .md or .tex.
        #[arg(long)]
        papers: PathBuf,
        /// TSV/CSV with paper_id and decision columns (e.g. v1's ratings_subset.tsv).
        #[arg(long)]
        labels: PathBuf,
        /// Per-paper results (CSV); an existing file is resumed.
        #[arg(long, default_value = "review_bench.csv")]
        out: PathBuf,
        /// Review at most this many papers (in paper id order).
        #[arg(long)]
        limit: Option<usize>,
        /// Papers reviewed at once.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
    },
    /// The whole loop headless (v1's launch_scientist): ideas, novelty, then for each novel
    /// idea experiments, the paper and its review, several ideas at once; a summary table at
    /// the end. --resume continues a stopped launch (.aisci/launch.json).
    Launch {
        #[arg(long)]
        template: PathBuf,
        /// Ideas to generate (default: ideas.num_ideas).
        #[arg(long)]
        num_ideas: Option<u32>,
        /// Ideas pursued at once (default: one per GPU, or per CPU slot).
        #[arg(long)]
        parallel: Option<usize>,
        /// GPUs to use, e.g. "0,1" (run.gpus).
        #[arg(long)]
        gpus: Option<String>,
        /// Literature engine for novelty and citations: semanticscholar, openalex or arxiv.
        #[arg(long)]
        engine: Option<String>,
        #[arg(long)]
        skip_idea_generation: bool,
        #[arg(long)]
        skip_novelty_check: bool,
        /// After the review, revise the paper for every comment and review it again.
        #[arg(long)]
        improvement: bool,
        /// Stop starting stages once the launch has spent this much.
        #[arg(long)]
        budget_usd: Option<f64>,
        /// Continue the launch recorded in the template's .aisci/launch.json.
        #[arg(long)]
        resume: bool,
    },
    /// Run the loop offline on the bundled demo template with a recorded model conversation.
    Demo {
        /// Where to put the demo project (default: a new temporary folder).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Progress for a terminal: one line per report on stderr.
struct Stderr;

impl Progress for Stderr {
    fn report(&self, message: &str, percent: Option<u32>) {
        match percent {
            Some(p) => eprintln!("[{p:>3}%] {message}"),
            None => eprintln!("       {message}"),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AISCI_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async move {
        match cli.command {
            Cmd::Lsp => {
                let code = aisci::lsp::serve(tokio::io::stdin(), tokio::io::stdout()).await;
                ExitCode::from(code as u8)
            }
            Cmd::Ideas {
                template,
                num_ideas,
                reflections,
            } => report(ideas(&template, cli.model, num_ideas, reflections, None).await),
            Cmd::Novelty {
                template,
                ideas,
                force,
            } => report(novelty(&template, cli.model, ideas, force).await),
            Cmd::Apply { reply, dry_run, dir } => report(apply(&reply, dry_run, &dir)),
            Cmd::Experiment {
                idea_folder,
                template,
                idea,
                parallel,
            } => {
                if idea.len() > 1 || parallel.is_some() {
                    let template = template.expect("clap: --parallel requires --template");
                    report(experiments_in_parallel(&template, idea, parallel, cli.model).await)
                } else {
                    report(experiment(idea_folder, template, idea.into_iter().next(), cli.model).await)
                }
            }
            Cmd::Baseline { template } => report(baseline(&template).await),
            Cmd::Doctor { dir } => doctor(&dir).await,
            Cmd::Writeup { idea_folder, section } => report(writeup(&idea_folder, section, cli.model).await),
            Cmd::Review {
                idea_folder,
                improvement,
            } => report(review(&idea_folder, improvement, cli.model).await),
            Cmd::ReviewBench {
                papers,
                labels,
                out,
                limit,
                jobs,
            } => report(review_bench(&papers, &labels, &out, limit, jobs, cli.model).await),
            Cmd::Launch {
                template,
                num_ideas,
                parallel,
                gpus,
                engine,
                skip_idea_generation,
                skip_novelty_check,
                improvement,
                budget_usd,
                resume,
            } => {
                let plan = aisci::cli::launch::LaunchPlan {
                    num_ideas,
                    parallel,
                    skip_idea_generation,
                    skip_novelty_check,
                    improvement,
                    budget_usd,
                    resume,
                };
                report(launch(&template, plan, gpus, engine, cli.model).await)
            }
            Cmd::Demo { out } => report(run_demo(out, cli.model).await),
            Cmd::Run {
                timeout,
                gpus,
                runner,
                dir,
            } => match launch_run(&dir, timeout, gpus, runner).await {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("aisci: {e:#}");
                    ExitCode::from(2)
                }
            },
        }
    });
    // stdin is read on a blocking thread that would keep the process alive after
    // `exit` while the client holds the pipe open; don't wait for it.
    rt.shutdown_timeout(std::time::Duration::from_millis(20));
    code
}

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aisci: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Cancels on Ctrl-C; the stage keeps what it finished.
fn ctrl_c_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("aisci: cancelling (finished ideas are kept)…");
            t.cancel();
        }
    });
    token
}

/// Run results for a terminal, as they arrive.
struct PrintRuns {
    baseline: Option<serde_json::Value>,
}

impl aisci::stages::experiment::agent::ExperimentEvents for PrintRuns {
    fn run_started(&self, run: u32, attempt: u32) {
        eprintln!("aisci: run_{run}, attempt {attempt}…");
    }
    fn run_finished(&self, record: &aisci::project::RunRecord) {
        println!("{}", aisci::project::headline(record, self.baseline.as_ref()));
    }
    fn edits_applied(&self, files: &[String]) {
        eprintln!("aisci: the model edited {}", files.join(", "));
    }
}

async fn experiment(
    folder: Option<PathBuf>,
    template: Option<PathBuf>,
    idea_name: Option<String>,
    model: Option<String>,
) -> anyhow::Result<()> {
    use aisci::project::{self, IdeaFolder};
    // Settings and the model client come first, so a missing key stops us before
    // anything is created or run.
    let existing = match &folder {
        Some(dir) => {
            let dir = std::fs::canonicalize(dir).unwrap_or(dir.clone());
            Some(IdeaFolder::from_path(&dir).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} is not an idea folder (results/<template>/<YYYYmmdd_HHMMSS>_<Name>/)",
                    dir.display()
                )
            })?)
        }
        None => None,
    };
    let template = match (&existing, template) {
        (None, Some(t)) => Some(open_template(&t, None)?.0),
        (None, None) => anyhow::bail!("give --idea-folder DIR, or --template DIR --idea NAME"),
        _ => None,
    };
    let root = existing
        .as_ref()
        .map(|f| f.root.clone())
        .or(template.as_ref().map(|t| t.root.clone()))
        .unwrap();
    let mut src = Sources::from_system(Some(&root));
    src.cli_model = model;
    let loaded = config::load(&src);
    for w in &loaded.warnings {
        eprintln!("aisci: warning: {w}");
    }
    let s = &loaded.settings;
    let llm = stages::llm_for(s, &root)?;
    let (folder, idea) = match (existing, template, idea_name) {
        (Some(f), _, _) => {
            let idea = stages::idea_of_folder(&f)?;
            (f, idea)
        }
        (None, Some(template), Some(name)) => {
            let idea = stages::idea_in_template(&template, &name)?;
            let now = chrono::Local::now().naive_local();
            let f = project::create_idea_folder(
                &template,
                &project::default_results_root(&template),
                &idea,
                now,
            )?;
            eprintln!("aisci: created {}", f.root.display());
            (f, idea)
        }
        _ => anyhow::bail!("give --idea-folder DIR, or --template DIR --idea NAME"),
    };
    eprintln!(
        "aisci: implementing {} in {} with {} via {}",
        idea.name,
        folder.root.display(),
        llm.provider().model(),
        llm.provider().name()
    );
    let events = PrintRuns {
        baseline: project::read_baseline(&folder.root)
            .ok()
            .map(|b| serde_json::Value::Object(b.means_by_dataset())),
    };
    let cancel = ctrl_c_token();
    let deps = stages::ExperimentDeps {
        llm: &llm,
        sink: &aisci::agent::edit_sink::DiskSink,
        events: &events,
        progress: &Stderr,
        cancel: &cancel,
    };
    let outcome = stages::run_experiment(&folder, &idea, s, deps).await?;
    println!("{}", outcome.summary());
    Ok(())
}

/// `aisci writeup --idea-folder DIR [--section TITLE]`.
async fn writeup(dir: &Path, section: Option<String>, model: Option<String>) -> anyhow::Result<()> {
    use aisci::stages::writeup::agent::WriteScope;
    use aisci::stages::writeup::{self as writeup_stage, WriteupDeps};
    let root = std::fs::canonicalize(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let tex = writeup_stage::paper_tex(&root);
    if !tex.is_file() {
        anyhow::bail!("{} has no paper: expected {}", root.display(), tex.display());
    }
    let idea = aisci::project::IdeaFolder::from_path(&root)
        .map(|f| f.name)
        .unwrap_or_else(|| {
            root.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        });
    let mut src = Sources::from_system(Some(&root));
    let flag_model = model.is_some();
    src.cli_model = model;
    let mut loaded = config::load(&src);
    for w in &loaded.warnings {
        eprintln!("aisci: warning: {w}");
    }
    if flag_model {
        // --model names the model for this command, over writeup.model too.
        loaded.settings.writeup.model = None;
    }
    let s = &loaded.settings;
    let llm = writeup_stage::writeup_llm(s, &root)?;
    let lit = match stages::literature_for(s) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("aisci: warning: no literature search, so no citations: {e}");
            None
        }
    };
    let on_notice = |n: String| eprintln!("aisci: {n}");
    let noticed = lit.as_deref().map(|lit| stages::NoticedSearch {
        lit,
        on_notice: &on_notice,
    });
    let scope = match section {
        Some(t) => WriteScope::Section(t),
        None => WriteScope::Paper,
    };
    eprintln!(
        "aisci: writing {} with {} via {}",
        tex.display(),
        llm.provider().model(),
        llm.provider().name()
    );
    let cancel = ctrl_c_token();
    let deps = WriteupDeps {
        llm: &llm,
        sink: &aisci::agent::edit_sink::DiskSink,
        search: noticed.as_ref().map(|n| n as &dyn aisci::literature::PaperSearch),
        progress: &Stderr,
        cancel: &cancel,
    };
    let outcome = writeup_stage::run_writeup(&root, &idea, &scope, s, deps).await?;
    println!("{}", outcome.summary());
    if !outcome.report.succeeded() {
        anyhow::bail!("the paper is not finished (see above)");
    }
    Ok(())
}

/// The idea folder, its idea's name and its settings (warnings printed).
fn open_idea_folder(dir: &Path, model: Option<String>) -> anyhow::Result<(PathBuf, String, config::Loaded)> {
    let root = std::fs::canonicalize(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let idea = aisci::project::IdeaFolder::from_path(&root)
        .map(|f| f.name)
        .unwrap_or_else(|| {
            root.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        });
    let mut src = Sources::from_system(Some(&root));
    src.cli_model = model;
    let loaded = config::load(&src);
    for w in &loaded.warnings {
        eprintln!("aisci: warning: {w}");
    }
    Ok((root, idea, loaded))
}

/// `aisci launch --template DIR ...`.
async fn launch(
    dir: &Path,
    plan: aisci::cli::launch::LaunchPlan,
    gpus: Option<String>,
    engine: Option<String>,
    model: Option<String>,
) -> anyhow::Result<()> {
    let (template, mut loaded) = open_template(dir, model)?;
    let s = &mut loaded.settings;
    if let Some(list) = gpus {
        s.run.gpus = Some(
            list.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(String::from)
                .collect(),
        );
    }
    if let Some(e) = engine {
        s.literature.engines = vec![e];
    }
    // A missing key stops us before anything is written.
    let llm = stages::llm_for(s, &template.root)?;
    eprintln!(
        "aisci: launch on {} with {} via {}{}",
        template.root.display(),
        llm.provider().model(),
        llm.provider().name(),
        plan.budget_usd
            .map(|b| format!(", budget ${b:.2}"))
            .unwrap_or_default()
    );
    drop(llm);
    let events = PrintLaunch {
        started: std::time::Instant::now(),
    };
    let cancel = ctrl_c_token();
    let report = aisci::cli::launch::launch(&template, s, &plan, &events, &cancel).await?;
    println!("{}", report.table());
    if report.budget_exhausted {
        println!("the budget is spent: stages not started are left for `aisci launch --resume` with a larger --budget-usd");
    }
    if report.cancelled {
        anyhow::bail!(
            "interrupted; `aisci launch --template {} --resume` goes on",
            template.root.display()
        );
    }
    Ok(())
}

/// Launch progress on a terminal: elapsed time, the idea, the line.
struct PrintLaunch {
    started: std::time::Instant,
}

impl aisci::cli::launch::LaunchEvents for PrintLaunch {
    fn say(&self, idea: Option<&str>, message: &str) {
        let t = self.started.elapsed().as_secs();
        let tag = idea.map(|i| format!("[{i}] ")).unwrap_or_default();
        let first = message.lines().next().unwrap_or_default();
        eprintln!("{:>3}:{:02} {tag}{first}", t / 60, t % 60);
    }
    fn run_finished(&self, idea: &str, record: &aisci::project::RunRecord) {
        println!("[{idea}] {}", aisci::project::headline(record, None));
    }
}

/// `aisci review --idea-folder DIR [--improvement]`.
async fn review(dir: &Path, improvement: bool, model: Option<String>) -> anyhow::Result<()> {
    use aisci::stages::review::{self as review_stage, ReviewDeps};
    let flag_model = model.is_some();
    let (root, idea, mut loaded) = open_idea_folder(dir, model)?;
    if flag_model {
        // --model names the model for this command, over review.model too.
        loaded.settings.review.model = None;
        loaded.settings.writeup.model = None;
    }
    let s = &loaded.settings;
    let llm = review_stage::reviewer_llm(s, &root)?;
    let cancel = ctrl_c_token();
    eprintln!(
        "aisci: reviewing {} with {} via {} ({} reviewer(s), {} reflection round(s))",
        root.display(),
        llm.provider().model(),
        llm.provider().name(),
        s.review.ensemble,
        s.review.reflection_rounds
    );
    let deps = || ReviewDeps {
        llm: &llm,
        progress: &Stderr,
        cancel: &cancel,
    };
    let first = review_stage::run_review(&root, &idea, s, deps(), false).await?;
    println!("{}", first.summary());
    if !improvement {
        return Ok(());
    }
    let writer = aisci::stages::writeup::writeup_llm(s, &root)?;
    let revised = review_stage::revise_for_review(
        &root,
        &idea,
        s,
        None,
        aisci::stages::writeup::WriteupDeps {
            llm: &writer,
            sink: &aisci::agent::edit_sink::DiskSink,
            search: None,
            progress: &Stderr,
            cancel: &cancel,
        },
    )
    .await?;
    println!("revision: {}", revised.summary());
    let second = review_stage::run_review(&root, &idea, s, deps(), true).await?;
    println!("after the revision:\n{}", second.summary());
    Ok(())
}

/// `aisci review-bench --papers DIR --labels FILE`.
async fn review_bench(
    papers: &Path,
    labels: &Path,
    out: &Path,
    limit: Option<usize>,
    jobs: usize,
    model: Option<String>,
) -> anyhow::Result<()> {
    let flag_model = model.is_some();
    let cwd = std::env::current_dir()?;
    let mut src = Sources::from_system(Some(&cwd));
    src.cli_model = model;
    let mut loaded = config::load(&src);
    for w in &loaded.warnings {
        eprintln!("aisci: warning: {w}");
    }
    if flag_model {
        loaded.settings.review.model = None;
    }
    let s = &loaded.settings;
    let llm = aisci::stages::review::reviewer_llm(s, &cwd)?;
    let cancel = ctrl_c_token();
    eprintln!(
        "aisci: review-bench with {} via {}; results in {}",
        llm.provider().model(),
        llm.provider().name(),
        out.display()
    );
    let set = aisci::cli::review_bench::BenchSet {
        papers,
        labels,
        out,
        limit,
        jobs,
    };
    let run = aisci::cli::review_bench::run_bench(&set, s, &llm, &cancel).await?;
    print!("{}", run.report.table());
    if run.resumed > 0 {
        println!("{} paper(s) taken from {}", run.resumed, out.display());
    }
    if run.skipped_labels > 0 {
        println!(
            "{} label row(s) neither accept nor reject were left out",
            run.skipped_labels
        );
    }
    for (id, why) in &run.failed {
        println!("not reviewed: {id}: {why}");
    }
    let t = llm.ledger_snapshot().total;
    println!(
        "{}",
        stages::cost_line(&t, llm.provider().name(), llm.provider().model())
    );
    if cancel.is_cancelled() {
        anyhow::bail!("interrupted; run the same command again to go on");
    }
    Ok(())
}

/// `aisci experiment --template T --idea A --idea B [--parallel G]`.
async fn experiments_in_parallel(
    template: &Path,
    names: Vec<String>,
    parallel: Option<u32>,
    model: Option<String>,
) -> anyhow::Result<()> {
    use aisci::cli::batch::{self, IdeaJob};
    use aisci::project;
    let (template, loaded) = open_template(template, model)?;
    let s = &loaded.settings;
    // A missing key stops us before any folder is created.
    let llm = stages::llm_for(s, &template.root)?;
    let mut ideas = Vec::new();
    for name in &names {
        if ideas.iter().any(|i: &project::Idea| &i.name == name) {
            anyhow::bail!("--idea {name} is given twice");
        }
        ideas.push(stages::idea_in_template(&template, name)?);
    }
    let parallel = match parallel {
        Some(p) => p as usize,
        None => batch::default_parallelism(s).await,
    };
    eprintln!(
        "aisci: implementing {} idea(s), {parallel} at a time, with {} via {}",
        ideas.len(),
        llm.provider().model(),
        llm.provider().name()
    );
    let results_root = project::default_results_root(&template);
    let mut jobs = Vec::new();
    for idea in ideas {
        let now = chrono::Local::now().naive_local();
        let folder = project::create_idea_folder(&template, &results_root, &idea, now)?;
        jobs.push(IdeaJob { folder, idea });
    }
    let baseline = project::read_baseline(&template.root)
        .ok()
        .map(|b| serde_json::Value::Object(b.means_by_dataset()));
    let events = std::sync::Arc::new(PrintBatch { baseline });
    let results = batch::run_ideas(jobs, s, parallel, events, &ctrl_c_token()).await;
    let mut failed = 0;
    println!("--");
    for r in &results {
        match &r.outcome {
            Ok(o) => println!("{}: {}", r.name, o.summary()),
            Err(e) => {
                failed += 1;
                println!("{}: failed: {e}", r.name)
            }
        }
    }
    match failed {
        0 => Ok(()),
        n => anyhow::bail!("{n} of {} idea(s) failed", results.len()),
    }
}

/// Prints a batch's events, each line tagged with its idea.
struct PrintBatch {
    baseline: Option<serde_json::Value>,
}

impl aisci::cli::batch::BatchEvents for PrintBatch {
    fn idea_started(&self, name: &str, folder: &Path) {
        eprintln!("aisci: [{name}] started in {}", folder.display());
    }
    fn run_started(&self, name: &str, run: u32, attempt: u32) {
        eprintln!("aisci: [{name}] run_{run}, attempt {attempt}…");
    }
    fn run_finished(&self, name: &str, record: &aisci::project::RunRecord) {
        println!(
            "[{name}] {}",
            aisci::project::headline(record, self.baseline.as_ref())
        );
    }
    fn edits_applied(&self, name: &str, files: &[String]) {
        eprintln!("aisci: [{name}] the model edited {}", files.join(", "));
    }
}

async fn doctor(dir: &Path) -> ExitCode {
    use aisci::cli::doctor::Status;
    let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let loaded = config::load(&Sources::from_system(Some(&root)));
    for w in &loaded.warnings {
        eprintln!("aisci: warning: {w}");
    }
    let checks = aisci::cli::doctor::run(&loaded.settings, &root).await;
    let mut section = "";
    for c in &checks {
        if c.section != section {
            section = c.section;
            println!("{section}");
        }
        println!("  {}", c.line());
    }
    if checks.iter().any(|c| c.status == Status::Missing) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn baseline(dir: &Path) -> anyhow::Result<()> {
    let (template, loaded) = open_template(dir, None)?;
    eprintln!("aisci: running the baseline in {}", template.root.display());
    let record = stages::baseline(&template, &loaded.settings, &ctrl_c_token()).await?;
    println!(
        "{}",
        aisci::project::headline(&record, None).replacen("run_0", "baseline (run_0)", 1)
    );
    Ok(())
}

fn apply(reply: &Path, dry_run: bool, dir: &Path) -> anyhow::Result<()> {
    let text = if reply == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(reply).map_err(|e| anyhow::anyhow!("{}: {e}", reply.display()))?
    };
    match aisci::agent::edits::apply_reply_to_folder(dir, &text, None, dry_run) {
        Ok(report) => {
            if dry_run {
                print!("{}", report.diff);
            }
            let verb = if dry_run { "would change" } else { "changed" };
            let files: Vec<&str> = report.files.iter().map(|f| f.path.as_str()).collect();
            eprintln!("aisci: {verb} {} file(s): {}", files.len(), files.join(", "));
            Ok(())
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("aisci: {e}");
            }
            anyhow::bail!("{} block(s) failed; no file was changed", errors.len())
        }
    }
}

/// The template at `dir` and its settings (warnings printed), with `--model` applied.
fn open_template(dir: &Path, model: Option<String>) -> anyhow::Result<(Template, config::Loaded)> {
    let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let template = Template::open(&root).ok_or_else(|| stages::StageError::NotATemplate(root.clone()))?;
    let mut src = Sources::from_system(Some(&template.root));
    src.cli_model = model;
    let loaded = config::load(&src);
    for w in &loaded.warnings {
        eprintln!("aisci: warning: {w}");
    }
    Ok((template, loaded))
}

async fn novelty(dir: &Path, model: Option<String>, ideas: Vec<String>, force: bool) -> anyhow::Result<()> {
    let (template, loaded) = open_template(dir, model)?;
    let s = &loaded.settings;
    let llm = stages::llm_for(s, &template.root)?;
    let search = stages::literature_for(s)?;
    eprintln!(
        "aisci: checking novelty in {} with {} via {}; engines: {}",
        template.ideas_json().display(),
        llm.provider().model(),
        llm.provider().name(),
        s.literature.engines.join(", ")
    );
    let cancel = ctrl_c_token();
    let only = (!ideas.is_empty()).then_some(ideas.as_slice());
    // Engine switches are said as they happen.
    let on_notice = |n: String| eprintln!("aisci: {n}");
    let noticed = stages::NoticedSearch {
        lit: search.as_ref(),
        on_notice: &on_notice,
    };
    let outcome =
        stages::run_novelty(&template, s, &llm, &noticed, None, only, force, &Stderr, &cancel).await?;
    for r in &outcome.report.results {
        let verdict = match r.verdict.novel {
            Some(true) => "novel",
            Some(false) => "not novel",
            None => "not checked",
        };
        println!("{}: {verdict} — {}", r.name, r.verdict.reason);
    }
    println!("{}", outcome.summary());
    Ok(())
}

async fn ideas(
    dir: &Path,
    model: Option<String>,
    num_ideas: Option<u32>,
    reflections: Option<u32>,
    replay: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (template, mut loaded) = open_template(dir, model)?;
    let s = &mut loaded.settings;
    if let Some(n) = num_ideas {
        s.ideas.num_ideas = n.max(1);
    }
    if let Some(r) = reflections {
        s.ideas.num_reflections = r.max(1);
    }
    if let Some(rec) = replay {
        s.llm.provider = config::ProviderKind::Replay;
        s.llm.replay_file = Some(rec);
    }
    let llm = stages::llm_for(s, &template.root)?;
    eprintln!(
        "aisci: generating {} idea(s) for {} with {} via {}",
        s.ideas.num_ideas,
        template.root.display(),
        llm.provider().model(),
        llm.provider().name()
    );
    let cancel = ctrl_c_token();
    let outcome = stages::run_ideas(&template, s, &llm, None, &Stderr, &cancel).await?;
    for idea in &outcome.report.accepted {
        println!(
            "{}: {} (interestingness {}, feasibility {}, novelty {})",
            idea.name, idea.title, idea.interestingness, idea.feasibility, idea.novelty
        );
    }
    println!("{}", outcome.summary());
    Ok(())
}

async fn run_demo(out: Option<PathBuf>, model: Option<String>) -> anyhow::Result<()> {
    let project = demo::materialize(out.as_deref())?;
    println!("aisci demo: project in {}", project.template.display());
    println!(
        "aisci demo: the model is a RECORDING ({}), not a live model; the literature answers are recorded too; no network is used.",
        project.template.join(demo::DEMO_RECORDING).display()
    );
    if model.is_some() {
        eprintln!("aisci demo: --model is ignored; the demo always replays its recording");
    }
    let template = Template::open(&project.template)
        .ok_or_else(|| stages::StageError::NotATemplate(project.template.clone()))?;
    let settings = demo::settings(&project);
    let tex_ready = aisci::latex::build::available_tool().is_some();
    if !tex_ready {
        println!("aisci demo: TeX (latexmk/pdflatex) is not installed: the paper is written and kept as .tex, not compiled");
    }
    let plan = aisci::cli::launch::LaunchPlan {
        parallel: Some(1),
        ..Default::default()
    };
    let events = PrintLaunch {
        started: std::time::Instant::now(),
    };
    let report = aisci::cli::launch::launch(&template, &settings, &plan, &events, &ctrl_c_token()).await?;
    println!("{}", report.table());
    // The review as the editor shows it: each comment where it applies in the paper.
    for idea in report
        .ideas
        .iter()
        .filter(|i| i.review == aisci::cli::launch::Step::Done)
    {
        let Some(file) = aisci::stages::review::read_review(&idea.folder) else {
            continue;
        };
        let tex = aisci::stages::writeup::paper_tex(&idea.folder);
        let src = std::fs::read_to_string(&tex)?;
        println!(
            "review of {} ({}), as diagnostics on the paper:",
            idea.name,
            file.headline()
        );
        for p in aisci::stages::review::place_comments(&file, &src) {
            let line = src[..p.anchor.span.start].matches('\n').count() + 1;
            let col = p.anchor.span.start - src[..p.anchor.span.start].rfind('\n').map_or(0, |i| i + 1) + 1;
            let severity = match p.kind {
                aisci::stages::review::agent::CommentKind::Weakness => "warning",
                aisci::stages::review::agent::CommentKind::Question => "info",
                aisci::stages::review::agent::CommentKind::Limitation => "hint",
            };
            println!(
                "  {}:{line}:{col}: {severity}: {}: {}",
                tex.display(),
                p.kind.label(),
                p.text
            );
        }
    }
    if report.papers == 0 && tex_ready {
        anyhow::bail!("the demo wrote no paper (see above)");
    }
    Ok(())
}

/// `aisci run`: the run's exit status as a shell would report it.
async fn launch_run(
    dir: &Path,
    timeout: Option<u64>,
    gpus: Option<String>,
    runner: Option<String>,
) -> anyhow::Result<u8> {
    use aisci::runner::QueueEvent;
    use std::sync::Arc;

    let root = std::fs::canonicalize(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let loaded = config::load(&Sources::from_system(Some(&root)));
    for w in &loaded.warnings {
        eprintln!("aisci: warning: {w}");
    }
    let mut s = loaded.settings;
    match runner.as_deref() {
        Some("slurm") => s.run.runner = config::RunnerKind::Slurm,
        Some(_) => s.run.runner = config::RunnerKind::Local,
        None => {}
    }
    if gpus.is_some() && s.run.runner == config::RunnerKind::Slurm {
        eprintln!("aisci: warning: --gpus is ignored with the Slurm runner (see run.slurm.gpus_per_run)");
    }
    if let Some(list) = gpus {
        s.run.gpus = Some(
            list.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(String::from)
                .collect(),
        );
    }
    let observer: aisci::runner::scheduler::Observer = Arc::new(|e: &QueueEvent| match e {
        QueueEvent::Queued { ahead, .. } => eprintln!("aisci: queued ({ahead} ahead)"),
        QueueEvent::Started { slot, .. } => match &slot.gpu {
            Some(g) => eprintln!("aisci: started on GPU {g}"),
            None => eprintln!("aisci: started (CPU)"),
        },
        _ => {}
    });
    let cancel = ctrl_c_token();
    // Runs an earlier aisci left in flight here are settled first (never re-run).
    let pending = aisci::runs::pending(&root);
    if !pending.is_empty() {
        let names: Vec<String> = pending.iter().map(|r| format!("run_{}", r.run)).collect();
        eprintln!(
            "aisci: {} left in flight by an earlier aisci; watching them again",
            names.join(", ")
        );
        for r in stages::resume_runs(&root, &s, &cancel).await {
            match r {
                Ok(resumed) => eprintln!("aisci: {}", resumed.describe()),
                Err(e) => eprintln!("aisci: a run record could not be written: {e}"),
            }
        }
        if cancel.is_cancelled() {
            return Ok(130);
        }
    }
    let opts = stages::LaunchOptions {
        timeout_secs: timeout,
        echo: true,
        observer: Some(observer),
    };
    let launched = stages::launch_run(&root, &s, opts, &cancel).await?;
    eprintln!("aisci: {}", launched.gpus);
    let secs = launched.record.duration_secs;
    let name = format!("run_{}", launched.record.run);
    match (&launched.record.error, launched.record.completed) {
        (None, true) => eprintln!("aisci: {name} done in {secs:.1} s"),
        (Some(e), _) => eprintln!("aisci: {name} ended after {secs:.1} s: {e}"),
        (None, false) => eprintln!("aisci: {name} ended after {secs:.1} s"),
    }
    Ok(launched.exit_code)
}
