//! The `aisci` command: the language server and the headless stages.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use aisci::cli;

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
    Lsp(LspArgs),
    /// Generate research ideas for a template and append them to its ideas.json.
    Ideas(cli::ideas::Args),
    /// Check the ideas in a template's ideas.json against the literature and record the verdicts.
    Novelty(cli::novelty::Args),
    /// Implement an idea: the model edits experiment.py, aisci runs it (up to
    /// experiment.max_runs runs), then plot.py and notes.txt.
    Experiment(cli::experiment::Args),
    /// Run `python experiment.py --out_dir=run_0` in a template to make its baseline.
    Baseline(cli::run::BaselineArgs),
    /// Apply the SEARCH/REPLACE blocks of a saved model reply to the files of the current
    /// folder: all blocks or none; `--dry-run` prints the diff instead.
    Apply(cli::apply::Args),
    /// Launch the next run_<i> (the first that does not exist, i >= 1) of the experiment
    /// in DIR: `python experiment.py --out_dir=run_<i>` with the editor's runner, GPU
    /// queue and limits, its output streamed here and kept in run_<i>/, facts in
    /// run_<i>/env.json. Exits with the run's status: its exit code, 124 on timeout,
    /// 128+N when killed by signal N, 125 when stopped for a limit, 130 when cancelled;
    /// 2 when aisci could not start it.
    Run(cli::run::Args),
    /// An idea folder's checkpoints (its search tree's nodes, or its line of runs): list
    /// them, restore one as experiment.py, or branch the next experiment from one.
    Runs(cli::runs::Args),
    /// What this machine and configuration give aisci: python and each template's
    /// imports, TeX tools, GPUs, Slurm, API key variables (set or not, never their
    /// values), and whether the model and literature endpoints answer. Exit 1 when
    /// something the configured setup needs is missing.
    Doctor(cli::doctor::Args),
    /// Write the paper of an idea folder (latex/template.tex): every part, citations from
    /// the literature, a refinement pass, then checks and builds whose errors go back to
    /// the model. Exits 1 unless the paper was written and built without errors.
    Writeup(cli::writeup::Args),
    /// Review an idea folder's paper (its PDF, else latex/template.tex): an ensemble of
    /// reviews in the NeurIPS form, a meta-review, reflection rounds; writes review.json and
    /// review.txt. With --improvement, then revises the paper for every comment, rebuilds it
    /// and reviews it again (review_improved.txt).
    Review(cli::review::Args),
    /// The paper's checks, printed as `file:line:col: severity: message [code]`: citations,
    /// references, figures, environments, placeholders, and every number traced to the
    /// runs (`aisci integrity`). Exit 1 when something was found, 2 when the paper cannot
    /// be read.
    Check(cli::check::Args),
    /// Measure a reviewer model on labelled papers (v1's ICLR benchmark format): accuracy,
    /// balanced accuracy, F1, AUC, FPR, FNR for the model's decision and the calibrated one.
    /// With --reviews, scores stored reviews (v1's llm_reviews/*.csv) instead, calling no model.
    ReviewBench(cli::review_bench::Args),
    /// The whole loop headless (v1's launch_scientist): ideas, novelty, then for each novel
    /// idea experiments, the paper and its review, several ideas at once; a summary table at
    /// the end. --resume continues a stopped launch (.aisci/launch.json).
    Launch(cli::launch::Args),
    /// Run the loop offline on the bundled demo template with a recorded model conversation.
    Demo(cli::demo::Args),
    /// What a Slurm job runs on the node: the experiment, held as a local run is.
    #[command(hide = true)]
    Contain(cli::contain::Args),
}

#[derive(clap::Args)]
struct LspArgs {
    /// Accepted and ignored: stdin/stdout is the only transport, but many editors' clients
    /// (vscode-languageclient's `TransportKind.stdio`, for one) pass it anyway.
    #[arg(long)]
    stdio: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    aisci::runner::contain::register_this_binary();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, not in a redirected log.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AISCI_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if matches!(cli.command, Cmd::Lsp(_)) {
        // The server waits on the editor most of the time and sends heavy work to
        // blocking threads: a few workers answer requests as fast as many, and each
        // worker's stack and malloc arena would otherwise stay resident for the session.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        builder.worker_threads(cores.clamp(1, 2));
        limit_malloc_arenas();
    }
    let rt = builder.enable_all().build().expect("tokio runtime");
    let model = cli.model;
    let code = rt.block_on(async move {
        match cli.command {
            Cmd::Lsp(_) => {
                ExitCode::from(aisci::lsp::serve(tokio::io::stdin(), tokio::io::stdout()).await as u8)
            }
            Cmd::Ideas(a) => cli::ideas::command(a, model).await,
            Cmd::Novelty(a) => cli::novelty::command(a, model).await,
            Cmd::Experiment(a) => cli::experiment::command(a, model).await,
            Cmd::Baseline(a) => cli::run::baseline_command(a).await,
            Cmd::Apply(a) => cli::apply::command(a),
            Cmd::Run(a) => cli::run::command(a).await,
            Cmd::Runs(a) => cli::runs::command(a),
            Cmd::Doctor(a) => cli::doctor::command(a).await,
            Cmd::Writeup(a) => cli::writeup::command(a, model).await,
            Cmd::Review(a) => cli::review::command(a, model).await,
            Cmd::Check(a) => cli::check::command(a),
            Cmd::ReviewBench(a) => cli::review_bench::command(a, model).await,
            Cmd::Launch(a) => cli::launch::command(a, model).await,
            Cmd::Demo(a) => cli::demo::command(a, model).await,
            Cmd::Contain(a) => cli::contain::command(a).await,
        }
    });
    // stdin is read on a blocking thread that would keep the process alive after
    // `exit` while the client holds the pipe open; don't wait for it.
    rt.shutdown_timeout(std::time::Duration::from_millis(20));
    code
}

/// glibc gives each thread that allocates its own arena (up to 8 per core), and freed
/// memory stays resident in each: two arenas keep a long-lived server's resident set
/// near what it uses.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Editors' clients that append `--stdio` start the server too.
    #[test]
    fn lsp_accepts_the_stdio_flag_clients_append() {
        use clap::Parser;
        assert!(super::Cli::try_parse_from(["aisci", "lsp", "--stdio"]).is_ok());
        assert!(super::Cli::try_parse_from(["aisci", "lsp"]).is_ok());
    }

    /// Every option and argument of every command says what it is for in `--help`.
    #[test]
    fn every_option_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (no description)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "aisci", &mut missing);
        assert!(missing.is_empty(), "options without help text: {missing:#?}");
    }
}
