//! One run of `experiment.py` outside the agent loop ("Launch run", `aisci run`), and the
//! settling of runs an earlier aisci left in flight.

use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::project::RunRecord;
use crate::runner::{Attachment, Runner, SlotScheduler};
use crate::runs::{ResumeCtx, Resumed};
use crate::stages::services::{reattacher_for, runner_for, scheduled_runner, slurm_runner_for};
use crate::stages::StageError;

/// How to launch a single run.
#[derive(Default)]
pub struct LaunchOptions {
    /// Wall-clock limit; None = `experiment.timeout_secs`.
    pub timeout_secs: Option<u64>,
    /// Also copy the run's output to this process's stdout/stderr (the CLI).
    pub echo: bool,
    /// Queue events (queued, started on a GPU) for whoever shows them.
    pub observer: Option<crate::runner::scheduler::Observer>,
}

/// A launched run's result.
pub struct Launched {
    pub record: RunRecord,
    /// As a shell reports it: the script's code, 124 timeout, 128+N signal, 125
    /// run-folder limit, 130 cancelled.
    pub exit_code: u8,
    /// Which GPUs (or CPU) the queue had, in words.
    pub gpus: String,
}

/// `python experiment.py --out_dir=run_i` for the next free `run_i` of `root`
/// (outside the agent loop): through the GPU queue and limits of every run, with the
/// run record and env.json written, whatever the outcome.
pub async fn launch_run(
    root: &Path,
    s: &Settings,
    opts: LaunchOptions,
    cancel: &CancellationToken,
) -> Result<Launched, StageError> {
    use crate::project::RunOrigin;
    use crate::runner::{ExitKind, RunEvent};
    use crate::runs::attempt::{run_attempt, AttemptSpec};

    let input = |message: String| StageError::Input {
        path: root.to_path_buf(),
        message,
    };
    if !root.join("experiment.py").is_file() {
        return Err(input(format!("{} has no experiment.py", root.display())));
    }
    let timeout_secs = opts.timeout_secs.unwrap_or(s.experiment.timeout_secs);
    if timeout_secs == 0 {
        return Err(input("the timeout must be at least 1 second".into()));
    }
    let slurm = s.run.runner == crate::config::RunnerKind::Slurm;
    let found = match slurm {
        true => None,
        false => Some(crate::runner::gpus::detect(&s.run).await),
    };
    let observer = opts.observer;
    let runner: Arc<dyn Runner> = match &found {
        None => Arc::new(slurm_runner_for(s).with_echo(opts.echo)),
        Some(found) if opts.echo || observer.is_some() => {
            let mut sched = SlotScheduler::for_gpus(runner_for(s).with_echo(opts.echo), &found.gpus, &s.run);
            if let Some(o) = observer.clone() {
                sched = sched.with_observer(o);
            }
            Arc::new(sched)
        }
        Some(_) => scheduled_runner(s).await,
    };
    // Slurm queues the job itself: its queue position goes to the same observer.
    let slurm_job: Mutex<Option<String>> = Mutex::new(None);
    let events = |e: RunEvent| match e {
        RunEvent::Queued { ahead } if slurm => {
            if let Some(o) = &observer {
                o(&crate::runner::QueueEvent::Queued { run: 0, ahead });
            }
        }
        RunEvent::Started(Attachment::Slurm(a)) => *slurm_job.lock().unwrap() = Some(a.job_id),
        _ => {}
    };

    // The first free run_<i>, claimed with create_dir so that two launches in one folder
    // (an editor and a terminal) never share a number.
    let mut run = 1u32;
    loop {
        match std::fs::create_dir(root.join(format!("run_{run}"))) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => run += 1,
            Err(e) => {
                return Err(input(format!(
                    "{}: {e}",
                    root.join(format!("run_{run}")).display()
                )))
            }
        }
    }
    let spec = AttemptSpec {
        root,
        run,
        attempt: 1,
        python: &s.run.python,
        timeout_secs,
        tail_chars: 0,
        expected: None,
        origin: RunOrigin::Launch,
        env: Vec::new(),
    };
    let done = run_attempt(&spec, runner.as_ref(), &events, cancel)
        .await
        .map_err(|e| input(e.to_string()))?;
    let exit_code = match done.exit {
        ExitKind::Success => 0,
        ExitKind::Failed(c) => u8::try_from(c).ok().filter(|c| *c != 0).unwrap_or(1),
        ExitKind::Signaled(n) => 128u8.saturating_add(n.clamp(0, 127) as u8),
        ExitKind::TimedOut => 124,
        ExitKind::Cancelled => 130,
        ExitKind::LimitExceeded(_) => 125,
    };
    Ok(Launched {
        record: done.record,
        exit_code,
        gpus: match found {
            Some(found) => found.describe(),
            None => describe_slurm_job(
                slurm_job.lock().unwrap().as_deref(),
                &s.run.slurm,
                done.cuda_visible_devices.as_deref(),
            ),
        },
    })
}

/// Settles the runs an earlier aisci left queued or running in `folder` (see
/// `runs::resume`): queued ones are marked failed, running ones watched to their end.
pub async fn resume_runs(
    folder: &Path,
    settings: &Settings,
    cancel: &CancellationToken,
) -> Vec<std::io::Result<Resumed>> {
    let runners = reattacher_for(settings);
    let ctx = ResumeCtx {
        runners: &runners,
        python: &settings.run.python,
        cancel,
    };
    crate::runs::resume_folder(folder, &ctx).await
}

/// A Slurm run's placement, in words.
fn describe_slurm_job(
    job: Option<&str>,
    slurm: &crate::config::SlurmSettings,
    cuda_visible_devices: Option<&str>,
) -> String {
    let job = job.map_or_else(
        || "Slurm job (not submitted)".to_string(),
        |j| format!("Slurm job {j}"),
    );
    let gpus = match (slurm.gpus_per_run, cuda_visible_devices) {
        (0, _) => "no GPU requested".to_string(),
        (n, Some(cvd)) => format!("{n} GPU(s), CUDA_VISIBLE_DEVICES={cvd}"),
        (n, None) => format!("{n} GPU(s)"),
    };
    format!("{job}: {gpus}")
}
