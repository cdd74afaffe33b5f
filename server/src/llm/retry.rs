//! Retry timing: how many tries, how long in total, and how long between them.

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::HeaderMap;

use crate::config::LlmSettings;

/// Bounds for `Llm`'s retry loop. `from_settings` maps the user's settings; tests shrink
/// `base_delay`/`max_delay` to keep backoff fast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// No retry starts (or waits) past this much time since the call began.
    pub max_total: Duration,
    /// First backoff ceiling; doubles per retry up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Limit for one attempt, streaming included.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::from_settings(&LlmSettings::default())
    }
}

impl RetryPolicy {
    pub fn from_settings(s: &LlmSettings) -> Self {
        Self {
            max_retries: s.max_retries,
            max_total: Duration::from_secs(s.max_retry_secs),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            request_timeout: Duration::from_secs(s.request_timeout_secs.max(1)),
        }
    }

    /// The exponential ceiling before the `retry`-th retry (0-based).
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(30));
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// "Full jitter": uniform in [0, ceiling], which spreads many clients that failed
    /// together (the AWS architecture-blog scheme the SDKs use).
    pub fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        if ceiling.is_zero() {
            return ceiling;
        }
        Duration::from_secs_f64(rng.gen_range(0.0..=ceiling.as_secs_f64()))
    }
}

/// The server's requested wait: `retry-after-ms` (OpenAI, milliseconds), else
/// `retry-after` as seconds or an HTTP date. Dates in the past mean "now".
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let when = SystemTime::from(when);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "23")]), now),
            Some(Duration::from_secs(23))
        );
        // OpenAI sends both; the millisecond one is the precise one.
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "1"), ("retry-after-ms", "120")]), now),
            Some(Duration::from_millis(120))
        );
        assert_eq!(parse_retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(parse_retry_after(&headers(&[]), now), None);
    }

    #[test]
    fn retry_after_http_date() {
        let base = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let now = SystemTime::from(base) - Duration::from_secs(30);
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]), now),
            Some(Duration::from_secs(30))
        );
        let later = SystemTime::from(base) + Duration::from_secs(5);
        assert_eq!(
            parse_retry_after(
                &headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]),
                later
            ),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn backoff_doubles_and_caps_with_jitter_inside() {
        let p = RetryPolicy {
            max_retries: 10,
            max_total: Duration::from_secs(600),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            request_timeout: Duration::from_secs(300),
        };
        assert_eq!(p.backoff_ceiling(0), Duration::from_millis(500));
        assert_eq!(p.backoff_ceiling(1), Duration::from_secs(1));
        assert_eq!(p.backoff_ceiling(3), Duration::from_secs(4));
        assert_eq!(p.backoff_ceiling(4), Duration::from_secs(8));
        assert_eq!(p.backoff_ceiling(40), Duration::from_secs(8));
        let mut rng = rand::thread_rng();
        for retry in 0..8 {
            for _ in 0..50 {
                assert!(p.backoff(retry, &mut rng) <= p.backoff_ceiling(retry));
            }
        }
    }

    #[test]
    fn policy_from_settings() {
        let s = LlmSettings {
            max_retries: 2,
            max_retry_secs: 30,
            request_timeout_secs: 7,
            ..LlmSettings::default()
        };
        let p = RetryPolicy::from_settings(&s);
        assert_eq!(p.max_retries, 2);
        assert_eq!(p.max_total, Duration::from_secs(30));
        assert_eq!(p.request_timeout, Duration::from_secs(7));
    }
}
