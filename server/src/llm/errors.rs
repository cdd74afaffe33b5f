//! Turning a provider's error response into an `LlmError` that says whether a retry can
//! help. Shared by both wire clients: the bodies differ (OpenAI nested, vLLM flat,
//! OpenRouter integer codes, Google RPC arrays, Anthropic typed), the decisions do not.

use std::time::SystemTime;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::endpoint::ApiKey;
use super::retry::parse_retry_after;
use super::LlmError;

/// Facts pulled out of an error body, whatever its dialect.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ErrorBody {
    pub message: String,
    /// `error.type` / `error.code` / `error.status` / details codes, lowercased.
    pub kinds: Vec<String>,
    /// Google `RetryInfo.retryDelay` in seconds.
    pub retry_delay_secs: Option<f64>,
}

pub(crate) fn parse_error_body(body: &str) -> ErrorBody {
    let trimmed = body.trim();
    let Ok(v) = serde_json::from_str::<Value>(trimmed) else {
        return ErrorBody {
            message: truncate(trimmed, 400),
            ..ErrorBody::default()
        };
    };
    // Gemini's OpenAI-compatible endpoint sometimes wraps the object in an array.
    let v = match v {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    let err = match v.get("error") {
        Some(e) if e.is_object() => e,
        Some(Value::String(s)) => {
            return ErrorBody {
                message: s.clone(),
                ..ErrorBody::default()
            }
        }
        _ => &v, // vLLM's flat `{"object":"error","message":...}`
    };
    let mut out = ErrorBody {
        message: err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| truncate(trimmed, 400)),
        ..ErrorBody::default()
    };
    for key in ["type", "code", "status"] {
        match err.get(key) {
            Some(Value::String(s)) => out.kinds.push(s.to_ascii_lowercase()),
            Some(Value::Number(n)) => out.kinds.push(n.to_string()),
            _ => {}
        }
    }
    if let Some(code) = err.pointer("/details/error_code").and_then(Value::as_str) {
        out.kinds.push(code.to_ascii_lowercase());
    }
    if let Some(details) = err.get("details").and_then(Value::as_array) {
        for d in details {
            if let Some(delay) = d.get("retryDelay").and_then(Value::as_str) {
                out.retry_delay_secs = delay.trim_end_matches('s').parse::<f64>().ok();
            }
            // Quota failures name the quota; daily ones won't reset within a retry window.
            if let Some(viols) = d.get("violations").and_then(Value::as_array) {
                for q in viols {
                    if let Some(id) = q.get("quotaId").and_then(Value::as_str) {
                        out.kinds.push(id.to_ascii_lowercase());
                    }
                }
            }
        }
    }
    out
}

/// Quota, billing or spend-cap errors: waiting will not help, the user must act.
fn is_quota_exhausted(status: u16, body: &ErrorBody) -> bool {
    if status == 402 {
        return true;
    }
    let quota_kind = body.kinds.iter().any(|k| {
        k == "insufficient_quota"
            || k == "billing_error"
            || k == "enforced_spend_limit_reached"
            || k.contains("perday")
    });
    let msg = body.message.to_ascii_lowercase();
    quota_kind || msg.contains("insufficient balance") || msg.contains("insufficient credits")
}

/// Classify a non-success HTTP response. The key, if the server echoed it, is removed.
pub(crate) fn classify_http(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    body: &str,
    key: Option<&ApiKey>,
) -> LlmError {
    let parsed = parse_error_body(body);
    let message = redact(&parsed.message, key);
    let should_retry_header = headers
        .get("x-should-retry")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().eq_ignore_ascii_case("true"));
    let transient_status = matches!(status, 408 | 409 | 429) || status >= 500;
    let retryable =
        transient_status && !is_quota_exhausted(status, &parsed) && should_retry_header != Some(false);
    if retryable {
        let retry_after = parse_retry_after(headers, SystemTime::now()).or_else(|| {
            parsed
                .retry_delay_secs
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(std::time::Duration::from_secs_f64)
        });
        LlmError::Unavailable {
            provider: provider.to_owned(),
            status,
            message,
            retry_after,
        }
    } else {
        LlmError::Rejected {
            provider: provider.to_owned(),
            status,
            message,
        }
    }
}

/// Replace any occurrence of the key (servers sometimes echo what they were sent).
pub(crate) fn redact(text: &str, key: Option<&ApiKey>) -> String {
    match key {
        Some(k) if k.expose().len() >= 4 => text.replace(k.expose(), "[redacted]"),
        _ => text.to_owned(),
    }
}

/// A reqwest failure as one of ours; reqwest's text names the URL, never headers.
pub(crate) fn transport_error(provider: &str, err: &reqwest::Error, key: Option<&ApiKey>) -> LlmError {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    // The URL can carry credentials (a proxy's user:pass@, a key parameter): only its
    // scheme, host and port are shown.
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), &super::endpoint::url_origin(url.as_str()));
    }
    LlmError::Transport {
        provider: provider.to_owned(),
        message: redact(&text, key),
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn classify(status: u16, body: &str) -> LlmError {
        classify_http("p", status, &HeaderMap::new(), body, None)
    }

    #[test]
    fn parses_every_dialect() {
        let openai = r#"{"error":{"message":"Rate limit","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        let b = parse_error_body(openai);
        assert_eq!(b.message, "Rate limit");
        assert!(b.kinds.contains(&"rate_limit_exceeded".to_string()));

        let flat = r#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#;
        let b = parse_error_body(flat);
        assert_eq!(b.message, "The model `x` does not exist.");
        assert!(b.kinds.contains(&"404".to_string()));

        let anthropic = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#;
        assert_eq!(parse_error_body(anthropic).message, "Overloaded");

        let google = r#"[{"error":{"code":429,"message":"Quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"41s"}]}}]"#;
        let b = parse_error_body(google);
        assert_eq!(b.retry_delay_secs, Some(41.0));
        assert!(b.kinds.contains(&"resource_exhausted".to_string()));

        let html = "<html><body>502 Bad Gateway</body></html>";
        assert_eq!(parse_error_body(html).message, html);
    }

    #[test]
    fn retry_decisions_by_status_and_body() {
        for s in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert!(classify(s, "{}").is_retryable(), "{s}");
        }
        for s in [400, 401, 402, 403, 404, 413, 422] {
            assert!(!classify(s, "{}").is_retryable(), "{s}");
        }
        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert!(!classify(429, quota).is_retryable());
        let spend = r#"{"type":"error","error":{"type":"rate_limit_error","message":"cap","details":{"error_code":"enforced_spend_limit_reached"}}}"#;
        assert!(!classify(429, spend).is_retryable());
        let daily = r#"{"error":{"code":429,"message":"q","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}"#;
        assert!(!classify(429, daily).is_retryable());
    }

    #[test]
    fn x_should_retry_false_wins() {
        let mut h = HeaderMap::new();
        h.insert("x-should-retry", HeaderValue::from_static("false"));
        assert!(!classify_http("p", 503, &h, "{}", None).is_retryable());
    }

    #[test]
    fn echoed_key_is_redacted() {
        let key = ApiKey::new("sk-secret-abcdef");
        let body = r#"{"error":{"message":"bad key sk-secret-abcdef"}}"#;
        let e = classify_http("p", 401, &HeaderMap::new(), body, Some(&key));
        assert!(!e.to_string().contains("sk-secret-abcdef"));
        assert!(e.to_string().contains("[redacted]"));
    }
}
