//! Run output on its way to a watcher (an editor): what arrives between two looks is
//! kept bounded per run and stream — its beginning and its end, with the middle counted
//! and dropped — so a run printing megabytes a second costs the watcher one short
//! message per look, never a backlog.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::runner::Stream;

/// Output of one run's stream, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    /// The folder the run ran in.
    pub folder: PathBuf,
    pub run: u32,
    pub stream: Stream,
    /// At most the feed's `max_bytes` (plus the skip marker), on char boundaries.
    pub text: String,
    /// Bytes dropped from the middle of this chunk.
    pub skipped: u64,
}

#[derive(Default)]
struct Pending {
    head: String,
    tail: String,
    skipped: u64,
}

/// What arrived for each run and stream since the last [`OutputFeed::drain`].
pub struct OutputFeed {
    max_bytes: usize,
    pending: Mutex<BTreeMap<(PathBuf, u32, Stream), Pending>>,
    ready: tokio::sync::Notify,
}

/// The marker put where output was dropped.
pub fn skip_marker(bytes: u64) -> String {
    format!("\n[… {bytes} bytes skipped …]\n")
}

/// The largest index <= `i` on a char boundary of `s`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl OutputFeed {
    /// `max_bytes`: the most text one chunk carries (half from the beginning, half from the end).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes: max_bytes.max(2),
            pending: Mutex::new(BTreeMap::new()),
            ready: tokio::sync::Notify::new(),
        }
    }

    /// Adds output; cheap and bounded whatever the rate.
    pub fn push(&self, folder: &std::path::Path, run: u32, stream: Stream, text: &str) {
        if text.is_empty() {
            return;
        }
        let half = self.max_bytes / 2;
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let p = pending.entry((folder.to_path_buf(), run, stream)).or_default();
            let mut text = text;
            if p.head.len() < half && p.skipped == 0 && p.tail.is_empty() {
                let take = floor_boundary(text, half - p.head.len());
                p.head.push_str(&text[..take]);
                text = &text[take..];
            }
            if !text.is_empty() {
                p.tail.push_str(text);
                if p.tail.len() > half {
                    // Keep the last `half` bytes (from a char boundary).
                    let mut cut = p.tail.len() - half;
                    while !p.tail.is_char_boundary(cut) {
                        cut += 1;
                    }
                    p.skipped += cut as u64;
                    p.tail.drain(..cut);
                }
            }
        }
        self.ready.notify_one();
    }

    /// Everything pending, one chunk per run and stream, and forgets it.
    pub fn drain(&self) -> Vec<OutputChunk> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        pending
            .into_iter()
            .map(|((folder, run, stream), p)| {
                let mut text = p.head;
                if p.skipped > 0 {
                    text.push_str(&skip_marker(p.skipped));
                }
                text.push_str(&p.tail);
                OutputChunk {
                    folder,
                    run,
                    stream,
                    text,
                    skipped: p.skipped,
                }
            })
            .collect()
    }

    /// Waits until something was pushed since the last wait.
    pub async fn ready(&self) {
        self.ready.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn small_output_passes_whole() {
        let f = OutputFeed::new(16);
        f.push(Path::new("/p"), 1, Stream::Stdout, "abc");
        f.push(Path::new("/p"), 1, Stream::Stdout, "def");
        f.push(Path::new("/p"), 1, Stream::Stderr, "err");
        let got = f.drain();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].text, "abcdef");
        assert_eq!(got[1].text, "err");
        assert!(f.drain().is_empty(), "drained");
    }

    #[test]
    fn a_flood_keeps_beginning_and_end() {
        let f = OutputFeed::new(8);
        let line = "0123456789";
        for _ in 0..1000 {
            f.push(Path::new("/p"), 2, Stream::Stdout, line);
        }
        let got = f.drain();
        assert_eq!(got.len(), 1);
        let c = &got[0];
        assert_eq!(c.skipped, 10_000 - 8);
        assert_eq!(c.text, format!("0123{}6789", skip_marker(9992)));
    }

    #[test]
    fn cuts_fall_on_char_boundaries() {
        let f = OutputFeed::new(6);
        f.push(Path::new("/p"), 1, Stream::Stdout, "ééééé");
        f.push(Path::new("/p"), 1, Stream::Stdout, "ààààà");
        let c = &f.drain()[0];
        assert!(c.text.starts_with("é\n[…"), "{}", c.text);
        assert!(c.text.ends_with("à"), "{}", c.text);
        assert_eq!(
            c.skipped + c.text.len() as u64 - skip_marker(c.skipped).len() as u64,
            20
        );
    }
}
