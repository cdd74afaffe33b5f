//! The experiment stage's tree search (`experiment.search = "tree"`): many variants of
//! the idea's code, each a node with its parent, the model's plan, its edits, its runs
//! and a score; drafted, debugged and improved by the rule in [`select`], run
//! `experiment.tree.workers` at a time through the runner's queue, cheap (smoke) before
//! expensive, near-duplicates never run; the best rerun over seeds. The journal
//! (`tree.json`) makes a killed search go on where it was: finished nodes are not run
//! again. At the end the best node's line becomes the folder's `run_1..run_k`, its code
//! the folder's `experiment.py`, and what was tried goes into `notes.txt`, so that the
//! plots, the notes and the paper work as after the line of runs.

pub mod agent;
pub mod install;
pub mod node_run;
pub mod score;
pub mod select;
pub mod tree;

use std::collections::HashMap;
use std::path::Path;

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;

use crate::agent::prompt::fill;
use crate::config::Direction;
use crate::llm::LlmError;
use crate::project::{py_repr, RunRecord};
use crate::runs::attempt::AttemptError;

use agent::{Asker, DEBUG, DRAFT, IMPROVE};
use node_run::{NodeEnd, RunEnv};
use select::Action;
use tree::{node_code, node_dir, Metric, MetricSource, Node, NodeKind, NodeState, Tree};

/// The search works with the experiment stage's context.
pub type SearchCtx<'a> = crate::stages::experiment::agent::ExperimentCtx<'a>;

/// What stops a search.
#[derive(Debug)]
pub enum SearchError {
    Cancelled,
    Llm(LlmError),
    Attempt(AttemptError),
    Sink(crate::agent::edit_sink::SinkError),
    /// The folder cannot be searched (no score in the baseline, an unreadable journal).
    Input(String),
    Io(std::path::PathBuf, std::io::Error),
}

impl From<AttemptError> for SearchError {
    fn from(e: AttemptError) -> Self {
        SearchError::Attempt(e)
    }
}

/// How a search ended.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchReport {
    pub tree: Tree,
    /// The best node's line installed as `run_1..run_k` (empty when no variant worked).
    pub promoted: Vec<RunRecord>,
    pub cancelled: bool,
    pub warnings: Vec<String>,
}

pub async fn run_search(ctx: &SearchCtx<'_>) -> Result<SearchReport, SearchError> {
    let folder = ctx.folder.root.as_path();
    let baseline = crate::project::read_baseline(folder)
        .map_err(|e| SearchError::Input(format!("the idea folder has no usable baseline: {e}")))?;
    let baseline_means = Value::Object(baseline.means_by_dataset());
    let mut warnings = Vec::new();
    let mut tree = Tree::load_checked(folder)
        .map_err(SearchError::Input)?
        .unwrap_or_default();
    if tree.finished {
        let promoted = install::promoted_runs(folder);
        return Ok(SearchReport {
            tree,
            promoted,
            cancelled: false,
            warnings,
        });
    }
    let asker = Asker {
        llm: ctx.llm,
        cancel: ctx.cancel,
        idea: &ctx.idea.name,
        temperature: ctx.temperature,
        max_tokens: ctx.max_tokens,
    };
    if tree.node(0).is_none() {
        let code = ctx
            .sink
            .read(&folder.join("experiment.py"))
            .await
            .map_err(SearchError::Sink)?
            .text;
        write(&node_code(folder, 0), &code)?;
        tree.nodes.push(Node {
            id: 0,
            parent: None,
            kind: NodeKind::Baseline,
            state: NodeState::Done,
            plan: "the template's code (run_0)".into(),
            smoke_score: None,
            score: None,
            error: None,
            feedback: None,
            duplicate_of: None,
            similarity: None,
            cost_usd: 0.0,
            debug_depth: 0,
            means: Some(baseline_means.clone()),
            created: crate::project::now_rfc3339(),
            ended: None,
        });
        tree.smoke = ctx.settings.tree.smoke && code.contains("EXPERIMENT_SMOKE");
        if ctx.settings.tree.smoke && !tree.smoke {
            warnings.push(
                "the template's experiment.py has no EXPERIMENT_SMOKE switch: every variant runs at full size"
                    .into(),
            );
        }
    }
    let metric = choose_metric(ctx, &asker, &tree, &baseline_means).await?;
    set_metric(&mut tree, metric);
    let metric = tree.metric.clone().expect("set above");
    if tree.node(0).and_then(|n| n.score).is_none() {
        return Err(SearchError::Input(format!(
            "no dataset of the baseline (run_0/final_info.json) reports {}: set experiment.tree.metric to one of {}",
            metric.name,
            score::metric_keys(&baseline_means).join(", ")
        )));
    }
    save(&tree, folder)?;

    let env = RunEnv {
        folder,
        runner: ctx.runner,
        python: ctx.python,
        timeout_secs: ctx.settings.timeout_secs,
        tail_chars: ctx.settings.stderr_tail_chars as usize,
        baseline: &baseline,
        metric: &metric.name,
        direction: metric.direction,
        smoke: tree.smoke,
        baseline_smoke: None,
        smoke_slack: ctx.settings.tree.smoke_slack,
        cancel: ctx.cancel,
    };
    if tree.smoke && tree.baseline_smoke.is_none() {
        ctx.progress.report("Search: the baseline in smoke mode", Some(0));
        let r = env
            .run(0, tree::SMOKE_RUN, vec![("EXPERIMENT_SMOKE".into(), "1".into())])
            .await?;
        if r.cancelled {
            return Ok(SearchReport {
                tree,
                promoted: Vec::new(),
                cancelled: true,
                warnings,
            });
        }
        match r.score {
            Some(s) => tree.baseline_smoke = Some(s),
            None => {
                tree.smoke = false;
                warnings.push(format!(
                    "the baseline failed in smoke mode ({}): every variant runs at full size",
                    node_run::first_line(r.failure.as_deref().unwrap_or_default())
                ));
            }
        }
        save(&tree, folder)?;
    }
    let env = RunEnv {
        smoke: tree.smoke,
        baseline_smoke: tree.baseline_smoke,
        ..env
    };

    let mut search = Search {
        ctx,
        folder,
        asker,
        env: &env,
        metric: &metric,
        baseline_means: &baseline_means,
        signatures: HashMap::new(),
        base_code: std::fs::read_to_string(node_code(folder, 0)).unwrap_or_default(),
        warnings,
    };
    let cancelled = search.expand(&mut tree).await?;
    let mut warnings = std::mem::take(&mut search.warnings);
    if cancelled {
        save(&tree, folder)?;
        return Ok(SearchReport {
            tree,
            promoted: Vec::new(),
            cancelled: true,
            warnings,
        });
    }
    tree.best = select::best(&tree);
    save(&tree, folder)?;
    let best = tree.best.filter(|b| *b != 0);
    if let Some(best) = best {
        if ctx.settings.tree.seeds > 0 && tree.seeds.as_ref().is_none_or(|s| s.node != best) {
            ctx.progress.report(
                &format!("Search: node_{best} over {} seeds", ctx.settings.tree.seeds),
                Some(95),
            );
            match install::rerun_seeds(&env, best, ctx.settings.tree.seeds, ctx.settings.tree.workers).await?
            {
                Some(seeds) => tree.seeds = Some(seeds),
                None => {
                    save(&tree, folder)?;
                    return Ok(SearchReport {
                        tree,
                        promoted: Vec::new(),
                        cancelled: true,
                        warnings,
                    });
                }
            }
            save(&tree, folder)?;
        }
    } else {
        warnings.push(format!(
            "no variant beat the baseline's {} ({}); experiment.py is left as it was",
            metric.name,
            fmt_score(tree.node(0).and_then(|n| n.score))
        ));
    }
    let promoted = match best {
        Some(best) => install::install(ctx.sink, folder, &tree, best).await?,
        None => Vec::new(),
    };
    install::write_summary(ctx.sink, folder, &tree).await?;
    tree.finished = true;
    save(&tree, folder)?;
    warnings.extend(tree_warnings(&tree));
    Ok(SearchReport {
        tree,
        promoted,
        cancelled: false,
        warnings,
    })
}

fn tree_warnings(tree: &Tree) -> Vec<String> {
    tree.seeds
        .as_ref()
        .and_then(|s| s.note.clone())
        .into_iter()
        .collect()
}

/// The metric: the settings', else the template's `prompt.json`, else the one recorded
/// in the journal (the model's, or the user's edit of it), else the model's choice.
async fn choose_metric(
    ctx: &SearchCtx<'_>,
    asker: &Asker<'_>,
    tree: &Tree,
    baseline: &Value,
) -> Result<Metric, SearchError> {
    if let Some(m) = stated_metric(&ctx.settings.tree, &ctx.folder.root) {
        return Ok(m);
    }
    if let Some(m) = tree.metric.as_ref().filter(|m| m.source == MetricSource::Model) {
        return Ok(m.clone());
    }
    ctx.progress.report("Search: choosing the metric", Some(0));
    asker
        .choose_metric(&ctx.idea.title, &ctx.idea.experiment, baseline)
        .await
        .map_err(llm_error)
}

/// The metric the user states: `experiment.tree.metric`, else the folder's (the
/// template's) `prompt.json` `"metric"`; the direction from the same place, else guessed
/// from the name.
pub fn stated_metric(t: &crate::config::TreeSettings, folder: &Path) -> Option<Metric> {
    if let Some(name) = &t.metric {
        return Some(Metric {
            name: name.clone(),
            direction: t.direction.unwrap_or_else(|| score::guess_direction(name)),
            source: MetricSource::Settings,
            reason: None,
        });
    }
    let prompt: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("prompt.json")).ok()?).ok()?;
    let name = prompt.get("metric")?.as_str()?.trim();
    if name.is_empty() {
        return None;
    }
    let direction = match prompt.get("direction").and_then(Value::as_str) {
        Some("min") => Direction::Min,
        Some("max") => Direction::Max,
        _ => score::guess_direction(name),
    };
    Some(Metric {
        name: name.to_string(),
        direction,
        source: MetricSource::Template,
        reason: None,
    })
}

/// Sets the metric and scores every node that has results by it (a changed metric
/// rescores the tree).
fn set_metric(tree: &mut Tree, metric: Metric) {
    let changed = tree.metric.as_ref().is_none_or(|m| m.name != metric.name);
    tree.metric = Some(metric.clone());
    for n in &mut tree.nodes {
        if let Some(means) = &n.means {
            if changed || n.score.is_none() {
                n.score = score::score(means, &metric.name);
            }
        }
    }
}

fn llm_error(e: LlmError) -> SearchError {
    match e {
        LlmError::Cancelled => SearchError::Cancelled,
        e => SearchError::Llm(e),
    }
}

fn write(path: &Path, text: &str) -> Result<(), SearchError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| SearchError::Io(dir.to_path_buf(), e))?;
    }
    crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|e| SearchError::Io(path.to_path_buf(), e))
}

fn save(tree: &Tree, folder: &Path) -> Result<(), SearchError> {
    tree.save(folder)
        .map_err(|e| SearchError::Io(folder.join(tree::TREE_FILE), e))
}

/// One line about a tree: variants tried and the best against the baseline.
pub fn tree_line(tree: &Tree) -> String {
    let metric = tree.metric.as_ref().map_or("score", |m| m.name.as_str());
    let base = tree.node(0).and_then(|n| n.score);
    let mut s = format!("tree search: {} variant(s) tried", tree.variants());
    match tree.best.filter(|b| *b != 0).and_then(|b| tree.node(b)) {
        Some(b) => {
            s.push_str(&format!(
                ", best node_{} {metric} {} (baseline {})",
                b.id,
                fmt_score(b.score),
                fmt_score(base)
            ));
            if let Some(seeds) = tree
                .seeds
                .as_ref()
                .filter(|x| x.node == b.id && x.mean.is_finite())
            {
                s.push_str(&format!(
                    ", {:.4} ± {:.4} over {} seeds",
                    seeds.mean,
                    seeds.stderr,
                    seeds.scores.len()
                ));
            }
        }
        None if tree.finished => s.push_str(", none beat the baseline"),
        None => {}
    }
    s
}

/// A node in one line, as the terminal prints it when it ends: "node_4 debug ✓ loss
/// 0.1600 (+83.5% vs baseline)", "node_3 draft ✗ ValueError: …", "node_2 draft = a
/// duplicate of node_1, not run".
pub fn node_line(n: &Node, metric: &Metric, baseline: Option<f64>) -> String {
    let head = format!("node_{} {}", n.id, n.kind.as_str());
    let first = |e: &Option<String>| {
        e.as_deref()
            .and_then(|e| e.lines().find(|l| !l.trim().is_empty()))
            .unwrap_or("")
            .to_string()
    };
    match n.state {
        NodeState::Done => {
            let mut s = format!("{head} ✓ {} {}", metric.name, fmt_score(n.score));
            if let Some(v) = n
                .score
                .zip(baseline)
                .and_then(|(s, b)| score::vs_baseline(metric.direction, s, b))
            {
                s.push_str(&format!(" ({:+.1}% vs baseline)", v * 100.0));
            }
            s
        }
        NodeState::Failed => format!("{head} ✗ {}", first(&n.error)),
        NodeState::Duplicate => format!(
            "{head} = a duplicate of node_{}, not run",
            n.duplicate_of.unwrap_or(0)
        ),
        NodeState::NotPromoted => format!("{head} · {}, not run at full size", first(&n.error)),
        NodeState::Smoke => format!("{head}: smoke run"),
        NodeState::Running => match n.smoke_score {
            Some(s) => format!("{head}: smoke {} {s:.4}, full run", metric.name),
            None => format!("{head}: running"),
        },
        NodeState::Proposed => format!("{head}: proposed"),
        NodeState::Cancelled => format!("{head}: cancelled"),
    }
}

pub fn fmt_score(s: Option<f64>) -> String {
    match s {
        Some(v) => format!("{v:.4}"),
        None => "—".into(),
    }
}

struct Search<'a> {
    ctx: &'a SearchCtx<'a>,
    /// The idea folder (`ctx.folder.root`).
    folder: &'a Path,
    asker: Asker<'a>,
    env: &'a RunEnv<'a>,
    metric: &'a Metric,
    baseline_means: &'a Value,
    /// Each node's normalised change against the baseline, for the duplicate check.
    signatures: HashMap<u32, String>,
    /// The baseline's code, read once: every signature is a change against it.
    base_code: String,
    warnings: Vec<String>,
}

type Flight<'f> =
    std::pin::Pin<Box<dyn std::future::Future<Output = (u32, Result<NodeEnd, AttemptError>)> + Send + 'f>>;

impl<'a> Search<'a> {
    /// Proposes and runs variants until the rule stops; returns whether it was cancelled.
    async fn expand(&mut self, tree: &mut Tree) -> Result<bool, SearchError> {
        let s = &self.ctx.settings.tree;
        let workers = s.workers.max(1) as usize;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u32, Option<f64>)>();
        let on_full = move |id: u32, smoke: Option<f64>| {
            let _ = tx.send((id, smoke));
        };
        let on_full = &on_full;
        let mut flights: FuturesUnordered<Flight<'_>> = FuturesUnordered::new();
        // Nodes a killed search left unfinished run again from where they were.
        for n in tree.nodes.iter_mut().filter(|n| n.state.unfinished()) {
            let full_only = n.state == NodeState::Running && (!self.env.smoke || n.smoke_score.is_some());
            n.state = if self.env.smoke && !full_only {
                NodeState::Smoke
            } else {
                NodeState::Running
            };
            let env = self.env;
            let id = n.id;
            flights.push(Box::pin(async move {
                (id, env.run_node(id, full_only, on_full).await)
            }));
        }
        save(tree, self.folder)?;
        let mut branch = tree::take_branch(self.folder);
        let mut stop = false;
        let mut fatal: Option<SearchError> = None;
        loop {
            self.report(tree, flights.len());
            while !stop && fatal.is_none() && flights.len() < workers && !self.ctx.cancel.is_cancelled() {
                if let Some(cap) = self.ctx.llm.budget_usd().map(|b| b * s.budget_share) {
                    if tree.spent_usd() >= cap {
                        self.warnings.push(format!(
                            "the search stopped proposing: its share of the budget (${cap:.2}) is spent"
                        ));
                        stop = true;
                        break;
                    }
                }
                let action = select::next(tree, s, flights.len(), branch);
                let (kind, parent) = match action {
                    Action::Stop => {
                        stop = true;
                        break;
                    }
                    Action::Wait => break,
                    Action::Draft => (NodeKind::Draft, 0),
                    Action::Debug(p) => (NodeKind::Debug, p),
                    Action::Improve(p) => (NodeKind::Improve, p),
                };
                if branch == Some(parent) {
                    branch = None;
                }
                if kind == NodeKind::Improve {
                    tree.improvements += 1;
                }
                let id = tree.next_id();
                let prompt = self.prompt(tree, kind, parent);
                let parent_code = read(&node_code(self.folder, parent))?;
                let file = node_code(self.folder, id);
                write(&file, &parent_code)?;
                self.ctx.progress.report(
                    &format!(
                        "Search: proposing node_{id} ({} of node_{parent}), {} running",
                        kind.as_str(),
                        flights.len()
                    ),
                    Some(percent(tree, s.max_nodes)),
                );
                // Runs in flight go on while the model thinks.
                let proposal = {
                    let asking = self.asker.propose(prompt, &file);
                    tokio::pin!(asking);
                    loop {
                        tokio::select! {
                            p = &mut asking => break p,
                            Some((done, end)) = flights.next(), if !flights.is_empty() => {
                                if let Err(e) = self.finish(tree, done, end) { fatal = Some(e); }
                            }
                            Some((node, smoke)) = rx.recv() => self.going_full(tree, node, smoke),
                        }
                    }
                };
                let proposal = match proposal {
                    Ok(p) => p,
                    Err(LlmError::Cancelled) => break,
                    Err(e @ LlmError::BudgetExceeded { .. }) => {
                        self.warnings.push(format!("the search stopped proposing: {e}"));
                        let _ = std::fs::remove_dir_all(node_dir(self.folder, id));
                        stop = true;
                        break;
                    }
                    Err(e) => {
                        fatal = Some(SearchError::Llm(e));
                        break;
                    }
                };
                let code = read(&file)?;
                let mut node = Node {
                    id,
                    parent: Some(parent),
                    kind,
                    state: NodeState::Proposed,
                    plan: proposal.plan,
                    smoke_score: None,
                    score: None,
                    error: proposal.error.clone(),
                    feedback: None,
                    duplicate_of: None,
                    similarity: None,
                    cost_usd: proposal.cost_usd,
                    debug_depth: match kind {
                        NodeKind::Debug => tree.node(parent).map_or(0, |p| p.debug_depth) + 1,
                        _ => 0,
                    },
                    means: None,
                    created: crate::project::now_rfc3339(),
                    ended: None,
                };
                write(
                    &node_dir(self.folder, id).join("edit.diff"),
                    &unified_diff(parent, &parent_code, id, &code),
                )?;
                if proposal.error.is_some() {
                    node.state = NodeState::Failed;
                    node.ended = Some(crate::project::now_rfc3339());
                } else if let Some((other, sim)) = self.duplicate(tree, &code) {
                    node.state = NodeState::Duplicate;
                    node.duplicate_of = Some(other);
                    node.similarity = Some(sim);
                    node.error = Some(format!(
                        "its change is {:.0}% like node_{other}'s: not run",
                        sim * 100.0
                    ));
                    node.ended = Some(crate::project::now_rfc3339());
                } else {
                    self.signatures.insert(id, self.signature(&code));
                    node.state = if self.env.smoke {
                        NodeState::Smoke
                    } else {
                        NodeState::Running
                    };
                    let env = self.env;
                    flights.push(Box::pin(
                        async move { (id, env.run_node(id, false, on_full).await) },
                    ));
                }
                tree.nodes.push(node);
                save(tree, self.folder)?;
                self.announce(tree, id);
            }
            if flights.is_empty() {
                break;
            }
            tokio::select! {
                Some((done, end)) = flights.next() => {
                    if let Err(e) = self.finish(tree, done, end) { fatal = Some(e); }
                }
                Some((node, smoke)) = rx.recv() => self.going_full(tree, node, smoke),
            }
            save(tree, self.folder)?;
        }
        save(tree, self.folder)?;
        if let Some(e) = fatal {
            return Err(e);
        }
        Ok(self.ctx.cancel.is_cancelled())
    }

    fn going_full(&self, tree: &mut Tree, id: u32, smoke: Option<f64>) {
        if let Some(n) = tree.node_mut(id) {
            n.state = NodeState::Running;
            n.smoke_score = smoke;
        }
        let _ = tree.save(self.folder);
        self.announce(tree, id);
    }

    /// Tells the host what a node is now, in one line.
    fn announce(&self, tree: &Tree, id: u32) {
        if let Some(n) = tree.node(id) {
            let base = tree.node(0).and_then(|b| b.score);
            let ended = !n.state.unfinished() && n.state != NodeState::Cancelled;
            self.ctx
                .events
                .node_changed(id, &node_line(n, self.metric, base), ended);
        }
    }

    fn finish(
        &self,
        tree: &mut Tree,
        id: u32,
        end: Result<NodeEnd, AttemptError>,
    ) -> Result<(), SearchError> {
        let end = end?;
        let Some(n) = tree.node_mut(id) else {
            return Ok(());
        };
        n.ended = Some(crate::project::now_rfc3339());
        match end {
            NodeEnd::Done {
                smoke_score,
                score,
                means,
            } => {
                n.state = NodeState::Done;
                n.smoke_score = smoke_score.or(n.smoke_score);
                n.score = Some(score);
                n.means = Some(means);
                n.error = None;
                n.feedback = None;
            }
            NodeEnd::Failed {
                smoke_score,
                error,
                feedback,
            } => {
                n.state = NodeState::Failed;
                n.smoke_score = smoke_score.or(n.smoke_score);
                n.error = Some(error);
                n.feedback = feedback;
            }
            NodeEnd::NotPromoted { smoke_score } => {
                n.state = NodeState::NotPromoted;
                n.smoke_score = Some(smoke_score);
                n.error = Some(format!(
                    "smoke {} {:.4} is not promising beside the baseline's {}",
                    self.metric.name,
                    smoke_score,
                    fmt_score(self.env.baseline_smoke)
                ));
            }
            NodeEnd::Cancelled => {
                n.state = NodeState::Cancelled;
                n.ended = None;
            }
        }
        save(tree, self.folder)?;
        self.announce(tree, id);
        Ok(())
    }

    fn report(&self, tree: &Tree, running: usize) {
        let best = select::best(tree).and_then(|b| tree.node(b));
        let best = best.map_or(String::new(), |b| {
            format!(
                ", best {} {} (node_{})",
                self.metric.name,
                fmt_score(b.score),
                b.id
            )
        });
        self.ctx.progress.report(
            &format!(
                "Search: {}/{} variants, {running} running{best}",
                tree.variants(),
                self.ctx.settings.tree.max_nodes
            ),
            Some(percent(tree, self.ctx.settings.tree.max_nodes)),
        );
    }

    fn signature(&self, code: &str) -> String {
        select::change_signature(&self.base_code, code)
    }

    /// The earlier node whose change this code's change is nearly the same as (the
    /// baseline counts: no change at all is a duplicate of it).
    fn duplicate(&mut self, tree: &Tree, code: &str) -> Option<(u32, f64)> {
        let threshold = self.ctx.settings.tree.duplicate_similarity;
        let mine = self.signature(code);
        if mine.is_empty() {
            return Some((0, 1.0));
        }
        let mut best: Option<(u32, f64)> = None;
        for n in &tree.nodes {
            // Only variants that were (or are being) run: a failed proposal changed nothing.
            if n.kind == NodeKind::Baseline
                || matches!(n.state, NodeState::Duplicate)
                || (n.state == NodeState::Failed && n.feedback.is_none())
            {
                continue;
            }
            let theirs = match self.signatures.get(&n.id) {
                Some(s) => s.clone(),
                None => {
                    let s = self.signature(
                        &std::fs::read_to_string(node_code(self.folder, n.id)).unwrap_or_default(),
                    );
                    self.signatures.insert(n.id, s.clone());
                    s
                }
            };
            let sim = select::similarity(&mine, &theirs);
            if sim >= threshold && best.is_none_or(|(_, b)| sim > b) {
                best = Some((n.id, sim));
            }
        }
        best
    }

    fn prompt(&self, tree: &Tree, kind: NodeKind, parent: u32) -> String {
        let idea = self.ctx.idea;
        let code = std::fs::read_to_string(node_code(self.folder, parent)).unwrap_or_default();
        let code = code.trim_end();
        let m = self.metric;
        let direction_words = match m.direction {
            Direction::Min => "lower is better",
            Direction::Max => "higher is better",
        };
        let p = tree.node(parent);
        let failed = failures(tree);
        match kind {
            NodeKind::Draft | NodeKind::Baseline => {
                let others: Vec<String> = tree
                    .nodes
                    .iter()
                    .filter(|n| n.kind == NodeKind::Draft && !n.plan.is_empty())
                    .map(|n| format!("- node_{}: {} ({})", n.id, n.plan, outcome(n, &m.name)))
                    .collect();
                let others = listed(
                    " Take a different approach from the drafts already tried:",
                    &others,
                );
                let task = std::fs::read_to_string(self.folder.join("prompt.json"))
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .and_then(|v| v.get("task_description")?.as_str().map(|s| format!("{s}\n\n")))
                    .unwrap_or_default();
                fill(
                    DRAFT,
                    &[
                        ("title", &idea.title),
                        ("experiment", &idea.experiment),
                        ("task", &task),
                        ("metric", &m.name),
                        ("direction_words", direction_words),
                        ("baseline", &py_repr(self.baseline_means)),
                        ("others", &others),
                        ("code", code),
                    ],
                )
            }
            NodeKind::Improve => {
                let tried: Vec<String> = tree
                    .children(parent)
                    .map(|n| format!("- node_{}: {} ({})", n.id, n.plan, outcome(n, &m.name)))
                    .collect();
                let tried = listed(
                    " Changes already tried from this variant (do not repeat them):",
                    &tried,
                );
                let failed = listed("\nWhat failed elsewhere in the search:", &failed);
                fill(
                    IMPROVE,
                    &[
                        ("title", &idea.title),
                        ("experiment", &idea.experiment),
                        ("metric", &m.name),
                        ("direction_words", direction_words),
                        ("baseline_score", &fmt_score(tree.node(0).and_then(|n| n.score))),
                        ("node", &format!("node_{parent}")),
                        ("score", &fmt_score(p.and_then(|n| n.score))),
                        (
                            "results",
                            &p.and_then(|n| n.means.as_ref()).map(py_repr).unwrap_or_default(),
                        ),
                        ("plan", p.map_or("", |n| n.plan.as_str())),
                        ("tried", &tried),
                        ("failed", &failed),
                        ("code", code),
                    ],
                )
            }
            NodeKind::Debug => {
                let earlier: Vec<String> = tree
                    .path_to(parent)
                    .iter()
                    .filter_map(|id| tree.node(*id))
                    .filter(|n| n.kind == NodeKind::Debug && n.id != parent)
                    .map(|n| format!("- node_{}: {}", n.id, n.plan))
                    .collect();
                let earlier = listed("\nFixes already tried on this line:", &earlier);
                fill(
                    DEBUG,
                    &[
                        ("title", &idea.title),
                        ("node", &format!("node_{parent}")),
                        ("plan", p.map_or("", |n| n.plan.as_str())),
                        (
                            "error",
                            p.and_then(|n| n.feedback.as_deref()).unwrap_or("the run failed"),
                        ),
                        ("earlier", &earlier),
                        ("code", code),
                    ],
                )
            }
        }
    }
}

/// One line per failed or rejected variant: the search's memory of what did not work.
fn failures(tree: &Tree) -> Vec<String> {
    tree.nodes
        .iter()
        .filter(|n| matches!(n.state, NodeState::Failed | NodeState::NotPromoted))
        .map(|n| {
            format!(
                "- node_{} ({}): {} -> {}",
                n.id,
                n.kind.as_str(),
                if n.plan.is_empty() { "(no plan)" } else { &n.plan },
                n.error.as_deref().unwrap_or("failed")
            )
        })
        .collect()
}

fn outcome(n: &Node, metric: &str) -> String {
    match n.state {
        NodeState::Done => format!("{metric} {}", fmt_score(n.score)),
        s => n.error.clone().unwrap_or_else(|| s.as_str().to_string()),
    }
}

fn percent(tree: &Tree, max_nodes: u32) -> u32 {
    ((tree.variants() as u32).min(max_nodes) * 90 / max_nodes.max(1)).min(90)
}

fn read(path: &Path) -> Result<String, SearchError> {
    std::fs::read_to_string(path).map_err(|e| SearchError::Io(path.to_path_buf(), e))
}

fn unified_diff(parent: u32, before: &str, id: u32, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("node_{parent}/experiment.py"),
            &format!("node_{id}/experiment.py"),
        )
        .to_string()
}

/// A heading and its lines for a prompt, or nothing when there are no lines.
fn listed(heading: &str, lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("{heading}\n{}", lines.join("\n"))
    }
}
