//! `aisci launch`: v1's batch mode on the stages the editor runs. Ideas (unless skipped),
//! their novelty (unless skipped), then for every idea to pursue, `parallel` at a time:
//! experiments (runs through the shared GPU queue), the paper, the review, and with
//! `improvement` a revision for every comment and a second review. A journal
//! (`<template>/.aisci/launch.json`, rewritten atomically after every step) lets
//! `--resume` continue where a stopped or killed launch was: finished steps are not
//! redone, and the experiment stage resumes at its next run from its own journal.
//!
//! The budget (`budget_usd`) covers the whole launch: before each stage the spend so
//! far (from the usage ledgers, since the launch began) is subtracted, and a stage gets
//! only what is left; with nothing left, no further stage starts. Ideas running side by
//! side see each other's spend when a stage ends (the ledgers are written then).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::agent::edit_sink::DiskSink;
use crate::config::Settings;
use crate::jobs::JobGuard;
use crate::project::{self, Idea, IdeaFolder, Template};
use crate::stages;
use crate::stages::experiment::ExperimentRequest;
use crate::stages::host::{StageEvent, StageHost};
use crate::stages::ideas::IdeasRequest;
use crate::stages::novelty::NoveltyRequest;
use crate::stages::review::{ReviewRequest, ReviseRequest};
use crate::stages::services::ModelRole;
use crate::stages::writeup::agent::WriteScope;
use crate::stages::writeup::WriteupRequest;

use super::{gpu_list, job, open_template, report};

/// What to do.
#[derive(Debug, Clone, Default)]
pub struct LaunchPlan {
    /// Ideas to generate (default: `ideas.num_ideas`).
    pub num_ideas: Option<u32>,
    /// Ideas pursued at once (default: one per run slot).
    pub parallel: Option<usize>,
    pub skip_idea_generation: bool,
    pub skip_novelty_check: bool,
    pub improvement: bool,
    /// Spending cap for the whole launch.
    pub budget_usd: Option<f64>,
    /// Continue the launch recorded in the journal.
    pub resume: bool,
}

/// Where a step of an idea stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase", tag = "state", content = "detail")]
pub enum Step {
    #[default]
    Pending,
    Done,
    Failed(String),
    Skipped(String),
}

impl Step {
    fn finished(&self) -> bool {
        !matches!(self, Step::Pending)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct IdeaEntry {
    pub name: String,
    pub title: String,
    pub folder: PathBuf,
    #[serde(default)]
    pub novel: Option<bool>,
    #[serde(default)]
    pub experiments: Step,
    #[serde(default)]
    pub runs_completed: u32,
    #[serde(default)]
    pub writeup: Step,
    #[serde(default)]
    pub pdf: Option<PathBuf>,
    #[serde(default)]
    pub review: Step,
    #[serde(default)]
    pub overall: Option<u8>,
    #[serde(default)]
    pub improvement: Step,
    #[serde(default)]
    pub improved_overall: Option<u8>,
}

impl IdeaEntry {
    fn new(name: String) -> Self {
        Self {
            name,
            ..Default::default()
        }
    }
}

/// `.aisci/launch.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// RFC 3339; usage since then is this launch's.
    pub started: String,
    pub ideas_generated: Step,
    pub novelty_checked: Step,
    /// Ideas judged (or taken as) worth pursuing, with their folders once created.
    pub ideas: Vec<IdeaEntry>,
    /// Ideas of the archive that were not novel.
    #[serde(default)]
    pub not_novel: Vec<String>,
    #[serde(default)]
    pub improvement: bool,
}

impl Journal {
    /// Every step of every idea has an outcome: a resumed launch would do nothing.
    pub fn is_complete(&self) -> bool {
        self.ideas_generated.finished()
            && self.novelty_checked.finished()
            && self.ideas.iter().all(|e| {
                [&e.experiments, &e.writeup, &e.review, &e.improvement]
                    .iter()
                    .all(|s| s.finished())
            })
    }
}

pub fn journal_path(template: &Template) -> PathBuf {
    template.root.join(".aisci").join("launch.json")
}

/// Writes this launch's journal through the shared-file lock (so a reader in another
/// process never sees it half-written, and temporary files a killed writer left go).
/// Within the launch every change goes through one mutex; a new launch replaces it.
fn save(template: &Template, j: &Journal) -> std::io::Result<()> {
    let p = journal_path(template);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    let text = serde_json::to_string_pretty(j).expect("serialises");
    crate::fsutil::update_shared(&p, |_| Ok::<_, std::io::Error>((Some(text), ())))
}

/// Where a launch reports: the events of its stages, each with the idea it is about
/// (`None`: the launch as a whole); its own lines are notices.
pub type LaunchEvents<'a> = dyn Fn(Option<&str>, StageEvent) + Send + Sync + 'a;

fn say(events: &LaunchEvents<'_>, idea: Option<&str>, message: &str) {
    events(idea, StageEvent::Notice(message.to_owned()));
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("no launch to resume: {} does not exist", .0.display())]
    NothingToResume(PathBuf),
    #[error("{}: {source}", path.display())]
    Journal { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Stage(#[from] stages::StageError),
    #[error(transparent)]
    Busy(#[from] crate::jobs::Busy),
    #[error(transparent)]
    Llm(#[from] crate::llm::LlmError),
    #[error(transparent)]
    Folder(#[from] project::IdeaFolderError),
    #[error("{}: the journal names it as the idea's folder, but it is not an idea folder", .0.display())]
    NotAnIdeaFolder(PathBuf),
}

/// The v1-style summary row (Tables 3–5 of the v1 paper) and the per-idea rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaunchReport {
    pub total_ideas: usize,
    pub novel_ideas: usize,
    pub experiments_passed: usize,
    pub papers: usize,
    pub mean_score: Option<f64>,
    pub max_score: Option<u8>,
    pub cost_usd: f64,
    /// Spend per stage (ideas, novelty, experiment, writeup, review).
    pub cost_by_stage: BTreeMap<String, f64>,
    pub ideas: Vec<IdeaEntry>,
    pub cancelled: bool,
    pub budget_exhausted: bool,
}

impl LaunchReport {
    pub fn table(&self) -> String {
        let score = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "–".into());
        let mut s = String::new();
        s.push_str("| Total Ideas | Novel Ideas | Experiments Passed | Completed Papers | Mean Score | Max Score | Total Cost |\n");
        s.push_str("|---|---|---|---|---|---|---|\n");
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | ${:.2} |\n",
            self.total_ideas,
            self.novel_ideas,
            self.experiments_passed,
            self.papers,
            score(self.mean_score),
            self.max_score
                .map(|m| m.to_string())
                .unwrap_or_else(|| "–".into()),
            self.cost_usd
        ));
        s.push_str("\n| Idea | Experiments | Paper | Review | Improved |\n|---|---|---|---|---|\n");
        for i in &self.ideas {
            let step = |st: &Step, ok: String| match st {
                Step::Pending => "not reached".to_string(),
                Step::Done => ok,
                Step::Failed(w) => format!("failed: {w}"),
                Step::Skipped(w) => format!("skipped: {w}"),
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                i.name,
                step(&i.experiments, format!("{} run(s)", i.runs_completed)),
                step(&i.writeup, "PDF".into()),
                step(&i.review, format!("Overall {}", i.overall.unwrap_or(0))),
                step(
                    &i.improvement,
                    format!("Overall {}", i.improved_overall.unwrap_or(0))
                ),
            ));
        }
        s.push_str("\nCost by stage:");
        for (stage, c) in &self.cost_by_stage {
            s.push_str(&format!(" {stage} ${c:.4};"));
        }
        s.push('\n');
        s
    }
}

/// The usage since `since` in the ledgers of the template and the ideas' folders, per stage.
pub fn spend_since(template: &Template, ideas: &[IdeaEntry], since: &str) -> BTreeMap<String, f64> {
    let since = chrono::DateTime::parse_from_rfc3339(since).ok();
    let mut out = BTreeMap::new();
    let folders = std::iter::once(template.root.clone()).chain(ideas.iter().map(|i| i.folder.clone()));
    for f in folders {
        let Ok(text) = std::fs::read_to_string(stages::usage_path(&f)) else {
            continue;
        };
        for line in text.lines() {
            let Ok(r) = serde_json::from_str::<crate::llm::CallRecord>(line) else {
                continue;
            };
            let at = chrono::DateTime::parse_from_rfc3339(&r.at).ok();
            if let (Some(s), Some(a)) = (since, at) {
                if a < s {
                    continue;
                }
            }
            *out.entry(r.stage.clone()).or_insert(0.0) += r.cost_usd;
        }
    }
    out
}

struct Ctx<'a> {
    template: &'a Template,
    /// With a recorded model (provider "replay"), one recording serves the whole launch:
    /// each stage continues it where the previous stage stopped, as a live model would
    /// answer each stage in turn.
    replay: Option<std::sync::Arc<dyn crate::llm::Provider>>,
    settings: &'a Settings,
    plan: &'a LaunchPlan,
    events: &'a LaunchEvents<'a>,
    /// The launch's job; each stage is a job under it.
    job: &'a JobGuard,
    cancel: &'a CancellationToken,
    journal: Mutex<Journal>,
}

impl Ctx<'_> {
    fn update(&self, f: impl FnOnce(&mut Journal)) -> Result<(), LaunchError> {
        let mut j = self.journal.lock().unwrap();
        f(&mut j);
        save(self.template, &j).map_err(|source| LaunchError::Journal {
            path: journal_path(self.template),
            source,
        })
    }

    fn llm(
        &self,
        s: &Settings,
        root: &std::path::Path,
        role: ModelRole,
    ) -> Result<crate::llm::Llm, LaunchError> {
        if let Some(p) = &self.replay {
            return Ok(crate::llm::Llm::with_settings(p.clone(), &s.llm));
        }
        Ok(stages::services::llm_for_role(s, root, role)?)
    }

    fn entry(&self, name: &str) -> Option<IdeaEntry> {
        self.journal
            .lock()
            .unwrap()
            .ideas
            .iter()
            .find(|e| e.name == name)
            .cloned()
    }

    fn set_idea(&self, name: &str, f: impl FnOnce(&mut IdeaEntry)) -> Result<(), LaunchError> {
        self.update(|j| {
            if let Some(e) = j.ideas.iter_mut().find(|e| e.name == name) {
                f(e);
            }
        })
    }

    /// Settings for the next stage: the budget left, or None when it is spent.
    /// An idea's step begins: what it is doing said, its settings (budget left) and
    /// model; `None` when the budget is spent (the step is left for a resumed launch).
    fn begin(
        &self,
        name: &str,
        doing: &str,
        root: &Path,
        role: ModelRole,
    ) -> Result<Option<(Settings, crate::llm::Llm)>, LaunchError> {
        let Some(s) = self.settings_left() else {
            return Ok(None);
        };
        say(self.events, Some(name), doing);
        let llm = self.llm(&s, root, role)?;
        Ok(Some((s, llm)))
    }

    /// Whether the idea stops after a step: `Some(false)` cancelled, `Some(true)` its
    /// failure was the budget running out.
    fn stops<T, E>(&self, out: &Result<T, E>) -> Option<bool> {
        if self.cancel.is_cancelled() {
            return Some(false);
        }
        (out.is_err() && self.settings_left().is_none()).then_some(true)
    }

    /// The names of the ideas the launch pursues, in journal order.
    fn idea_names(&self) -> Vec<String> {
        let j = self.journal.lock().unwrap();
        j.ideas.iter().map(|i| i.name.clone()).collect()
    }

    fn settings_left(&self) -> Option<Settings> {
        let mut s = self.settings.clone();
        if let Some(budget) = self.plan.budget_usd {
            let j = self.journal.lock().unwrap().clone();
            let spent: f64 = spend_since(self.template, &j.ideas, &j.started).values().sum();
            let left = budget - spent;
            if left <= 0.0 {
                return None;
            }
            s.llm.budget_usd = Some(s.llm.budget_usd.map_or(left, |b| b.min(left)));
        }
        Some(s)
    }
}

/// Runs (or resumes) a launch on `template`.
pub async fn launch(
    template: &Template,
    settings: &Settings,
    plan: &LaunchPlan,
    events: &LaunchEvents<'_>,
    job: &JobGuard,
) -> Result<LaunchReport, LaunchError> {
    let cancel = &job.cancel;
    let journal = if plan.resume {
        let p = journal_path(template);
        let text = std::fs::read_to_string(&p).map_err(|_| LaunchError::NothingToResume(p.clone()))?;
        serde_json::from_str(&text).map_err(|e| LaunchError::Journal {
            path: p,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?
    } else {
        Journal {
            started: chrono::Local::now().to_rfc3339(),
            ideas_generated: Step::Pending,
            novelty_checked: Step::Pending,
            ideas: Vec::new(),
            not_novel: Vec::new(),
            improvement: plan.improvement,
        }
    };
    let improvement = plan.improvement || journal.improvement;
    let replay = match settings.llm.provider {
        crate::config::ProviderKind::Replay => Some(crate::llm::build_provider(
            &stages::services::resolve_llm_paths(settings.llm.clone(), &template.root),
            &crate::llm::ProcessEnv,
        )?),
        _ => None,
    };
    let ctx = Ctx {
        template,
        replay,
        settings,
        plan,
        events,
        job,
        cancel,
        journal: Mutex::new(journal),
    };
    ctx.update(|_| {})?;
    let mut budget_exhausted = false;

    // 1. Ideas.
    let generated_before: Vec<String> = archive_names(template);
    if !ctx.journal.lock().unwrap().ideas_generated.finished() {
        if plan.skip_idea_generation {
            ctx.update(|j| j.ideas_generated = Step::Skipped("--skip-idea-generation".into()))?;
        } else if let Some(mut s) = ctx.settings_left() {
            if let Some(n) = plan.num_ideas {
                s.ideas.num_ideas = n;
            }
            say(events, None, &format!("generating {} idea(s)", s.ideas.num_ideas));
            let llm = ctx.llm(&s, &template.root, ModelRole::Main)?;
            let stage = job.start_under(stages::ideas::TITLE, &template.root.display().to_string())?;
            let show = |e| events(None, e);
            let host = StageHost::new(&DiskSink, &show, &stage.cancel);
            let req = IdeasRequest {
                template,
                settings: &s,
                llm: &llm,
                experiment_text: None,
            };
            let out = match stages::ideas::run(req, &host).await {
                Ok(o) => o,
                // A stage refused for the budget leaves its step to a resumed launch.
                Err(_) if ctx.settings_left().is_none() => return finish(&ctx, false, true),
                Err(e) => return Err(e.into()),
            };
            say(events, None, &out.summary());
            let new: Vec<String> = out.report.accepted.iter().map(|i| i.name.clone()).collect();
            ctx.update(|j| {
                j.ideas_generated = Step::Done;
                // The new ideas are this launch's; seeds and older ones are not re-run.
                j.ideas = new.iter().map(|n| IdeaEntry::new(n.clone())).collect();
            })?;
        } else {
            budget_exhausted = true;
        }
    }
    if cancel.is_cancelled() {
        return finish(&ctx, true, budget_exhausted);
    }
    // Without generation, every idea of the archive is a candidate.
    if ctx.journal.lock().unwrap().ideas.is_empty() && plan.skip_idea_generation {
        let names = generated_before;
        ctx.update(|j| j.ideas = names.into_iter().map(IdeaEntry::new).collect())?;
    }

    // 2. Novelty.
    if !ctx.journal.lock().unwrap().novelty_checked.finished() {
        if plan.skip_novelty_check {
            ctx.update(|j| j.novelty_checked = Step::Skipped("--skip-novelty-check".into()))?;
        } else if let Some(s) = ctx.settings_left() {
            let names = ctx.idea_names();
            say(
                events,
                None,
                &format!("checking the novelty of {} idea(s)", names.len()),
            );
            let llm = ctx.llm(&s, &template.root, ModelRole::Main)?;
            let search = stages::services::literature_for(&s).map_err(stages::StageError::from)?;
            let stage = job.start_under(stages::novelty::TITLE, &template.root.display().to_string())?;
            let show = |e| events(None, e);
            let host = StageHost::new(&DiskSink, &show, &stage.cancel);
            let req = NoveltyRequest {
                template,
                settings: &s,
                llm: &llm,
                literature: search.as_ref(),
                experiment_text: None,
                only: Some(&names),
                force: false,
            };
            let out = match stages::novelty::run(req, &host).await {
                Ok(o) => o,
                Err(_) if ctx.settings_left().is_none() => return finish(&ctx, false, true),
                Err(e) => return Err(e.into()),
            };
            say(events, None, &out.summary());
            if !out.report.cancelled {
                ctx.update(|j| j.novelty_checked = Step::Done)?;
            }
        } else {
            budget_exhausted = true;
        }
    }
    if cancel.is_cancelled() {
        return finish(&ctx, true, budget_exhausted);
    }
    // Keep the ideas the archive says are novel (all of them when novelty was skipped).
    let verdicts = archive_verdicts(template);
    let skipped_novelty = matches!(ctx.journal.lock().unwrap().novelty_checked, Step::Skipped(_));
    ctx.update(|j| {
        let mut keep = Vec::new();
        for mut e in std::mem::take(&mut j.ideas) {
            e.novel = verdicts.get(&e.name).copied().flatten();
            if skipped_novelty || e.novel == Some(true) {
                keep.push(e);
            } else if !j.not_novel.contains(&e.name) {
                j.not_novel.push(e.name);
            }
        }
        j.ideas = keep;
    })?;

    // 3. Each idea's pipeline, `parallel` at a time.
    let parallel = match plan.parallel {
        Some(p) => p.max(1),
        None => crate::cli::batch::default_parallelism(settings).await,
    };
    let names = ctx.idea_names();
    say(
        events,
        None,
        &format!("pursuing {} idea(s), {parallel} at a time", names.len()),
    );
    let exhausted: Vec<bool> = futures::stream::iter(names)
        .map(|name| {
            let ctx = &ctx;
            async move { pursue(ctx, &name, improvement).await }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    budget_exhausted |= exhausted.into_iter().any(|e| e);
    finish(&ctx, cancel.is_cancelled(), budget_exhausted)
}

fn finish(ctx: &Ctx<'_>, cancelled: bool, budget_exhausted: bool) -> Result<LaunchReport, LaunchError> {
    let j = ctx.journal.lock().unwrap().clone();
    let by_stage = spend_since(ctx.template, &j.ideas, &j.started);
    let scores: Vec<u8> = j
        .ideas
        .iter()
        .filter_map(|i| i.improved_overall.or(i.overall))
        .collect();
    Ok(LaunchReport {
        total_ideas: j.ideas.len() + j.not_novel.len(),
        novel_ideas: j.ideas.iter().filter(|i| i.novel == Some(true)).count(),
        experiments_passed: j.ideas.iter().filter(|i| i.experiments == Step::Done).count(),
        papers: j.ideas.iter().filter(|i| i.writeup == Step::Done).count(),
        mean_score: (!scores.is_empty())
            .then(|| scores.iter().map(|s| f64::from(*s)).sum::<f64>() / scores.len() as f64),
        max_score: scores.iter().max().copied(),
        cost_usd: by_stage.values().sum(),
        cost_by_stage: by_stage,
        ideas: j.ideas,
        cancelled,
        budget_exhausted,
    })
}

/// One idea: its folder, experiments, paper, review (and improvement). Returns whether
/// the budget ran out.
async fn pursue(ctx: &Ctx<'_>, name: &str, improvement: bool) -> bool {
    match pursue_steps(ctx, name, improvement).await {
        Ok(exhausted) => exhausted,
        Err(e) => {
            say(ctx.events, Some(name), &format!("stopped: {e}"));
            false
        }
    }
}

async fn pursue_steps(ctx: &Ctx<'_>, name: &str, improvement: bool) -> Result<bool, LaunchError> {
    let (template, events, cancel) = (ctx.template, ctx.events, ctx.cancel);
    let entry = ctx.entry(name);
    let Some(entry) = entry else { return Ok(false) };
    let idea: Idea = stages::experiment::idea_in_template(template, name)?;
    // The folder, made once.
    let folder = if entry.folder.as_os_str().is_empty() || !entry.folder.is_dir() {
        let now = chrono::Local::now().naive_local();
        let f = project::create_idea_folder(template, &project::default_results_root(template), &idea, now)?;
        let root = f.root.clone();
        ctx.set_idea(name, |e| {
            e.folder = root;
            e.title = idea.title.clone();
        })?;
        say(events, Some(name), &format!("folder {}", f.root.display()));
        f
    } else {
        IdeaFolder::from_path(&entry.folder)
            .ok_or_else(|| LaunchError::NotAnIdeaFolder(entry.folder.clone()))?
    };
    let root = folder.root.clone();
    // The idea's stages are one job on its folder, under the launch's.
    let idea_job = ctx
        .job
        .start_under(&format!("Launch: {name}"), &root.display().to_string())?;
    let show = |e| events(Some(name), e);
    let host = StageHost::new(&DiskSink, &show, &idea_job.cancel);

    // Experiments.
    if !entry.experiments.finished() {
        let Some((s, llm)) = ctx.begin(name, "experiments", &root, ModelRole::Main)? else {
            return Ok(true);
        };
        let req = ExperimentRequest {
            folder: &folder,
            idea: &idea,
            settings: &s,
            llm: &llm,
        };
        let out = stages::experiment::run(req, &host).await;
        if let Some(budget_spent) = ctx.stops(&out) {
            return Ok(budget_spent);
        }
        let (step, runs) = match &out {
            Ok(o) if !o.report.completed.is_empty() => (Step::Done, o.report.completed.len() as u32),
            Ok(o) => (
                Step::Failed("no run completed".into()),
                o.report.completed.len() as u32,
            ),
            Err(e) => (Step::Failed(e.to_string()), 0),
        };
        if let Ok(o) = &out {
            say(events, Some(name), &o.summary());
        }
        ctx.set_idea(name, |e| {
            e.experiments = step;
            e.runs_completed = runs;
        })?;
    }
    let entry = ctx.entry(name).expect("the idea is in the journal");
    if entry.experiments != Step::Done {
        // v1 writes no paper without results.
        ctx.set_idea(name, |e| {
            for st in [&mut e.writeup, &mut e.review, &mut e.improvement] {
                if !st.finished() {
                    *st = Step::Skipped("no experiment results".into());
                }
            }
        })?;
        return Ok(false);
    }

    // The paper.
    if !entry.writeup.finished() {
        let Some((s, llm)) = ctx.begin(name, "writing the paper", &root, ModelRole::Writer)? else {
            return Ok(true);
        };
        let lit = stages::services::literature_for(&s).ok();
        let req = WriteupRequest {
            root: &root,
            idea: name,
            scope: &WriteScope::Paper,
            settings: &s,
            llm: &llm,
            literature: lit.as_deref(),
        };
        let out = crate::stages::writeup::run(req, &host).await;
        if let Some(budget_spent) = ctx.stops(&out) {
            return Ok(budget_spent);
        }
        let (step, pdf) = match &out {
            Ok(o) => {
                say(events, Some(name), &o.summary());
                match o.report.build.as_ref().and_then(|b| b.pdf.clone()) {
                    Some(pdf) => (Step::Done, Some(pdf)),
                    None => (Step::Failed("no PDF was built".into()), None),
                }
            }
            Err(e) => (Step::Failed(e.to_string()), None),
        };
        ctx.set_idea(name, |e| {
            e.writeup = step;
            e.pdf = pdf;
        })?;
    }

    // The review (of the PDF when there is one, else of the source).
    let entry = ctx.entry(name).expect("the idea is in the journal");
    if !entry.review.finished() {
        let Some((s, llm)) = ctx.begin(name, "reviewing the paper", &root, ModelRole::Reviewer)? else {
            return Ok(true);
        };
        let req = ReviewRequest {
            root: &root,
            idea: name,
            settings: &s,
            llm: &llm,
            improved: false,
        };
        let out = crate::stages::review::run(req, &host).await;
        if let Some(budget_spent) = ctx.stops(&out) {
            return Ok(budget_spent);
        }
        let (step, overall) = match &out {
            Ok(o) => {
                say(events, Some(name), &o.file.headline());
                (Step::Done, Some(o.file.review.overall))
            }
            Err(e) => (Step::Failed(e.to_string()), None),
        };
        ctx.set_idea(name, |e| {
            e.review = step;
            e.overall = overall;
        })?;
    }

    // The improvement: revise for every comment, then review again.
    let entry = ctx.entry(name).expect("the idea is in the journal");
    if !entry.improvement.finished() {
        if !improvement || entry.review != Step::Done {
            ctx.set_idea(name, |e| e.improvement = Step::Skipped("not asked for".into()))?;
            return Ok(false);
        }
        let Some((s, writer)) = ctx.begin(name, "revising for the review", &root, ModelRole::Writer)? else {
            return Ok(true);
        };
        let req = ReviseRequest {
            root: &root,
            idea: name,
            settings: &s,
            llm: &writer,
            only: None,
        };
        let revised = crate::stages::review::revise(req, &host).await;
        if cancel.is_cancelled() {
            return Ok(false);
        }
        let result = match revised {
            Ok(_) => {
                let reviewer = ctx.llm(&s, &root, ModelRole::Reviewer)?;
                let req = ReviewRequest {
                    root: &root,
                    idea: name,
                    settings: &s,
                    llm: &reviewer,
                    improved: true,
                };
                crate::stages::review::run(req, &host)
                    .await
                    .map(|o| o.file.review.overall)
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if cancel.is_cancelled() {
            return Ok(false);
        }
        ctx.set_idea(name, |e| match result {
            Ok(o) => {
                e.improvement = Step::Done;
                e.improved_overall = Some(o);
            }
            Err(w) => e.improvement = Step::Failed(w),
        })?;
    }
    Ok(false)
}

fn archive_names(template: &Template) -> Vec<String> {
    project::read_ideas_archive(&template.ideas_json())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.get("Name").and_then(|n| n.as_str()).map(String::from))
        .collect()
}

fn archive_verdicts(template: &Template) -> BTreeMap<String, Option<bool>> {
    project::read_ideas_archive(&template.ideas_json())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| {
            let name = v.get("Name")?.as_str()?.to_string();
            Some((name, v.get("novel").and_then(|n| n.as_bool())))
        })
        .collect()
}

// The command.

#[derive(clap::Args)]
pub struct Args {
    /// The template to launch on (holds experiment.py, prompt.json and run_0/).
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
    /// Generate no new ideas: pursue every idea already in the template's ideas.json.
    #[arg(long)]
    skip_idea_generation: bool,
    /// Do not search the literature: every idea counts as novel (as v1's flag).
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
    /// Print the expected tokens and cost per stage, and stop (no model call, no run).
    #[arg(long)]
    estimate: bool,
}

pub async fn command(a: Args, model: Option<String>) -> ExitCode {
    if a.estimate {
        return report(estimate(&a, model));
    }
    let plan = LaunchPlan {
        num_ideas: a.num_ideas,
        parallel: a.parallel,
        skip_idea_generation: a.skip_idea_generation,
        skip_novelty_check: a.skip_novelty_check,
        improvement: a.improvement,
        budget_usd: a.budget_usd,
        resume: a.resume,
    };
    report(launch_command(&a.template, plan, a.gpus, a.engine, model).await)
}

/// `aisci launch --estimate`: every stage for every idea the launch would pursue (the
/// ideas to generate, or with --skip-idea-generation those in the archive).
fn estimate(a: &Args, model: Option<String>) -> anyhow::Result<()> {
    use crate::stages::estimate::Stage;
    let archived = crate::stages::estimate::Sizes::of_folder(&a.template).archived_ideas as u32;
    let mut stages = Vec::new();
    if !a.skip_idea_generation {
        stages.push(Stage::Ideas);
    }
    if !a.skip_novelty_check {
        stages.push(Stage::Novelty);
    }
    stages.extend([Stage::Experiment, Stage::Writeup, Stage::Review]);
    if a.improvement {
        stages.extend([Stage::Writeup, Stage::Review]);
    }
    let (mut settings, sizes) = super::estimate_inputs(&a.template, model, false)?;
    if let Some(g) = a.num_ideas {
        settings.ideas.num_ideas = g.max(1);
    }
    let ideas = if a.skip_idea_generation {
        archived
    } else {
        settings.ideas.num_ideas
    }
    .max(1);
    println!("aisci launch on {}: {ideas} idea(s)", a.template.display());
    let rows = crate::stages::estimate::stages(&settings, &sizes, &stages, ideas);
    print!("{}", crate::stages::estimate::table(&rows));
    Ok(())
}

/// `aisci launch --template DIR ...`.
async fn launch_command(
    dir: &Path,
    plan: crate::cli::launch::LaunchPlan,
    gpus: Option<String>,
    engine: Option<String>,
    model: Option<String>,
) -> anyhow::Result<()> {
    let (template, mut loaded) = open_template(dir, model)?;
    let s = &mut loaded.settings;
    if let Some(list) = gpus {
        s.run.gpus = Some(gpu_list(&list));
    }
    if let Some(e) = engine {
        s.literature.engines = vec![e];
    }
    // A finished launch needs no model: say so instead of asking for a key.
    if plan.resume {
        let path = journal_path(&template);
        let done = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<Journal>(&t).ok())
            .filter(Journal::is_complete);
        if let Some(j) = done {
            let papers = j.ideas.iter().filter(|e| e.writeup == Step::Done).count();
            println!(
                "the launch in {} is finished ({} idea(s) pursued, {papers} paper(s)): nothing is left to resume. \
                 Start a new launch without --resume.",
                path.display(),
                j.ideas.len()
            );
            return Ok(());
        }
    }
    // A missing key stops us before anything is written.
    let llm = stages::services::llm_for(s, &template.root)?;
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
    let job = job("Launch", &template.root)?;
    let show = |idea: Option<&str>, e| events.show(idea, e);
    let report = crate::cli::launch::launch(&template, s, &plan, &show, &job).await?;
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
pub(crate) struct PrintLaunch {
    pub started: std::time::Instant,
}

impl PrintLaunch {
    /// A launch line: elapsed time, the idea, the first line of what was said; each
    /// run's headline on stdout. Edits and run starts are left to the per-stage commands.
    pub fn show(&self, idea: Option<&str>, event: StageEvent) {
        let t = self.started.elapsed().as_secs();
        let tag = idea.map(|i| format!("[{i}] ")).unwrap_or_default();
        let line = |message: &str| {
            let first = message.lines().next().unwrap_or_default();
            eprintln!("{:>3}:{:02} {tag}{first}", t / 60, t % 60);
        };
        match event {
            StageEvent::Progress { message, .. } | StageEvent::Notice(message) => line(&message),
            StageEvent::Warning(w) => line(&format!("warning: {w}")),
            StageEvent::RunFinished(record) => {
                if let Some(idea) = idea {
                    println!("[{idea}] {}", crate::project::headline(&record, None));
                }
            }
            StageEvent::NodeChanged {
                line: l, ended: true, ..
            } => {
                if let Some(idea) = idea {
                    println!("[{idea}] {l}");
                }
            }
            StageEvent::EditsApplied { .. }
            | StageEvent::RunStarted { .. }
            | StageEvent::NodeChanged { .. } => {}
        }
    }
}
