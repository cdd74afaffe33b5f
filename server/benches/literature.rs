//! Literature benchmark (a bench binary, `cargo bench -p aisci --bench literature`):
//!
//! (a) 50 concurrent searches through the process-wide limiter against an in-process
//!     fake Semantic Scholar at a configured rate: the most requests the server saw in
//!     any 1-s window, against the limiter's bound floor(rate) + 1;
//! (b) latency of a cached query through `Literature::search`: from memory, and the
//!     first lookup of a fresh instance (read from disk).
//!
//! Rates: `AISCI_BENCH_RATES=5,10,25` (default "5,10").

// The fake and what it needs beside it, from the integration tests' support (tests/support/).
#[allow(dead_code)]
#[path = "../../tests/support/fake_http.rs"]
mod fake_http;
#[allow(dead_code)]
#[path = "../../tests/support/fake_lit.rs"]
mod fake_lit;
#[allow(dead_code)]
#[path = "../../tests/support/fs.rs"]
mod fs;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aisci::config::LiteratureSettings;
use aisci::literature::{Literature, PaperSearch};
use fake_lit::FakeLit;
use tokio_util::sync::CancellationToken;

fn settings(fake: &FakeLit, dir: &std::path::Path, rate: f64) -> LiteratureSettings {
    LiteratureSettings {
        engines: vec!["semanticscholar".into()],
        s2_url: Some(fake.s2_url()),
        s2_rate_per_sec: rate,
        s2_rate_per_sec_no_key: rate,
        max_retry_secs: 600,
        cache_dir: Some(dir.to_owned()),
        ..LiteratureSettings::default()
    }
}

fn env() -> [(&'static str, &'static str); 1] {
    [("S2_API_KEY", "bench-key")]
}

fn max_in_window(at: &[Instant], window: Duration) -> usize {
    let mut at = at.to_vec();
    at.sort();
    (0..at.len())
        .map(|i| at[i..].iter().take_while(|t| **t - at[i] < window).count())
        .max()
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn limiter_run(rate: f64) {
    let fake = FakeLit::start().await;
    let dir = tempfile::tempdir().unwrap();
    let lit = Arc::new(Literature::from_settings(&settings(&fake, dir.path(), rate), &env()).unwrap());
    let cancel = CancellationToken::new();
    let t = Instant::now();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let lit = Arc::clone(&lit);
            let cancel = cancel.clone();
            tokio::spawn(async move { lit.search(&format!("bench query {i}"), 10, &cancel).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("search");
    }
    let elapsed = t.elapsed();
    let mut at: Vec<Instant> = fake.seen().iter().map(|s| s.at).collect();
    at.sort();
    let min_gap = at.windows(2).map(|w| w[1] - w[0]).min().unwrap_or_default();
    let max = max_in_window(&at, Duration::from_secs(1));
    println!(
        "(a) rate {rate:>5.1}/s: 50 concurrent searches in {:>6.2}s; max {max} requests in any 1-s window \
         (bound floor(rate)+1 = {}); smallest gap {:.1} ms (interval {:.1} ms)",
        elapsed.as_secs_f64(),
        rate.floor() as usize + 1,
        min_gap.as_secs_f64() * 1e3,
        1e3 / rate,
    );
    assert!(max <= rate.floor() as usize + 1);
}

async fn cache_run() {
    let fake = FakeLit::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = settings(&fake, dir.path(), 1000.0);
    let cancel = CancellationToken::new();
    let queries: Vec<String> = (0..200).map(|i| format!("cached query number {i}")).collect();
    {
        let lit = Literature::from_settings(&s, &env()).unwrap();
        for q in &queries {
            lit.search(q, 10, &cancel).await.unwrap();
        }
    }
    let hits_before = fake.total_hits();

    // Fresh instance: each first lookup reads its file from disk.
    let lit = Literature::from_settings(&s, &env()).unwrap();
    let mut disk = Vec::new();
    for q in &queries {
        let t = Instant::now();
        let r = lit.search(q, 10, &cancel).await.unwrap();
        disk.push(t.elapsed());
        assert!(r.from_cache);
    }
    // Then from memory.
    let mut mem = Vec::new();
    for i in 0..20_000 {
        let q = &queries[i % queries.len()];
        let t = Instant::now();
        let r = lit.search(q, 10, &cancel).await.unwrap();
        mem.push(t.elapsed());
        assert!(r.from_cache);
    }
    assert_eq!(
        fake.total_hits(),
        hits_before,
        "cache hits never reach the server"
    );
    disk.sort();
    mem.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "(b) cached query (3 papers with abstracts), memory: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {} lookups",
        us(percentile(&mem, 0.5)),
        us(percentile(&mem, 0.99)),
        us(*mem.last().unwrap()),
        mem.len()
    );
    println!(
        "(b) cached query, first lookup in a new instance (disk): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {} lookups",
        us(percentile(&disk, 0.5)),
        us(percentile(&disk, 0.99)),
        us(*disk.last().unwrap()),
        disk.len()
    );
    assert!(percentile(&mem, 0.99) < Duration::from_millis(1));
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let rates: Vec<f64> = std::env::var("AISCI_BENCH_RATES")
        .unwrap_or_else(|_| "5,10".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for rate in rates {
            limiter_run(rate).await;
        }
        cache_run().await;
    });
}
