//! `aisci run` (the next run_<i> of an experiment) and `aisci baseline` (run_0 of a template).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{gpu_list, job, open_template, report};
use crate::config::{self, Sources};
use crate::stages;

#[derive(clap::Args)]
pub struct Args {
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
}

#[derive(clap::Args)]
pub struct BaselineArgs {
    /// The template whose baseline (run_0/) is made.
    #[arg(long, default_value = ".")]
    template: PathBuf,
}

pub async fn command(a: Args) -> ExitCode {
    match launch_run(&a.dir, a.timeout, a.gpus, a.runner).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("aisci: {}", super::error_line(&e));
            ExitCode::from(2)
        }
    }
}

pub async fn baseline_command(a: BaselineArgs) -> ExitCode {
    report(baseline(&a.template).await)
}

async fn baseline(dir: &Path) -> anyhow::Result<()> {
    let (template, loaded) = open_template(dir, None)?;
    eprintln!("aisci: running the baseline in {}", template.root.display());
    let job = job(stages::experiment::BASELINE_TITLE, &template.root)?;
    let python = loaded.settings.run.python.clone();
    let record = match stages::experiment::baseline(&template, &loaded.settings, &job.cancel).await {
        Ok(r) => r,
        Err(stages::StageError::Baseline(stages::experiment::agent::BaselineError::Failed {
            record,
            message,
        })) => {
            let line = record.error.clone().unwrap_or_default();
            if let Some(module) = crate::runs::finish::missing_module(&line) {
                let log = template.root.join(&record.stderr);
                anyhow::bail!(
                    "the baseline failed: {line}\n{}.\nThe whole output: {}",
                    crate::runs::finish::missing_module_hint(module, &python),
                    log.display()
                );
            }
            anyhow::bail!("the baseline run failed: {message}");
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "{}",
        crate::project::headline(&record, None).replacen("run_0", "baseline (run_0)", 1)
    );
    Ok(())
}

/// `aisci run`: the run's exit status as a shell would report it.
async fn launch_run(
    dir: &Path,
    timeout: Option<u64>,
    gpus: Option<String>,
    runner: Option<String>,
) -> anyhow::Result<u8> {
    use crate::runner::QueueEvent;
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
    let mut unseen = false;
    if let Some(list) = gpus {
        let asked = gpu_list(&list);
        if !asked.is_empty() && s.run.runner == config::RunnerKind::Local {
            // GPUs named by hand that this machine does not show are worth a word before
            // the run starts: it would get a CUDA_VISIBLE_DEVICES that finds no device.
            let seen = crate::runner::gpus::detect_with("nvidia-smi").await;
            let missing: Vec<&String> = asked
                .iter()
                .filter(|a| !seen.gpus.iter().any(|g| &g.index == *a))
                .collect();
            if let crate::runner::gpus::GpuSource::None(why) = &seen.source {
                unseen = true;
                eprintln!(
                    "aisci: warning: --gpus {list}: no GPU is visible here ({why}); the run gets \
                     CUDA_VISIBLE_DEVICES={} and will find no device. For a CPU run use --gpus \"\"",
                    asked.join(",")
                );
            } else if !missing.is_empty() {
                let names: Vec<&str> = missing.iter().map(|m| m.as_str()).collect();
                eprintln!(
                    "aisci: warning: --gpus {list}: GPU {} is not among those nvidia-smi lists ({})",
                    names.join(", "),
                    seen.describe()
                );
            }
        }
        s.run.gpus = Some(asked);
    }
    let observer: crate::runner::scheduler::Observer = Arc::new(move |e: &QueueEvent| match e {
        QueueEvent::Queued { ahead, .. } => eprintln!("aisci: queued ({ahead} ahead)"),
        QueueEvent::Held { gpu, holder, .. } => {
            eprintln!("aisci: queued: GPU {gpu} is held by {holder}; waiting for it")
        }
        QueueEvent::Started { slot, .. } => match &slot.gpu {
            Some(g) if unseen => {
                eprintln!("aisci: started with CUDA_VISIBLE_DEVICES={g} (no GPU is visible)")
            }
            Some(g) => eprintln!("aisci: started on GPU {g}"),
            None => eprintln!("aisci: started (CPU)"),
        },
        _ => {}
    });
    let job = job(stages::experiment::LAUNCH_TITLE, &root)?;
    let cancel = job.cancel.clone();
    // Runs an earlier aisci left in flight here are settled first (never re-run).
    let pending = crate::runs::pending(&root);
    if !pending.is_empty() {
        let names: Vec<String> = pending.iter().map(|r| format!("run_{}", r.run)).collect();
        eprintln!(
            "aisci: {} left in flight by an earlier aisci; watching them again",
            names.join(", ")
        );
        for r in stages::experiment::launch::resume_runs(&root, &s, &cancel).await {
            match r {
                Ok(resumed) => eprintln!("aisci: {}", resumed.describe()),
                Err(e) => eprintln!("aisci: a run record could not be written: {e}"),
            }
        }
        if cancel.is_cancelled() {
            return Ok(130);
        }
    }
    let opts = stages::experiment::launch::LaunchOptions {
        timeout_secs: timeout,
        echo: true,
        observer: Some(observer),
    };
    let launched = stages::experiment::launch::launch_run(&root, &s, opts, &cancel).await?;
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
