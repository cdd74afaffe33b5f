//! A run's stdout and stderr files: the experiment writes them itself (so they outlive
//! aisci), aisci follows them for live output and keeps their last bytes in memory, and
//! after the run an oversized file is cut to its beginning, a marker and its end.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{RunEvent, RunEvents, Stream};

/// Bytes of each stream kept in memory for the outcome's tails.
pub const TAIL_BYTES: usize = 64 * 1024;
/// More new output than this at one look is not all shown live: its last [`TAIL_BYTES`]
/// are, after a note (the file still has all of it).
const SKIP_OVER: u64 = 8 << 20;
const CHUNK: usize = 256 * 1024;

/// Follows one log file from a position on.
pub struct Follower {
    stream: Stream,
    file: File,
    pos: u64,
    tail: VecDeque<u8>,
    echo: bool,
}

impl Follower {
    /// Follows `file` (opened for reading) from `from`; the in-memory tail starts with the
    /// [`TAIL_BYTES`] before it.
    pub fn new(stream: Stream, file: File, from: u64, echo: bool) -> Self {
        let mut tail = VecDeque::with_capacity(TAIL_BYTES);
        let start = from.saturating_sub(TAIL_BYTES as u64);
        let mut buf = vec![0u8; (from - start) as usize];
        if let Ok(n) = read_at_most(&file, &mut buf, start) {
            tail.extend(&buf[..n]);
        }
        Self {
            stream,
            file,
            pos: from,
            tail,
            echo,
        }
    }

    /// Opens `path` without following a link (a re-attached run's file) and follows it
    /// from its current end.
    pub fn reopen(stream: Stream, path: &Path, echo: bool) -> std::io::Result<Self> {
        let file = open_nofollow(path)?;
        let end = file.metadata()?.len();
        Ok(Self::new(stream, file, end, echo))
    }

    /// Reads what was added since the last look, reporting it.
    pub fn poll(&mut self, events: &dyn RunEvents) {
        let Ok(len) = self.file.metadata().map(|m| m.len()) else {
            return;
        };
        if len <= self.pos {
            // Nothing new, or truncated by the experiment: follow from its new end.
            self.pos = len;
            return;
        }
        if len - self.pos > SKIP_OVER {
            let skipped = len - TAIL_BYTES as u64 - self.pos;
            self.pos = len - TAIL_BYTES as u64;
            self.show(
                events,
                format!("\n[aisci: {skipped} bytes of output not shown live; the log file has them]\n")
                    .as_bytes(),
            );
        }
        let mut buf = vec![0u8; CHUNK];
        while self.pos < len {
            let want = ((len - self.pos) as usize).min(CHUNK);
            let n = match read_at_most(&self.file, &mut buf[..want], self.pos) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            self.pos += n as u64;
            push_tail(&mut self.tail, &buf[..n]);
            self.show(events, &buf[..n]);
        }
    }

    fn show(&mut self, events: &dyn RunEvents, bytes: &[u8]) {
        if self.echo {
            // A closed terminal must not stop the run: stop echoing instead.
            let ok = match self.stream {
                Stream::Stdout => std::io::stdout()
                    .write_all(bytes)
                    .and_then(|_| std::io::stdout().flush()),
                Stream::Stderr => std::io::stderr().write_all(bytes),
            };
            self.echo = ok.is_ok();
        }
        events.on_event(RunEvent::Output {
            stream: self.stream,
            text: String::from_utf8_lossy(bytes).into_owned(),
        });
    }

    /// The size of the file (all the run wrote, before any cut) and the last bytes of it.
    pub fn finish(mut self, events: &dyn RunEvents) -> Captured {
        self.poll(events);
        let total = self
            .file
            .metadata()
            .map(|m| m.len())
            .unwrap_or(self.pos)
            .max(self.pos);
        Captured {
            tail: self.tail,
            total,
        }
    }
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub fn open_nofollow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32 | rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(f)
}

/// What a stream left behind in memory.
pub struct Captured {
    pub tail: VecDeque<u8>,
    pub total: u64,
}

impl Captured {
    pub fn tail_text(&self) -> String {
        let (a, b) = self.tail.as_slices();
        let mut bytes = Vec::with_capacity(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        // A full ring may start inside a UTF-8 sequence: drop the orphaned continuation bytes.
        let skip = if self.total as usize > bytes.len() {
            bytes.iter().take(3).take_while(|b| (**b & 0xC0) == 0x80).count()
        } else {
            0
        };
        String::from_utf8_lossy(&bytes[skip..]).into_owned()
    }

    /// Adds a line of aisci's own to the tail (also appended to the file by the caller).
    pub fn push_note(&mut self, note: &str) {
        push_tail(&mut self.tail, note.as_bytes());
    }
}

pub fn push_tail(tail: &mut VecDeque<u8>, chunk: &[u8]) {
    let chunk = &chunk[chunk.len().saturating_sub(TAIL_BYTES)..];
    let over = (tail.len() + chunk.len()).saturating_sub(TAIL_BYTES);
    tail.drain(..over);
    tail.extend(chunk);
}

/// Cuts the log at `path` to at most `cap` bytes plus a marker line when it is longer: the
/// first `cap - keep` bytes, the marker, the last `keep` bytes (`keep` = [`TAIL_BYTES`], at
/// most half the cap). Written to a temporary file beside it and renamed over it, so the
/// log is whole at every moment. Call it once nothing writes the file any more.
pub fn cap_file(path: &Path, cap: u64) -> std::io::Result<()> {
    let src = match open_nofollow(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let total = src.metadata()?.len();
    if total <= cap {
        return Ok(());
    }
    let keep = (TAIL_BYTES as u64).min(cap / 2);
    let head = cap - keep;
    let tmp = tmp_path(path);
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        copy_range(&src, 0, head, &mut out)?;
        let omitted = total - head - keep;
        let marker =
            format!("\n[aisci: output truncated, {omitted} bytes omitted; the last {keep} bytes follow]\n");
        out.write_all(marker.as_bytes())?;
        copy_range(&src, total - keep, keep, &mut out)?;
        out.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.aisci-cut"))
}

fn copy_range(src: &File, from: u64, len: u64, out: &mut File) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0;
    while done < len {
        let want = ((len - done) as usize).min(CHUNK);
        let n = read_at_most(src, &mut buf[..want], from + done)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        done += n as u64;
    }
    Ok(())
}

/// Appends a note of aisci's own to a log file.
pub fn append_note(path: &Path, note: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?
        .write_all(note.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_ring_is_bounded() {
        let mut t = VecDeque::new();
        push_tail(&mut t, &vec![1u8; TAIL_BYTES - 10]);
        push_tail(&mut t, &[2u8; 20]);
        assert_eq!(t.len(), TAIL_BYTES);
        assert_eq!(t.back(), Some(&2));
        push_tail(&mut t, &vec![3u8; TAIL_BYTES * 2]);
        assert!(t.iter().all(|b| *b == 3));
    }

    #[test]
    fn tail_text_skips_split_char() {
        let mut c = Captured {
            tail: VecDeque::new(),
            total: 100,
        };
        c.tail.extend("é!".as_bytes()[1..].iter());
        assert_eq!(c.tail_text(), "!");
    }

    #[test]
    fn cap_keeps_head_marker_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        let text: String = (0..1000).map(|i| format!("{i:04}\n")).collect();
        std::fs::write(&p, &text).unwrap();
        cap_file(&p, 5000).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            text,
            "under the cap: untouched"
        );
        cap_file(&p, 1000).unwrap();
        let cut = std::fs::read_to_string(&p).unwrap();
        assert!(cut.starts_with(&text[..500]));
        assert!(cut.ends_with(&text[text.len() - 500..]));
        assert!(cut.contains("\n[aisci: output truncated, 4000 bytes omitted; the last 500 bytes follow]\n"));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn follower_reports_new_bytes_and_keeps_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        std::fs::write(&p, "old\n").unwrap();
        let got = std::sync::Mutex::new(String::new());
        let events = |e: RunEvent| {
            if let RunEvent::Output { text, .. } = e {
                got.lock().unwrap().push_str(&text);
            }
        };
        let mut f = Follower::reopen(Stream::Stdout, &p, false).unwrap();
        let mut w = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        w.write_all(b"new\n").unwrap();
        f.poll(&events);
        let c = f.finish(&events);
        assert_eq!(*got.lock().unwrap(), "new\n");
        assert_eq!(c.tail_text(), "old\nnew\n");
        assert_eq!(c.total, 8);
    }
}
