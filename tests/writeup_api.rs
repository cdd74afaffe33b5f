//! The writing stage through its library API, as the language server drives it: edits go
//! to an editor-like sink (buffers in memory, versioned; the disk is written only when a
//! build needs the file), the user typing between a read and a write is survived, and
//! cancelling ends the stage with the file intact. Scripted model; real TeX Live.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aisci::agent::edit_sink::{EditSink, SinkError, Snapshot};
use aisci::config::WriteupSettings;
use aisci::jobs::NoProgress;
use aisci::latex::build::BuildStatus;
use aisci::llm::{ChatRequest, ChatResponse, Llm, LlmError, Provider, Usage};
use aisci::runner::LocalRunner;
use aisci::stages::writeup::agent::{write_paper, WriteScope, WriteupCtx};
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::support::fs::copy_tiny_mlp;

/// Replies in order (each request's messages are kept, joined); `None` waits for cancellation (a model that does not answer).
struct Model {
    replies: Mutex<VecDeque<Option<String>>>,
    prompts: Mutex<Vec<String>>,
}

#[async_trait]
impl Provider for Model {
    fn name(&self) -> &str {
        "scripted"
    }
    fn model(&self) -> &str {
        "scripted-model"
    }
    async fn chat(&self, req: &ChatRequest, cancel: &CancellationToken) -> Result<ChatResponse, LlmError> {
        self.prompts.lock().unwrap().push(
            req.messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        );
        let next = self.replies.lock().unwrap().pop_front();
        let text = match next {
            Some(Some(t)) => t,
            Some(None) => {
                cancel.cancelled().await;
                return Err(LlmError::Cancelled);
            }
            None => return Err(LlmError::Replay("no more scripted replies".into())),
        };
        Ok(ChatResponse {
            text,
            usage: Usage::default(),
            model: "scripted-model".into(),
            finish_reason: Some("stop".into()),
        })
    }
}

/// Open editor buffers: reads come from memory (the disk seeds a buffer once), writes
/// bump the version. With `typist`, the first write finds that the user typed a line
/// at the top since the stage read the buffer.
#[derive(Default)]
struct Buffers {
    open: Mutex<HashMap<PathBuf, (String, i32)>>,
    writes: Mutex<u32>,
    typist: Mutex<bool>,
}

#[async_trait]
impl EditSink for Buffers {
    async fn read(&self, path: &Path) -> Result<Snapshot, SinkError> {
        let mut open = self.open.lock().unwrap();
        let (text, version) = open
            .entry(path.to_path_buf())
            .or_insert_with(|| (std::fs::read_to_string(path).unwrap_or_default(), 1))
            .clone();
        Ok(Snapshot {
            text,
            version: Some(version),
        })
    }
    async fn write(&self, path: &Path, base: &Snapshot, after: &str) -> Result<(), SinkError> {
        let mut open = self.open.lock().unwrap();
        let entry = open.get_mut(path).expect("read before written");
        if std::mem::take(&mut *self.typist.lock().unwrap()) {
            entry.0 = format!("% typed by the user\n{}", entry.0);
            entry.1 += 1;
        }
        if Some(entry.1) != base.version {
            return Err(SinkError::Changed(path.display().to_string()));
        }
        *entry = (after.to_string(), entry.1 + 1);
        *self.writes.lock().unwrap() += 1;
        Ok(())
    }
}

fn idea_folder(dir: &Path) -> PathBuf {
    let root = dir.join("idea");
    copy_tiny_mlp(&root);
    // No figures exist here: the Results edit below drops the template's figure.
    root
}

const RESULTS: &str = "latex/template.tex\n<<<<<<< SEARCH\nRESULTS HERE\n=======\nThe baseline reaches a validation accuracy of 0.95 on blobs.\n>>>>>>> REPLACE\n\n\
latex/template.tex\n<<<<<<< SEARCH\n\\begin{figure}[h]\n\\centering\n\\includegraphics[width=0.48\\textwidth]{val_acc.png}\n\\includegraphics[width=0.48\\textwidth]{val_loss.png}\n\\caption{Validation accuracy (left) and loss (right) per dataset; bars are means over three seeds with standard errors.}\n\\label{fig:results}\n\\end{figure}\n=======\n>>>>>>> REPLACE\n";

fn ctx<'a>(
    llm: &'a Llm,
    sink: &'a dyn EditSink,
    runner: &'a LocalRunner,
    root: &'a Path,
    tex: &'a Path,
    settings: &'a WriteupSettings,
    cancel: &'a CancellationToken,
) -> WriteupCtx<'a> {
    WriteupCtx {
        llm,
        sink,
        runner,
        search: None,
        project_rc: false,
        root,
        idea: "idea",
        tex,
        settings,
        temperature: Some(0.0),
        max_tokens: 4096,
        progress: &NoProgress,
        cancel,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_go_to_the_editor_buffer_and_survive_the_user_typing() {
    let dir = tempfile::tempdir().unwrap();
    let root = idea_folder(dir.path());
    let tex = root.join("latex/template.tex");
    let model = Arc::new(Model {
        replies: Mutex::new(VecDeque::from([Some(RESULTS.to_string())])),
        prompts: Mutex::default(),
    });
    let llm = Llm::new(model.clone());
    let sink = Buffers {
        typist: Mutex::new(true),
        ..Default::default()
    };
    let runner = LocalRunner::new(64 << 20);
    let settings = WriteupSettings {
        fix_rounds: 0,
        build_timeout_secs: 60,
        ..Default::default()
    };
    let cancel = CancellationToken::new();
    let c = ctx(&llm, &sink, &runner, &root, &tex, &settings, &cancel);
    let report = write_paper(&c, &WriteScope::Section("Results".into()))
        .await
        .unwrap();
    assert_eq!(report.sections_written, ["Results"]);
    assert!(report.succeeded(), "{report:?}");
    let buffer = sink.read(&tex).await.unwrap().text;
    // The model's edit was re-applied on top of what the user typed.
    assert!(buffer.starts_with("% typed by the user\n"));
    assert!(buffer.contains("The baseline reaches a validation accuracy of 0.95 on blobs."));
    assert_eq!(*sink.writes.lock().unwrap(), 1);
    // The build needed the file: the buffer's text was saved, and built.
    assert_eq!(std::fs::read_to_string(&tex).unwrap(), buffer);
    let b = report.build.unwrap();
    assert_eq!(b.status, BuildStatus::Built);
    assert!(b.pdf_is_new);
    // The model saw the file, and was told there are no hardware facts to state.
    let first = model.prompts.lock().unwrap()[0].clone();
    assert!(first.contains("RESULTS HERE"));
    assert!(first.contains("(none recorded: do not mention hardware or software versions)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_ends_the_stage_with_the_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let root = idea_folder(dir.path());
    let tex = root.join("latex/template.tex");
    let original = std::fs::read_to_string(&tex).unwrap();
    let model = Arc::new(Model {
        replies: Mutex::new(VecDeque::from([None])),
        prompts: Mutex::default(),
    });
    let llm = Llm::new(model.clone());
    let sink = Buffers::default();
    let runner = LocalRunner::new(64 << 20);
    let settings = WriteupSettings::default();
    let cancel = CancellationToken::new();
    let c = ctx(&llm, &sink, &runner, &root, &tex, &settings, &cancel);
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        canceller.cancel();
    });
    let report = tokio::time::timeout(Duration::from_secs(10), write_paper(&c, &WriteScope::Paper))
        .await
        .expect("cancelled promptly")
        .unwrap();
    assert!(report.cancelled);
    assert!(!report.succeeded());
    assert!(report.sections_written.is_empty() && report.build.is_none());
    assert_eq!(*sink.writes.lock().unwrap(), 0);
    assert_eq!(std::fs::read_to_string(&tex).unwrap(), original);
}

#[tokio::test]
async fn an_unknown_section_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = idea_folder(dir.path());
    let tex = root.join("latex/template.tex");
    let model = Arc::new(Model {
        replies: Mutex::default(),
        prompts: Mutex::default(),
    });
    let llm = Llm::new(model.clone());
    let sink = Buffers::default();
    let runner = LocalRunner::new(64 << 20);
    let settings = WriteupSettings::default();
    let cancel = CancellationToken::new();
    let c = ctx(&llm, &sink, &runner, &root, &tex, &settings, &cancel);
    let err = write_paper(&c, &WriteScope::Section("Appendix".into()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("no section titled \"Appendix\" in the paper (sections: Introduction, Related Work,"),
        "{err}"
    );
    assert!(model.prompts.lock().unwrap().is_empty());
}
