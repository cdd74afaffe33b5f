//! A local fake of Semantic Scholar, OpenAlex and arXiv for hermetic tests. One server
//! answers all three under different prefixes; each route replays scripted replies in
//! order, then its default (a recorded fixture from `tests/fixtures/literature/`), and
//! every request is logged with its arrival time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::Router;

use super::fake_http;

/// Read a fixture from `tests/fixtures/literature/`.
pub fn fixture(name: &str) -> String {
    fake_http::fixture("literature", name)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    S2Search,
    S2Paper,
    OpenAlexWorks,
    Arxiv,
    /// Anything else: answered with an HTML 404 page.
    Unknown,
}

#[derive(Clone, Debug)]
pub enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Waits before replying.
    Delay(Duration, Box<Reply>),
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<String>) -> Self {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "application/json", body)
    }

    pub fn json_fixture(status: u16, name: &str) -> Self {
        Self::json(status, fixture(name))
    }

    pub fn atom_fixture(status: u16, name: &str) -> Self {
        Self::new(status, "application/atom+xml; charset=utf-8", fixture(name))
    }

    /// A recorded `.http` fixture: status line, headers, blank line, body.
    pub fn http_fixture(name: &str) -> Self {
        let (status, mut headers, body) = fake_http::parse_http(&fixture(name));
        // The fake computes its own length; a recorded one would not match.
        headers.retain(|(k, _)| k != "content-length");
        Reply::Full {
            status,
            headers,
            body,
        }
    }

    pub fn with_header(self, name: &str, value: &str) -> Self {
        match self {
            Reply::Full {
                status,
                mut headers,
                body,
            } => {
                fake_http::set_header(&mut headers, name, value);
                Reply::Full {
                    status,
                    headers,
                    body,
                }
            }
            other => other,
        }
    }

    pub fn delayed(self, by: Duration) -> Self {
        Reply::Delay(by, Box::new(self))
    }
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub route: Route,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HashMap<String, String>,
    pub at: Instant,
}

struct Shared {
    scripts: HashMap<Route, VecDeque<Reply>>,
    defaults: HashMap<Route, Reply>,
    seen: Vec<Seen>,
}

pub struct FakeLit {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    shared: Arc<Mutex<Shared>>,
}

impl FakeLit {
    /// Starts with every route answering its normal recorded response.
    pub async fn start() -> Self {
        let defaults = HashMap::from([
            (
                Route::S2Search,
                Reply::json_fixture(200, "paper_search_response.json"),
            ),
            (
                Route::S2Paper,
                Reply::json_fixture(200, "paper_details_response.json"),
            ),
            (
                Route::OpenAlexWorks,
                Reply::json_fixture(200, "works_list_response.json"),
            ),
            (Route::Arxiv, Reply::atom_fixture(200, "query_response_full.xml")),
            (Route::Unknown, Reply::http_fixture("error_404_html.http")),
        ]);
        let shared = Arc::new(Mutex::new(Shared {
            scripts: HashMap::new(),
            defaults,
            seen: Vec::new(),
        }));
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let url = fake_http::serve(app).await;
        FakeLit { url, shared }
    }

    pub fn s2_url(&self) -> String {
        format!("{}/s2/graph/v1", self.url)
    }

    pub fn openalex_url(&self) -> String {
        format!("{}/openalex", self.url)
    }

    pub fn arxiv_url(&self) -> String {
        format!("{}/arxiv/api", self.url)
    }

    /// Replies served before the route's default, in order.
    pub fn script(&self, route: Route, replies: Vec<Reply>) {
        self.shared
            .lock()
            .unwrap()
            .scripts
            .entry(route)
            .or_default()
            .extend(replies);
    }

    /// What the route answers once its script is used up.
    pub fn set_default(&self, route: Route, reply: Reply) {
        self.shared.lock().unwrap().defaults.insert(route, reply);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().unwrap().seen.clone()
    }

    pub fn hits(&self, route: Route) -> usize {
        self.shared
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.route == route)
            .count()
    }

    pub fn total_hits(&self) -> usize {
        self.shared.lock().unwrap().seen.len()
    }
}

fn route_of(path: &str) -> Route {
    if path == "/s2/graph/v1/paper/search" {
        Route::S2Search
    } else if path.starts_with("/s2/graph/v1/paper/") {
        Route::S2Paper
    } else if path == "/openalex/works" {
        Route::OpenAlexWorks
    } else if path == "/arxiv/api/query" {
        Route::Arxiv
    } else {
        Route::Unknown
    }
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(State(shared): State<Arc<Mutex<Shared>>>, uri: Uri, headers: HeaderMap) -> Response {
    let route = route_of(uri.path());
    let reply = {
        let mut s = shared.lock().unwrap();
        s.seen.push(Seen {
            route,
            path: uri.path().to_owned(),
            query: parse_query(uri.query()),
            headers: fake_http::header_map(&headers),
            at: Instant::now(),
        });
        let scripted = s.scripts.get_mut(&route).and_then(VecDeque::pop_front);
        scripted.unwrap_or_else(|| s.defaults[&route].clone())
    };
    let mut reply = reply;
    while let Reply::Delay(by, inner) = reply {
        tokio::time::sleep(by).await;
        reply = *inner;
    }
    let Reply::Full {
        status,
        headers,
        body,
    } = reply
    else {
        unreachable!("delays are unwrapped above")
    };
    fake_http::full_response(status, headers, body)
}
