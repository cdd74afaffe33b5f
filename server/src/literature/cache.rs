//! On-disk cache of search answers and BibTeX, with an in-memory index in front.
//!
//! One JSON file per entry (`search/<hash>.json`, `bibtex/<hash>.json`), written
//! atomically; each carries its full key, engine and date. An unreadable, corrupt or
//! mismatched file is a miss (the next answer replaces it), never an error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Engine, Paper};
use crate::fsutil::write_atomic;

const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SearchFile {
    version: u32,
    key: String,
    engine: Engine,
    query: String,
    limit: usize,
    fetched_at: String,
    papers: Vec<Paper>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BibtexFile {
    version: u32,
    key: String,
    engine: Engine,
    paper_id: String,
    fetched_at: String,
    bibtex: String,
}

#[derive(Debug, Clone)]
struct Hit<T> {
    value: T,
    fetched_at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct Cache {
    dir: Option<PathBuf>,
    /// None keeps entries forever.
    ttl: Option<chrono::Duration>,
    searches: Mutex<HashMap<String, Hit<Vec<Paper>>>>,
    bibtex: Mutex<HashMap<String, Hit<String>>>,
}

/// Lower-case, single-spaced: "Adaptive  LR" and "adaptive lr" are one query.
pub fn normalise_query(q: &str) -> String {
    q.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// FNV-1a, 64 bit: stable across Rust versions, unlike `DefaultHasher`.
fn fnv(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn search_key(engine: Engine, query: &str, limit: usize) -> String {
    format!("{engine}\u{1f}{}\u{1f}{limit}", normalise_query(query))
}

fn bibtex_key(engine: Engine, id: &str) -> String {
    format!("{engine}\u{1f}{id}")
}

impl Cache {
    /// `dir` None: memory only (the folder could not be created, for instance).
    pub fn new(dir: Option<PathBuf>, ttl_days: u64) -> Self {
        let dir = dir.filter(|d| {
            let ok = std::fs::create_dir_all(d.join("search")).is_ok()
                && std::fs::create_dir_all(d.join("bibtex")).is_ok();
            if !ok {
                tracing::warn!(
                    "literature cache folder {} is not writable; caching in memory only",
                    d.display()
                );
            }
            ok
        });
        Self {
            dir,
            ttl: (ttl_days > 0).then(|| chrono::Duration::days(ttl_days as i64)),
            searches: Mutex::new(HashMap::new()),
            bibtex: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn fresh(&self, at: DateTime<Utc>) -> bool {
        self.ttl.is_none_or(|ttl| Utc::now() - at < ttl)
    }

    fn path(&self, kind: &str, key: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(kind).join(format!("{}.json", fnv(key))))
    }

    pub fn get_search(&self, engine: Engine, query: &str, limit: usize) -> Option<Vec<Paper>> {
        let key = search_key(engine, query, limit);
        if let Some(hit) = self.searches.lock().unwrap().get(&key) {
            if self.fresh(hit.fetched_at) {
                return Some(hit.value.clone());
            }
        }
        let file: SearchFile = read_json(&self.path("search", &key)?)?;
        let at = parse_date(&file.fetched_at)?;
        if file.version != VERSION || file.key != key || !self.fresh(at) {
            return None;
        }
        let papers = file.papers;
        self.searches.lock().unwrap().insert(
            key,
            Hit {
                value: papers.clone(),
                fetched_at: at,
            },
        );
        Some(papers)
    }

    pub fn put_search(&self, engine: Engine, query: &str, limit: usize, papers: &[Paper]) {
        let key = search_key(engine, query, limit);
        let now = Utc::now();
        if let Some(path) = self.path("search", &key) {
            let file = SearchFile {
                version: VERSION,
                key: key.clone(),
                engine,
                query: normalise_query(query),
                limit,
                fetched_at: now.to_rfc3339(),
                papers: papers.to_vec(),
            };
            write_json(&path, &file);
        }
        self.searches.lock().unwrap().insert(
            key,
            Hit {
                value: papers.to_vec(),
                fetched_at: now,
            },
        );
    }

    pub fn get_bibtex(&self, engine: Engine, id: &str) -> Option<String> {
        let key = bibtex_key(engine, id);
        if let Some(hit) = self.bibtex.lock().unwrap().get(&key) {
            if self.fresh(hit.fetched_at) {
                return Some(hit.value.clone());
            }
        }
        let file: BibtexFile = read_json(&self.path("bibtex", &key)?)?;
        let at = parse_date(&file.fetched_at)?;
        if file.version != VERSION || file.key != key || !self.fresh(at) {
            return None;
        }
        self.bibtex.lock().unwrap().insert(
            key,
            Hit {
                value: file.bibtex.clone(),
                fetched_at: at,
            },
        );
        Some(file.bibtex)
    }

    pub fn put_bibtex(&self, engine: Engine, id: &str, bibtex: &str) {
        let key = bibtex_key(engine, id);
        let now = Utc::now();
        if let Some(path) = self.path("bibtex", &key) {
            let file = BibtexFile {
                version: VERSION,
                key: key.clone(),
                engine,
                paper_id: id.to_owned(),
                fetched_at: now.to_rfc3339(),
                bibtex: bibtex.to_owned(),
            };
            write_json(&path, &file);
        }
        self.bibtex.lock().unwrap().insert(
            key,
            Hit {
                value: bibtex.to_owned(),
                fetched_at: now,
            },
        );
    }
}

fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!("ignoring corrupt cache file {}: {e}", path.display());
            None
        }
    }
}

/// A cache that cannot be written only costs a future request.
fn write_json<T: Serialize>(path: &Path, value: &T) {
    let result = serde_json::to_vec_pretty(value)
        .map_err(std::io::Error::other)
        .and_then(|bytes| write_atomic(path, &bytes));
    if let Err(e) = result {
        tracing::warn!("cannot write literature cache {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper() -> Paper {
        Paper::new(Engine::Arxiv, "1", "T")
    }

    #[test]
    fn roundtrip_via_disk_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(Some(dir.path().to_owned()), 0);
        c.put_search(Engine::Arxiv, "Foo  Bar", 5, &[paper()]);
        let c2 = Cache::new(Some(dir.path().to_owned()), 0);
        assert_eq!(c2.get_search(Engine::Arxiv, "foo bar", 5).unwrap().len(), 1);
        assert!(c2.get_search(Engine::Arxiv, "foo bar", 6).is_none());
        let file = c
            .path("search", &search_key(Engine::Arxiv, "foo bar", 5))
            .unwrap();
        std::fs::write(&file, "{ not json").unwrap();
        let c3 = Cache::new(Some(dir.path().to_owned()), 0);
        assert!(c3.get_search(Engine::Arxiv, "foo bar", 5).is_none());
    }
}
