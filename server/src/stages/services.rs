//! What the stages are given, built from settings in one place: the model client, the
//! literature engines, the runners (the process's GPU queue, Slurm) and the re-attacher
//! for runs an earlier aisci left.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::config::{LlmSettings, ProviderKind, Settings};
use crate::literature::{LitError, Literature};
use crate::llm::{self, Llm, LlmError};
use crate::runner::local::LocalRunner;
use crate::runner::{Attachment, Runner, SlotScheduler, SlurmRunner};
use crate::runs::Reattacher;

/// Relative paths in the model settings (the replay recording) are relative to the
/// project they came from.
pub fn resolve_llm_paths(mut llm: LlmSettings, root: &Path) -> LlmSettings {
    if let Some(p) = &llm.replay_file {
        if p.is_relative() {
            llm.replay_file = Some(root.join(p));
        }
    }
    if llm.replay_file.is_some() && llm.provider == ProviderKind::Auto && llm.model == "replay" {
        llm.provider = ProviderKind::Replay;
    }
    llm
}

/// Which model a stage talks to: the one place a stage's own model setting is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRole {
    /// `llm.model`: ideas, novelty, experiments.
    Main,
    /// `writeup.model` when set, else `llm.model`.
    Writer,
    /// `review.model` when set, else `llm.model`.
    Reviewer,
}

/// The model settings a role uses.
pub fn llm_settings(settings: &Settings, role: ModelRole) -> LlmSettings {
    let own = match role {
        ModelRole::Main => None,
        ModelRole::Writer => settings.writeup.model.as_ref(),
        ModelRole::Reviewer => settings.review.model.as_ref(),
    };
    let mut llm = settings.llm.clone();
    if let Some(m) = own.filter(|m| !m.trim().is_empty()) {
        llm.model = m.clone();
    }
    llm
}

/// The model client for a project and role, or the one clear error (missing key, bad
/// recording) before anything is spent.
pub fn llm_for_role(settings: &Settings, root: &Path, role: ModelRole) -> Result<Llm, LlmError> {
    llm::from_process_env(&resolve_llm_paths(llm_settings(settings, role), root))
}

/// The model client of the main role (`llm.model`).
pub fn llm_for(settings: &Settings, root: &Path) -> Result<Llm, LlmError> {
    llm_for_role(settings, root, ModelRole::Main)
}

/// The literature engines for these settings. One instance per distinct
/// literature configuration is kept for the whole process, so every job shares its
/// circuit breakers and in-memory cache (the rate limiters are process-wide anyway).
pub fn literature_for(settings: &Settings) -> Result<Arc<Literature>, LitError> {
    static SHARED: Mutex<Option<(String, Arc<Literature>)>> = Mutex::new(None);
    let fingerprint = serde_json::to_string(&settings.literature).unwrap_or_default();
    let mut slot = SHARED.lock().unwrap();
    if let Some((fp, lit)) = slot.as_ref() {
        if *fp == fingerprint {
            return Ok(lit.clone());
        }
    }
    let lit = Arc::new(Literature::from_settings(&settings.literature, &llm::ProcessEnv)?);
    *slot = Some((fingerprint, lit.clone()));
    Ok(lit)
}

/// The runner for experiments: the configured output cap and run-folder limit, and
/// every variable that names a key in the settings kept out of the experiment's
/// environment.
pub fn runner_for(settings: &Settings) -> LocalRunner {
    LocalRunner::from_settings(&settings.experiment)
        .with_secret_names(secret_names(settings))
        .with_run_settings(&settings.run)
}

/// Every variable the settings name as holding a key.
fn secret_names(settings: &Settings) -> Vec<String> {
    let secrets = [
        settings.llm.api_key_env.clone(),
        Some(settings.literature.s2_api_key_env.clone()),
        Some(settings.literature.openalex_api_key_env.clone()),
    ];
    let named = settings.secret_env_names.iter().cloned();
    secrets.into_iter().flatten().chain(named).collect()
}

/// The Slurm runner for these settings (`[run.slurm]`), keeping the same secrets out of
/// jobs as [`runner_for`].
pub fn slurm_runner_for(settings: &Settings) -> SlurmRunner {
    SlurmRunner::from_run_settings(&settings.run).with_secret_names(secret_names(settings))
}

/// The runner `run.runner` chooses, shared by every stage of this process: the GPU
/// queue in front of the local runner, or Slurm, which queues jobs itself.
pub async fn shared_runner(settings: &Settings) -> Arc<dyn Runner> {
    match settings.run.runner {
        crate::config::RunnerKind::Slurm => Arc::new(slurm_runner_for(settings)),
        crate::config::RunnerKind::Local => scheduled_runner(settings).await,
    }
}

/// The process's GPU queue for these run settings: every stage started by this
/// process (editor jobs, several ideas) waits for a free GPU slot in one FIFO queue.
pub async fn scheduled_runner(settings: &Settings) -> Arc<SlotScheduler<LocalRunner>> {
    type Shared = Mutex<Option<(String, Arc<SlotScheduler<LocalRunner>>)>>;
    static SHARED: Shared = Mutex::new(None);
    let fingerprint = serde_json::to_string(&(
        &settings.run,
        &settings.experiment,
        &settings.secret_env_names,
        &settings.llm.api_key_env,
        &settings.literature.s2_api_key_env,
        &settings.literature.openalex_api_key_env,
    ))
    .unwrap_or_default();
    if let Some((fp, s)) = SHARED.lock().unwrap().as_ref() {
        if *fp == fingerprint {
            return s.clone();
        }
    }
    let found = crate::runner::gpus::detect(&settings.run).await;
    let scheduler = Arc::new(SlotScheduler::for_gpus(
        runner_for(settings),
        &found.gpus,
        &settings.run,
    ));
    let mut slot = SHARED.lock().unwrap();
    match slot.as_ref() {
        // Another stage built it while we were detecting: share theirs.
        Some((fp, s)) if *fp == fingerprint => s.clone(),
        _ => {
            *slot = Some((fingerprint, scheduler.clone()));
            scheduler
        }
    }
}

/// Watches runs again, each with the runner that started it.
struct ReattachBoth {
    local: Arc<dyn Runner>,
    slurm: Arc<dyn Runner>,
}

impl Reattacher for ReattachBoth {
    fn runner_for(&self, attachment: &Attachment) -> Option<Arc<dyn Runner>> {
        Some(match attachment {
            Attachment::Local(_) => self.local.clone(),
            Attachment::Slurm(_) => self.slurm.clone(),
        })
    }
}

/// The runners that can watch again the runs an earlier aisci started (local runs by
/// pid and start time, Slurm jobs by job id), whatever `run.runner` says now.
pub fn reattacher_for(settings: &Settings) -> impl Reattacher {
    ReattachBoth {
        local: Arc::new(runner_for(settings)),
        slurm: Arc::new(slurm_runner_for(settings)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_paths_resolve_against_the_project() {
        let mut s = LlmSettings {
            model: "replay".into(),
            ..Default::default()
        };
        s.replay_file = Some(".aisci/replay/ideas.json".into());
        let r = resolve_llm_paths(s, Path::new("/t"));
        assert_eq!(
            r.replay_file.as_deref(),
            Some(Path::new("/t/.aisci/replay/ideas.json"))
        );
        assert_eq!(r.provider, ProviderKind::Replay);
    }
}
