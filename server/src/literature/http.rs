//! One GET against an engine: through the shared limiter, with bounded, jittered
//! retries on 429/5xx/network errors, honouring Retry-After, cancellable at any point.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::limiter::{Denied, RateLimiter};
use super::{Engine, LitError};
use crate::llm::{parse_retry_after, RetryPolicy};

/// A Retry-After this long means "not today" (OpenAlex sends seconds until midnight UTC).
const BUDGET_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A successful answer.
#[derive(Debug)]
pub struct Body {
    pub content_type: String,
    pub text: String,
}

impl Body {
    pub fn is_json(&self) -> bool {
        self.content_type.contains("json")
    }

    pub fn is_html(&self) -> bool {
        is_html(&self.content_type, &self.text)
    }

    /// Parses JSON, refusing HTML pages (proxies, captive portals, wrong endpoints).
    pub fn json<T: serde::de::DeserializeOwned>(&self, engine: Engine) -> Result<T, LitError> {
        if self.is_html() {
            return Err(LitError::Malformed {
                engine,
                message: format!("expected JSON, got {}", describe(&self.content_type, &self.text)),
            });
        }
        serde_json::from_str(&self.text).map_err(|e| LitError::Malformed {
            engine,
            message: format!("invalid JSON ({e})"),
        })
    }
}

/// Per-engine HTTP settings and the shared limiter.
#[derive(Debug, Clone)]
pub struct EngineHttp {
    pub engine: Engine,
    /// Base URL without a trailing slash.
    pub base: String,
    pub client: reqwest::Client,
    pub limiter: Arc<RateLimiter>,
    pub policy: RetryPolicy,
    /// The variable holding this engine's key, named in BadKey errors.
    pub key_var: Option<String>,
}

enum Outcome {
    Done(Body),
    Retry { error: LitError, wait: Option<Duration> },
    Fail(LitError),
}

impl EngineHttp {
    /// GETs `base + path` with `query` and extra `headers`. `deadline` bounds every wait.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&'static str, String)],
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Result<Body, LitError> {
        let started = Instant::now();
        let url = format!("{}{}", self.base, path);
        let mut retry = 0u32;
        loop {
            match self.limiter.acquire(deadline, cancel).await {
                Ok(()) => {}
                Err(Denied::Cancelled) => return Err(LitError::Cancelled),
                Err(Denied::PastDeadline) => {
                    return Err(LitError::RateLimited {
                        engine: self.engine,
                        secs: (deadline - started).as_secs_f64(),
                    })
                }
            }
            let outcome = tokio::select! {
                _ = cancel.cancelled() => return Err(LitError::Cancelled),
                o = self.attempt(&url, query, headers, deadline, started) => o,
            };
            let (error, wait) = match outcome {
                Outcome::Done(body) => return Ok(body),
                Outcome::Fail(e) => return Err(e),
                Outcome::Retry { error, wait } => (error, wait),
            };
            if retry >= self.policy.max_retries {
                return Err(error);
            }
            let wait = wait.unwrap_or_else(|| self.policy.backoff(retry, &mut rand::thread_rng()));
            if Instant::now() + wait > deadline {
                // Sleeping could not lead to an answer in time: give up now.
                return Err(error);
            }
            if matches!(error, LitError::RateLimited { .. }) {
                self.limiter.hold_off(wait);
            }
            tracing::debug!(engine = %self.engine, retry, ?wait, "retrying: {error}");
            tokio::select! {
                _ = cancel.cancelled() => return Err(LitError::Cancelled),
                _ = tokio::time::sleep(wait) => {}
            }
            retry += 1;
        }
    }

    async fn attempt(
        &self,
        url: &str,
        query: &[(&str, String)],
        headers: &[(&'static str, String)],
        deadline: Instant,
        started: Instant,
    ) -> Outcome {
        let engine = self.engine;
        let timeout = self
            .policy
            .request_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let mut req = self.client.get(url).query(query);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let send = async {
            let resp = req.send().await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let text = resp.text().await?;
            Ok::<_, reqwest::Error>((status, headers, text))
        };
        let (status, headers, text) = match tokio::time::timeout(timeout, send).await {
            Err(_) => {
                return Outcome::Retry {
                    error: LitError::Unavailable {
                        engine,
                        message: format!("no answer within {:.0}s", timeout.as_secs_f64()),
                    },
                    wait: None,
                }
            }
            Ok(Err(e)) => {
                return Outcome::Retry {
                    error: LitError::Unavailable {
                        engine,
                        message: network_message(e),
                    },
                    wait: None,
                }
            }
            Ok(Ok(r)) => r,
        };
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if status.is_success() {
            return Outcome::Done(Body { content_type, text });
        }
        let message = format!("HTTP {}: {}", status.as_u16(), describe(&content_type, &text));
        classify(self, status, &headers, &text, message, deadline, started)
    }
}

fn classify(
    http: &EngineHttp,
    status: StatusCode,
    headers: &HeaderMap,
    text: &str,
    message: String,
    deadline: Instant,
    started: Instant,
) -> Outcome {
    let engine = http.engine;
    let retry_after = parse_retry_after(headers, SystemTime::now());
    match status.as_u16() {
        429 => {
            let lower = text.to_ascii_lowercase();
            let budget = lower.contains("insufficient budget")
                || lower.contains("insufficient_quota")
                || lower.contains("daily limit");
            if budget || retry_after.is_some_and(|w| w >= BUDGET_RETRY_AFTER) {
                return Outcome::Fail(LitError::BudgetExhausted {
                    engine,
                    message,
                    resets_in: retry_after,
                });
            }
            let error = LitError::RateLimited {
                engine,
                secs: (Instant::now() - started).as_secs_f64(),
            };
            match retry_after {
                // Waiting past the deadline is pointless; the next engine may answer.
                Some(w) if Instant::now() + w > deadline => Outcome::Fail(error),
                wait => Outcome::Retry { error, wait },
            }
        }
        408 | 425 | 500 | 502 | 503 | 504 | 529 => Outcome::Retry {
            error: LitError::Unavailable { engine, message },
            wait: retry_after.filter(|w| *w < BUDGET_RETRY_AFTER),
        },
        400 | 422 => Outcome::Fail(LitError::BadRequest { engine, message }),
        401 | 403 if http.key_var.is_some() => Outcome::Fail(LitError::BadKey {
            engine,
            key_var: http.key_var.clone().unwrap_or_default(),
            message,
        }),
        _ => Outcome::Fail(LitError::Unavailable { engine, message }),
    }
}

/// A network error without its URL (OpenAlex keys travel in the query string).
fn network_message(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn is_html(content_type: &str, text: &str) -> bool {
    content_type.contains("html") || {
        let t = text.trim_start().get(..15).unwrap_or("").to_ascii_lowercase();
        t.starts_with("<!doctype html") || t.starts_with("<html")
    }
}

/// A short, human description of an error body: the JSON `message`/`error`, an HTML
/// page's title, or the first line of text.
pub fn describe(content_type: &str, text: &str) -> String {
    if is_html(content_type, text) {
        let lower = text.to_ascii_lowercase();
        let title = lower.find("<title>").and_then(|s| {
            lower[s + 7..]
                .find("</title>")
                .map(|e| text[s + 7..s + 7 + e].trim())
        });
        return match title {
            Some(t) if !t.is_empty() => format!("an HTML page ({t})"),
            _ => "an HTML page".to_owned(),
        };
    }
    // arXiv reports errors as an Atom entry; its summary says what was wrong.
    if let Some(start) = text.find("<summary>") {
        if let Some(len) = text[start + 9..].find("</summary>") {
            return truncate(text[start + 9..start + 9 + len].trim(), 300);
        }
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let field = |k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_owned);
        let msg = match (field("error"), field("message")) {
            (Some(e), Some(m)) if e != m => format!("{e}: {m}"),
            (_, Some(m)) => m,
            (Some(e), None) => e,
            (None, None) => text.trim().to_owned(),
        };
        return truncate(&msg, 300);
    }
    let line = text.trim().lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "empty body".to_owned()
    } else {
        truncate(line, 300)
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_bodies() {
        assert_eq!(
            describe(
                "text/html; charset=utf-8",
                "<!doctype html>\n<title>404 Not Found</title>"
            ),
            "an HTML page (404 Not Found)"
        );
        assert_eq!(
            describe("application/json", r#"{"message":"Forbidden"}"#),
            "Forbidden"
        );
        assert_eq!(
            describe(
                "application/json",
                r#"{"error":"Invalid filter","message":"Unknown"}"#
            ),
            "Invalid filter: Unknown"
        );
        assert_eq!(describe("text/plain", "Rate exceeded.\n"), "Rate exceeded.");
    }
}
