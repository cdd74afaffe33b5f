//! The typed settings every part of aisci reads. Defaults live here; where a value
//! comes from (files, editor, environment, flags) is `config::load`'s business.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub llm: LlmSettings,
    pub ideas: IdeaSettings,
    pub literature: LiteratureSettings,
    pub novelty: NoveltySettings,
    pub experiment: ExperimentSettings,
    pub writeup: WriteupSettings,
    pub review: ReviewSettings,
    pub run: RunSettings,
    pub latex: LatexSettings,
    pub edits: EditsSettings,
    /// Not a setting: every variable any layer named as holding a key (even one a
    /// project file was not allowed to set), so experiments never see them.
    #[serde(skip)]
    pub secret_env_names: Vec<String>,
}

/// Which wire protocol and default endpoint to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Chosen from the model name (claude-* → anthropic, deepseek-* → deepseek, ...).
    Auto,
    Openai,
    Anthropic,
    Deepseek,
    Openrouter,
    Gemini,
    Ollama,
    Vllm,
    Llamacpp,
    /// Serves a recorded conversation from `replay_file`; no network.
    Replay,
}

/// `llm.vision`: whether the model accepts images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Vision {
    /// Known vision families by model name; a replay recording says so itself.
    #[default]
    Auto,
    Yes,
    No,
}

impl Vision {
    /// `yes` / `no` as a decision; `auto` leaves it to the provider.
    pub fn forced(self) -> Option<bool> {
        match self {
            Vision::Auto => None,
            Vision::Yes => Some(true),
            Vision::No => Some(false),
        }
    }
}

/// Only the three words: a boolean or any other value is refused with a message that
/// lists them (a derived enum would say "expected string or map" for `vision = true`).
impl<'de> Deserialize<'de> for Vision {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Words;
        impl serde::de::Visitor<'_> for Words {
            type Value = Vision;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("one of `auto`, `yes`, `no`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vision, E> {
                match v {
                    "auto" => Ok(Vision::Auto),
                    "yes" => Ok(Vision::Yes),
                    "no" => Ok(Vision::No),
                    other => Err(E::unknown_variant(other, &["auto", "yes", "no"])),
                }
            }
        }
        d.deserialize_str(Words)
    }
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input: f64,
    #[serde(default)]
    pub cached_input: Option<f64>,
    #[serde(default)]
    pub cache_write: Option<f64>,
    pub output: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmSettings {
    pub model: String,
    pub provider: ProviderKind,
    /// Endpoint override. Only honoured from the user's own settings or a trusted
    /// project: a cloned project must not redirect the user's key elsewhere.
    pub base_url: Option<String>,
    /// Name of the environment variable holding the key; None = the provider's usual one.
    pub api_key_env: Option<String>,
    pub temperature: f32,
    pub max_tokens: u32,
    pub stream: bool,
    /// Whether the model is sent images: `auto` decides from the model name
    /// (`llm::known_vision_model`), `yes`/`no` say so for a model the list gets wrong.
    pub vision: Vision,
    pub request_timeout_secs: u64,
    pub max_retries: u32,
    pub max_retry_secs: u64,
    pub budget_usd: Option<f64>,
    pub replay_file: Option<PathBuf>,
    /// Per-model price overrides, keyed by model name.
    pub prices: BTreeMap<String, Price>,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            model: "gpt-4o-2024-11-20".into(),
            provider: ProviderKind::Auto,
            base_url: None,
            api_key_env: None,
            temperature: 0.75,
            max_tokens: 4096,
            stream: true,
            vision: Vision::Auto,
            request_timeout_secs: 300,
            max_retries: 6,
            max_retry_secs: 600,
            budget_usd: None,
            replay_file: None,
            prices: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdeaSettings {
    pub num_ideas: u32,
    pub num_reflections: u32,
}

impl Default for IdeaSettings {
    fn default() -> Self {
        Self {
            num_ideas: 5,
            num_reflections: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSettings {
    /// The interpreter experiments run under. A command: never taken from an untrusted project.
    pub python: String,
    /// GPUs runs may use, as `CUDA_VISIBLE_DEVICES` values ("0", "1", or UUIDs). Unset:
    /// ask `nvidia-smi`; an empty list: CPU only.
    pub gpus: Option<Vec<String>>,
    /// Runs sharing one GPU at a time.
    pub runs_per_gpu: u32,
    /// Runs at a time when there is no GPU.
    pub cpu_slots: u32,
    /// A run whose folder grows past this many bytes is stopped (checked while it runs).
    pub max_run_dir_bytes: u64,
    /// Where runs execute: on this machine, or as Slurm jobs.
    pub runner: RunnerKind,
    /// How runs are submitted when `runner` is `slurm`.
    pub slurm: SlurmSettings,
    /// Processes (and threads) one run may have at a time, enforced with a control group
    /// where the machine allows one.
    pub max_processes: u32,
    /// false: runs get a network namespace of their own with no usable interface; a
    /// machine that cannot give one refuses to start the run.
    pub network: bool,
    /// Memory one run may use (all its processes together, swap included), enforced with a
    /// memory control group where the machine has one, else `RLIMIT_AS` for CPU runs. Set,
    /// it is also a Slurm job's `--mem`. None: three quarters of the memory of the machine
    /// the run runs on ([`default_max_memory_bytes`], read there).
    pub max_memory_bytes: Option<u64>,
}

impl RunSettings {
    /// The memory limit of a run on this machine.
    pub fn memory_limit(&self) -> u64 {
        self.max_memory_bytes.unwrap_or_else(default_max_memory_bytes)
    }
}

/// Three quarters of this machine's memory (`MemTotal`), or 16 GiB where it cannot be read.
pub fn default_max_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let kib: u64 = t
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(kib * 1024 / 4 * 3)
        })
        .unwrap_or(16 << 30)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerKind {
    /// Child processes of aisci, one per GPU slot (`gpus`, `runs_per_gpu`, `cpu_slots`).
    #[default]
    Local,
    /// `sbatch` jobs; Slurm queues them and hands out GPUs.
    Slurm,
}

impl RunnerKind {
    pub fn name(self) -> &'static str {
        match self {
            RunnerKind::Local => "local",
            RunnerKind::Slurm => "slurm",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlurmSettings {
    /// `--partition`; None: the cluster's default.
    pub partition: Option<String>,
    /// `--account`; None: the user's default.
    pub account: Option<String>,
    /// GPUs per run, as `--gres=gpu:N`; 0 asks for none.
    pub gpus_per_run: u32,
    /// More `sbatch` options, one per element (e.g. `"--mem=16G"`). They can change what
    /// runs and where: never taken from an untrusted project.
    pub extra_args: Vec<String>,
    /// How often the job's state and output are polled.
    pub poll_ms: u64,
    /// Longest wait for one Slurm command (`sbatch`, `squeue`, ...) before it counts as failed.
    pub command_timeout_secs: u64,
}

impl Default for SlurmSettings {
    fn default() -> Self {
        Self {
            partition: None,
            account: None,
            gpus_per_run: 1,
            extra_args: Vec::new(),
            poll_ms: 1000,
            command_timeout_secs: 30,
        }
    }
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            python: "python3".into(),
            gpus: None,
            runs_per_gpu: 1,
            cpu_slots: 1,
            max_run_dir_bytes: 10 << 30,
            runner: RunnerKind::Local,
            slurm: SlurmSettings::default(),
            max_processes: 1024,
            network: true,
            max_memory_bytes: None,
        }
    }
}

/// Building the paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatexSettings {
    /// A build (latexmk, or pdflatex + bibtex + pdflatex twice) is stopped after this long.
    pub build_timeout_secs: u64,
    /// Build when a `.tex` is saved in the editor.
    pub build_on_save: bool,
    /// Add chktex's advice to the build's diagnostics.
    pub chktex: bool,
    /// Not a setting: whether the project's own latexmk rc files (Perl that latexmk runs)
    /// may be read; only in a trusted folder (see `config::load`).
    #[serde(skip)]
    pub project_rc: bool,
}

impl Default for LatexSettings {
    fn default() -> Self {
        Self {
            build_timeout_secs: 120,
            build_on_save: true,
            chktex: true,
            project_rc: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiteratureSettings {
    /// Engines in the order they are tried: `semanticscholar`, `openalex`, `arxiv`.
    pub engines: Vec<String>,
    /// Endpoint overrides (proxies, mirrors). Only from the user's own settings or a
    /// trusted project: the S2 and OpenAlex keys travel to these hosts.
    pub s2_url: Option<String>,
    pub openalex_url: Option<String>,
    pub arxiv_url: Option<String>,
    /// Environment variables holding the keys (user-level or trusted projects only).
    pub s2_api_key_env: String,
    pub openalex_api_key_env: String,
    /// Sent to OpenAlex as `mailto` (polite pool).
    pub openalex_mailto: Option<String>,
    /// Requests per second to Semantic Scholar with a key, and without one.
    pub s2_rate_per_sec: f64,
    pub s2_rate_per_sec_no_key: f64,
    /// Requests per second to OpenAlex and arXiv (arXiv asks for one every 3 s).
    pub openalex_rate_per_sec: f64,
    pub arxiv_rate_per_sec: f64,
    /// Retries of one request on 429/5xx, and the total time one search may take
    /// on an engine before the next engine is asked.
    pub max_retries: u32,
    pub max_retry_secs: u64,
    pub request_timeout_secs: u64,
    /// Failures in a row after which an engine is skipped, and for how long.
    pub breaker_failures: u32,
    pub breaker_cooldown_secs: u64,
    /// Cache folder (default: the user cache dir, e.g. ~/.cache/aisci/literature).
    pub cache_dir: Option<PathBuf>,
    /// Cached answers older than this are asked again; 0 keeps them forever.
    pub cache_ttl_days: u64,
}

impl Default for LiteratureSettings {
    fn default() -> Self {
        Self {
            engines: vec!["semanticscholar".into(), "openalex".into(), "arxiv".into()],
            s2_url: None,
            openalex_url: None,
            arxiv_url: None,
            s2_api_key_env: "S2_API_KEY".into(),
            openalex_api_key_env: "OPENALEX_API_KEY".into(),
            openalex_mailto: None,
            s2_rate_per_sec: 1.0,
            s2_rate_per_sec_no_key: 0.2,
            openalex_rate_per_sec: 5.0,
            arxiv_rate_per_sec: 0.33,
            max_retries: 5,
            max_retry_secs: 60,
            request_timeout_secs: 30,
            breaker_failures: 3,
            breaker_cooldown_secs: 600,
            cache_dir: None,
            cache_ttl_days: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NoveltySettings {
    /// Rounds of search per idea before "no decision" counts as not novel (v1: 10).
    pub max_rounds: u32,
    /// Papers shown to the model per query (v1: 10).
    pub results_per_query: u32,
    /// How many of the closest papers are kept as evidence in ideas.json.
    pub evidence_papers: u32,
}

impl Default for NoveltySettings {
    fn default() -> Self {
        Self {
            max_rounds: 10,
            results_per_query: 10,
            evidence_papers: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExperimentSettings {
    /// Runs after the baseline (v1: 5).
    pub max_runs: u32,
    /// Model turns allowed for each run, the same for every run (v1: 4 for run 1, 3 after).
    pub max_attempts: u32,
    /// Wall-clock limit of one experiment run, enforced by aisci (v1: 7200).
    pub timeout_secs: u64,
    /// How much of a failed run's stderr the model sees (v1: 1500 characters).
    pub stderr_tail_chars: u32,
    /// `python plot.py`: wall-clock limit and attempts (v1: 600 s, 4).
    pub plot_timeout_secs: u64,
    pub plot_attempts: u32,
    /// Revisions of the figures after a vision model's critique of each (0: no critique).
    /// Skipped with one note when the model takes no images.
    pub figure_critique_rounds: u32,
    /// Largest stdout/stderr file kept per run; beyond it only the tail is kept.
    pub output_cap_bytes: u64,
    /// `line`: v1's chain of runs, each building on the last; `tree`: a search over
    /// implementations (`experiment.tree`).
    pub search: SearchMode,
    /// The tree search (`[experiment.tree]`), used when `search = "tree"`.
    pub tree: TreeSettings,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    #[default]
    Line,
    Tree,
}

/// Whether a lower or a higher score is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Min,
    Max,
}

/// `[experiment.tree]`: how far the search goes and how it judges a variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TreeSettings {
    /// Variants tried (the baseline not counted; duplicates and failures count).
    pub max_nodes: u32,
    /// Variants run at the same time (each still waits for a slot of the runner).
    pub workers: u32,
    /// Reruns of the best variant, with `EXPERIMENT_SEED` = 1..=seeds, for mean ± s.e.
    pub seeds: u32,
    /// New implementations drafted from the baseline before any is improved.
    pub drafts: u32,
    /// Fixes tried in a row on a failing line of variants.
    pub max_debug: u32,
    /// Every n-th improvement goes to the least explored working variant instead of the
    /// best (0: always the best).
    pub explore_every: u32,
    /// A variant whose change is at least this similar (0 to 1) to an earlier one's is
    /// not run.
    pub duplicate_similarity: f64,
    /// Run each variant first in smoke mode (`EXPERIMENT_SMOKE=1`) when the template
    /// has that switch; only a promising smoke run goes on at full size.
    pub smoke: bool,
    /// How much worse than the baseline's smoke score (relative) a smoke score may be
    /// and still go on at full size.
    pub smoke_slack: f64,
    /// The share of `llm.budget_usd` the search may spend on model calls.
    pub budget_share: f64,
    /// The key of `final_info.json`'s means that scores a variant (else the template's
    /// `prompt.json` `metric`, else proposed by the model once and recorded).
    pub metric: Option<String>,
    pub direction: Option<Direction>,
}

impl Default for TreeSettings {
    fn default() -> Self {
        Self {
            max_nodes: 12,
            workers: 2,
            seeds: 3,
            drafts: 2,
            max_debug: 2,
            explore_every: 3,
            duplicate_similarity: 0.95,
            smoke: true,
            smoke_slack: 0.1,
            budget_share: 0.6,
            metric: None,
            direction: None,
        }
    }
}

/// The reviewer (`[review]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReviewSettings {
    /// Independent reviews combined by a meta-review (v1: 5; 1 = a single review).
    pub ensemble: u32,
    /// Reflection rounds on the combined review (v1's `num_reflections = 5` is the review
    /// plus 4 rounds).
    pub reflection_rounds: u32,
    /// Replies a reviewer may take to give a usable review before it is dropped.
    pub max_attempts: u32,
    /// Temperature of the ensemble's reviewers (v1: 0.75); the meta-review and the
    /// reflections use `llm.temperature`.
    pub temperature: f32,
    /// Overall score from which the calibrated decision accepts (v1's paper: 6).
    pub accept_threshold: u8,
    /// Example papers with their reviews shown to the reviewer (few-shot).
    pub examples: Vec<ReviewExample>,
    /// A model for the reviewer only (default: `llm.model`).
    pub model: Option<String>,
}

/// A few-shot example: the paper (`.txt`, `.pdf` or `.tex`) and its review (JSON: the
/// review itself, or v1's `{"review": "<JSON text>"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewExample {
    pub paper: String,
    pub review: String,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        Self {
            ensemble: 5,
            reflection_rounds: 4,
            max_attempts: 3,
            temperature: 0.75,
            accept_threshold: 6,
            examples: Vec::new(),
            model: None,
        }
    }
}

/// The paper-writing stage (`[writeup]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WriteupSettings {
    /// Rounds in which the model may search the literature and cite a paper (v1: 20).
    pub citation_rounds: u32,
    /// Rounds of static checks, chktex and a build whose errors go back to the model (v1: 5).
    pub fix_rounds: u32,
    /// Wall-clock limit of one LaTeX build.
    pub build_timeout_secs: u64,
    /// Model turns allowed for one section when its edits do not apply or are refused.
    pub max_attempts_per_section: u32,
    /// Papers shown to the model per citation query.
    pub results_per_query: u32,
    /// A model for this stage only (default: `llm.model`).
    pub model: Option<String>,
}

impl Default for WriteupSettings {
    fn default() -> Self {
        Self {
            citation_rounds: 20,
            fix_rounds: 5,
            build_timeout_secs: 120,
            max_attempts_per_section: 3,
            results_per_query: 10,
            model: None,
        }
    }
}

impl Default for ExperimentSettings {
    fn default() -> Self {
        Self {
            max_runs: 5,
            max_attempts: 4,
            timeout_secs: 7200,
            stderr_tail_chars: 1500,
            plot_timeout_secs: 600,
            plot_attempts: 4,
            figure_critique_rounds: 1,
            output_cap_bytes: 64 << 20,
            search: SearchMode::Line,
            tree: TreeSettings::default(),
        }
    }
}

/// `[edits]`: how the agent's edits reach an editor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EditsSettings {
    pub review: ReviewMode,
}

/// Which stages' edits wait for the user's review in the editor before they land
/// (ordered: a project may turn review up, never down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewMode {
    /// Edits land at once (undoable), as headless runs need.
    #[default]
    Off,
    /// The experiment stage's edits (experiment.py, plot.py, notes.txt) wait for review.
    Experiment,
    /// Every stage's edits wait for review (the paper's too).
    All,
}
