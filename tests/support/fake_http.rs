//! What the local fakes (`fake_llm.rs`, `fake_lit.rs`) share: reading fixtures, parsing
//! recorded `.http` fixtures, setting a reply's header, serving, and turning a request's
//! headers and a reply into their plain forms. Each fake reaches it as `super::fake_http`
//! (the benches that use a fake declare it, and `fs`, beside it).

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Router;

/// Read a fixture from `tests/fixtures/<dir>/`.
pub fn fixture(dir: &str, name: &str) -> String {
    let path = super::fs::fixtures().join(dir).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A recorded `.http` fixture: status line, headers (names lower-cased), blank line, body.
pub fn parse_http(text: &str) -> (u16, Vec<(String, String)>, String) {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .expect("http fixture has a blank line");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// Replaces any header `name` (in any case) by `name: value`, lower-cased.
pub fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    headers.push((name.to_ascii_lowercase(), value.to_owned()));
}

/// Serves `app` on a free local port; returns `http://127.0.0.1:PORT`.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    format!("http://{addr}")
}

/// A request's headers as name → value (non-text values as "").
pub fn header_map(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect()
}

/// The response for a complete reply.
pub fn full_response(status: u16, headers: Vec<(String, String)>, body: String) -> Response {
    let mut b = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.body(Body::from(body)).unwrap()
}
