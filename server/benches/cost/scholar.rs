//! A fake Semantic Scholar for the cost bench: `/paper/search` answers every query with
//! the requested number of papers (10 by default, like v1's searches), each with an
//! abstract of a real abstract's length and a BibTeX entry whose key is new per query,
//! so every citation round has papers left to cite.

use std::collections::HashMap;

use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::json;

const ABSTRACT: &str = "We study how the capacity of small neural networks affects what they learn \
from limited data. Across a range of synthetic and standard benchmarks we vary one architectural \
factor at a time and measure accuracy, calibration and training cost, controlling for the \
optimiser, the schedule and the random seed. The results show consistent trends that depend on \
the amount of data and on the difficulty of the task, and they point to simple rules of thumb for \
practitioners. We discuss the limits of these findings and what a larger study would need to \
establish them more firmly, and we release our code and the measurements behind every figure.";

async fn search(Query(q): Query<HashMap<String, String>>) -> Response {
    let query = q.get("query").cloned().unwrap_or_default();
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10).min(10);
    let tag: String = query
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    let data: Vec<_> = (0..limit)
        .map(|i| {
            let key = format!("paper{tag}{i}");
            let title = format!("Capacity and Generalisation in Small Networks, Study {i} for {query}");
            json!({
                "paperId": format!("{tag}{i:02}"),
                "title": title,
                "abstract": ABSTRACT,
                "venue": "NeurIPS",
                "year": 2020 + (i as i32 % 5),
                "citationCount": 100 + i,
                "authors": [{"authorId": "1", "name": "Ada Lovelace"}, {"authorId": "2", "name": "Alan Turing"}],
                "citationStyles": {"bibtex": format!(
                    "@inproceedings{{{key},\n author = {{Ada Lovelace and Alan Turing}},\n title = {{{title}}},\n booktitle = {{NeurIPS}},\n year = {{{}}}\n}}\n",
                    2020 + (i % 5)
                )},
                "url": format!("https://www.semanticscholar.org/paper/{tag}{i:02}")
            })
        })
        .collect();
    let body = json!({"total": limit, "offset": 0, "data": data});
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.to_string().into())
        .unwrap()
}

/// Serves it; returns the base URL (`…/graph/v1`).
pub async fn serve() -> String {
    let app = Router::new().route("/graph/v1/paper/search", get(search));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    format!("http://{addr}/graph/v1")
}
