//! `Literature`: the cache, then the engines in the configured order, each behind a
//! circuit breaker, each request through its process-wide rate limiter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::arxiv::Arxiv;
use super::cache::Cache;
use super::http::EngineHttp;
use super::openalex::OpenAlex;
use super::semantic_scholar::SemanticScholar;
use super::{bibtex, limiter, Engine, EngineQuery, LitError, Paper, PaperSearch, SearchResult};
use crate::config::LiteratureSettings;
use crate::llm::{ApiKey, Env, RetryPolicy};

pub const DEFAULT_S2_URL: &str = "https://api.semanticscholar.org/graph/v1";
pub const DEFAULT_OPENALEX_URL: &str = "https://api.openalex.org";
pub const DEFAULT_ARXIV_URL: &str = "https://export.arxiv.org/api";

/// A change the user should hear about once: an engine is being skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub engine: Engine,
    /// How long it is skipped for.
    pub cooldown: Duration,
    pub message: String,
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

type NoticeHook = Arc<dyn Fn(&Notice) + Send + Sync>;

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

pub struct Literature {
    order: Vec<Engine>,
    s2: SemanticScholar,
    openalex: OpenAlex,
    arxiv: Arxiv,
    breakers: Mutex<[Breaker; 3]>,
    breaker_failures: u32,
    cooldown: Duration,
    /// How long one search may spend on one engine, limiter queue and retries included.
    per_engine: Duration,
    cache: Cache,
    notices: Mutex<Vec<Notice>>,
    on_notice: Option<NoticeHook>,
}

impl std::fmt::Debug for Literature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are `ApiKey`s, whose Debug is redacted.
        f.debug_struct("Literature")
            .field("order", &self.order)
            .field("s2", &self.s2)
            .field("openalex", &self.openalex)
            .field("arxiv", &self.arxiv)
            .field("cache", &self.cache.dir())
            .finish_non_exhaustive()
    }
}

fn slot(engine: Engine) -> usize {
    match engine {
        Engine::SemanticScholar => 0,
        Engine::OpenAlex => 1,
        Engine::Arxiv => 2,
    }
}

fn base_url(setting: &Option<String>, default: &str) -> String {
    setting
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(default)
        .trim_end_matches('/')
        .to_owned()
}

impl Literature {
    /// Builds the engines from settings; keys are read from `env` under the configured
    /// variable names. Fails only on settings that cannot work (no or unknown engines).
    pub fn from_settings(s: &LiteratureSettings, env: &dyn Env) -> Result<Self, LitError> {
        let mut order = Vec::new();
        for name in &s.engines {
            let engine = Engine::parse(name).ok_or_else(|| {
                LitError::Config(format!(
                    "unknown literature engine {name:?} (known: semanticscholar, openalex, arxiv)"
                ))
            })?;
            if !order.contains(&engine) {
                order.push(engine);
            }
        }
        if order.is_empty() {
            return Err(LitError::Config("no literature engine is configured".into()));
        }
        let key = |var: &str| {
            env.var(var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(ApiKey::new)
        };
        let s2_key = key(&s.s2_api_key_env);
        let openalex_key = key(&s.openalex_api_key_env);
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("aisci/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LitError::Config(format!("cannot build the HTTP client: {e}")))?;
        let policy = RetryPolicy {
            max_retries: s.max_retries,
            max_total: Duration::from_secs(s.max_retry_secs),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            request_timeout: Duration::from_secs(s.request_timeout_secs.max(1)),
        };
        let http = |engine: Engine, base: String, rate: f64, key_var: Option<&str>| EngineHttp {
            engine,
            limiter: limiter::shared(engine, &base, rate),
            base,
            client: client.clone(),
            policy,
            key_var: key_var.map(str::to_owned),
        };
        let s2_rate = if s2_key.is_some() {
            s.s2_rate_per_sec
        } else {
            s.s2_rate_per_sec_no_key
        };
        let cache_dir = s
            .cache_dir
            .clone()
            .or_else(|| dirs::cache_dir().map(|d| d.join("aisci").join("literature")));
        Ok(Self {
            order,
            s2: SemanticScholar {
                http: http(
                    Engine::SemanticScholar,
                    base_url(&s.s2_url, DEFAULT_S2_URL),
                    s2_rate,
                    Some(&s.s2_api_key_env),
                ),
                key: s2_key,
            },
            openalex: OpenAlex {
                http: http(
                    Engine::OpenAlex,
                    base_url(&s.openalex_url, DEFAULT_OPENALEX_URL),
                    s.openalex_rate_per_sec,
                    Some(&s.openalex_api_key_env),
                ),
                key: openalex_key,
                mailto: s.openalex_mailto.clone().filter(|m| !m.trim().is_empty()),
            },
            arxiv: Arxiv {
                http: http(
                    Engine::Arxiv,
                    base_url(&s.arxiv_url, DEFAULT_ARXIV_URL),
                    s.arxiv_rate_per_sec,
                    None,
                ),
            },
            breakers: Mutex::new(Default::default()),
            breaker_failures: s.breaker_failures.max(1),
            cooldown: Duration::from_secs(s.breaker_cooldown_secs),
            per_engine: Duration::from_secs(s.max_retry_secs.max(1)),
            cache: Cache::new(cache_dir, s.cache_ttl_days),
            notices: Mutex::new(Vec::new()),
            on_notice: None,
        })
    }

    /// Backoff bounds between retries (default 1 s doubling to 30 s, full jitter).
    /// Tests shrink them.
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        for http in [&mut self.s2.http, &mut self.openalex.http, &mut self.arxiv.http] {
            http.policy.base_delay = base;
            http.policy.max_delay = max;
        }
        self
    }

    /// Called once each time an engine starts being skipped (in addition to `notices`).
    pub fn on_notice(mut self, hook: impl Fn(&Notice) + Send + Sync + 'static) -> Self {
        self.on_notice = Some(Arc::new(hook));
        self
    }

    /// Takes the notices collected since the last call.
    pub fn notices(&self) -> Vec<Notice> {
        std::mem::take(&mut *self.notices.lock().unwrap())
    }

    /// The engines in the order they are tried.
    pub fn engines(&self) -> &[Engine] {
        &self.order
    }

    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache.dir()
    }

    /// BibTeX for `paper`, ready for a `.bib` file: the engine's own (normalised), else
    /// the cached one, else Semantic Scholar's paper details, else built from the metadata.
    pub async fn bibtex(&self, paper: &Paper, cancel: &CancellationToken) -> Result<String, LitError> {
        if let Some(b) = paper.bibtex.as_deref() {
            if let Ok(clean) = bibtex::sanitize(b) {
                return Ok(clean);
            }
        }
        if let Some(b) = self.cache.get_bibtex(paper.engine, &paper.id) {
            return Ok(b);
        }
        let mut cacheable = true;
        let mut found = None;
        if paper.engine == Engine::SemanticScholar {
            if self.open_for(Engine::SemanticScholar).is_some() {
                // S2 is being skipped: build one now, ask S2 another time.
                cacheable = false;
            } else {
                let deadline = Instant::now() + self.per_engine;
                match self.s2.paper(&paper.id, deadline, cancel).await {
                    Ok(details) => found = details.bibtex,
                    Err(LitError::Cancelled) => return Err(LitError::Cancelled),
                    Err(e) => {
                        tracing::debug!("no BibTeX from semanticscholar for {}: {e}", paper.id);
                        // A transient failure: build one now, ask again next time.
                        cacheable = matches!(e, LitError::BadRequest { .. });
                    }
                }
            }
        }
        let bib = found.unwrap_or_else(|| bibtex::from_paper(paper).render());
        if cacheable {
            self.cache.put_bibtex(paper.engine, &paper.id, &bib);
        }
        Ok(bib)
    }

    /// Remaining cooldown when `engine` is being skipped.
    /// (An exhausted daily budget is skipped until it resets, not just the cooldown.)
    fn open_for(&self, engine: Engine) -> Option<Duration> {
        let b = self.breakers.lock().unwrap();
        let until = b[slot(engine)].open_until?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }

    fn succeeded(&self, engine: Engine) {
        let mut b = self.breakers.lock().unwrap();
        b[slot(engine)] = Breaker::default();
    }

    /// Counts a failure; opens the breaker (and tells the user once) when it is time.
    fn failed(&self, engine: Engine, error: &LitError) {
        let immediate = matches!(error, LitError::BudgetExhausted { .. } | LitError::BadKey { .. });
        let opened = {
            let mut all = self.breakers.lock().unwrap();
            let b = &mut all[slot(engine)];
            let now = Instant::now();
            if b.open_until.is_some_and(|u| u > now) {
                // Already open (a concurrent search failed first): said already.
                false
            } else {
                b.failures += 1;
                if immediate || b.failures >= self.breaker_failures {
                    b.open_until = Some(now + skip_for(error, self.cooldown));
                    true
                } else {
                    false
                }
            }
        };
        if opened {
            let others: Vec<&str> = self
                .order
                .iter()
                .filter(|e| **e != engine && self.open_for(**e).is_none())
                .map(|e| e.as_str())
                .collect();
            let then = if others.is_empty() {
                "no other engine is available".to_owned()
            } else {
                format!("using {} instead", others.join(", then "))
            };
            let cooldown = skip_for(error, self.cooldown);
            let notice = Notice {
                engine,
                cooldown,
                message: format!("{engine} is skipped for {} ({error}); {then}", human(cooldown)),
            };
            tracing::warn!("{notice}");
            if let Some(hook) = &self.on_notice {
                hook(&notice);
            }
            self.notices.lock().unwrap().push(notice);
        }
    }

    async fn search_engine(
        &self,
        engine: Engine,
        query: &str,
        limit: usize,
        cancel: &CancellationToken,
    ) -> Result<Vec<Paper>, LitError> {
        let deadline = Instant::now() + self.per_engine;
        let q = EngineQuery {
            text: query,
            limit,
            deadline,
        };
        match engine {
            Engine::SemanticScholar => self.s2.search(q, cancel).await,
            Engine::OpenAlex => self.openalex.search(q, cancel).await,
            Engine::Arxiv => self.arxiv.search(q, cancel).await,
        }
    }
}

fn human(d: Duration) -> String {
    // Rounded up: "skipped for 10 min" should not read 9 a moment after it opened.
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s.div_ceil(60)),
        _ => format!("{} h", s.div_ceil(3600)),
    }
}

#[async_trait]
impl PaperSearch for Literature {
    async fn search(
        &self,
        query: &str,
        limit: usize,
        cancel: &CancellationToken,
    ) -> Result<SearchResult, LitError> {
        if cancel.is_cancelled() {
            return Err(LitError::Cancelled);
        }
        if query.trim().is_empty() || limit == 0 {
            return Ok(SearchResult {
                papers: Vec::new(),
                engine: self.order[0],
                from_cache: false,
            });
        }
        // Any engine's cached answer beats asking the network.
        for &engine in &self.order {
            if let Some(papers) = self.cache.get_search(engine, query, limit) {
                return Ok(SearchResult {
                    papers,
                    engine,
                    from_cache: true,
                });
            }
        }
        let mut errors = Vec::new();
        for &engine in &self.order {
            if let Some(left) = self.open_for(engine) {
                errors.push(LitError::Unavailable {
                    engine,
                    message: format!("skipped for {} more after failing", human(left)),
                });
                continue;
            }
            match self.search_engine(engine, query, limit, cancel).await {
                Ok(papers) => {
                    self.succeeded(engine);
                    self.cache.put_search(engine, query, limit, &papers);
                    return Ok(SearchResult {
                        papers,
                        engine,
                        from_cache: false,
                    });
                }
                Err(LitError::Cancelled) => return Err(LitError::Cancelled),
                // The query, not the engine, is at fault: another engine may take it.
                Err(e @ LitError::BadRequest { .. }) => errors.push(e),
                Err(e) => {
                    tracing::info!("{engine} failed, trying the next engine: {e}");
                    self.failed(engine, &e);
                    errors.push(e);
                }
            }
        }
        Err(LitError::AllFailed(errors))
    }
}

/// How long an engine is skipped after `error` opened its breaker.
fn skip_for(error: &LitError, cooldown: Duration) -> Duration {
    match error {
        LitError::BudgetExhausted {
            resets_in: Some(reset),
            ..
        } => (*reset).max(cooldown),
        _ => cooldown,
    }
}
