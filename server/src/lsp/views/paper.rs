//! The paper in the editor: static-check diagnostics on `.tex`/`.bib` as the user types
//! (debounced), quick fixes for the obvious ones, the LaTeX build on save and on command
//! (serialised per document, a newer request cancels the older build), its log and
//! chktex as diagnostics, hovers on `\cite` keys and key completion inside `\cite{`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tower_lsp::lsp_types::*;

use crate::latex::build::{self, BuildStatus};
use crate::latex::log::LogProblem;
use crate::latex::{paper, syntax, TexProblem};
use crate::lsp::backend::Backend;
use crate::lsp::commands::{BUILD_PAPER, WRITE_PAPER};
use crate::lsp::convert::{self, uri_of};
use crate::lsp::progress::LspProgress;
use crate::lsp::trust;
use crate::lsp::views::command_action;
use crate::project::{Problem, Severity};

/// Pause after the last keystroke before the paper is checked again.
const PAPER_DEBOUNCE: Duration = Duration::from_millis(100);
const CHKTEX_TIMEOUT: Duration = Duration::from_secs(20);

pub fn is_tex(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "tex")
}

fn is_bib(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "bib")
}

/// After an edit of `path`: re-check it (a `.tex`), or the open papers beside it (a `.bib`).
pub fn after_edit(b: &Backend, path: &Path) {
    if is_tex(path) {
        schedule(b, path.to_path_buf());
    } else if is_bib(path) {
        let dir = path.parent().map(Path::to_path_buf);
        let open: Vec<PathBuf> = b
            .state
            .docs
            .lock()
            .unwrap()
            .keys()
            .filter(|p| is_tex(p) && p.parent().map(Path::to_path_buf) == dir)
            .cloned()
            .collect();
        for tex in open {
            schedule(b, tex);
        }
    }
}

fn schedule(b: &Backend, tex: PathBuf) {
    let deadline = tokio::time::Instant::now() + PAPER_DEBOUNCE;
    if b.state
        .paper
        .pending
        .lock()
        .unwrap()
        .insert(tex.clone(), deadline)
        .is_some()
    {
        return;
    }
    let b = b.clone();
    tokio::spawn(async move {
        let mut until = deadline;
        loop {
            tokio::time::sleep_until(until).await;
            let mut pending = b.state.paper.pending.lock().unwrap();
            match pending.get(&tex) {
                Some(d) if *d > until => until = *d,
                _ => {
                    pending.remove(&tex);
                    break;
                }
            }
        }
        publish(&b, &tex).await;
    });
}

/// The static checks of `tex` as it reads now: an open document's tree is kept current
/// incrementally, and the facts of sections that did not change are reused. The result
/// is kept with the document's version, for code actions asked before the next edit.
fn static_problems(b: &Backend, tex: &Path) -> Option<(String, Arc<Vec<TexProblem>>)> {
    let open = {
        let mut docs = b.state.docs.lock().unwrap();
        docs.get_mut(tex).and_then(|d| {
            let version = d.doc.version();
            d.doc
                .latex_tree()
                .cloned()
                .map(|t| (d.doc.text(), t, Some(version)))
        })
    };
    let (src, tree, version) = match open {
        Some(o) => o,
        None => {
            let src = b.state.text_of(tex).ok()?;
            let tree = syntax::parse(&src);
            (src, tree, None)
        }
    };
    let state = b.state.clone();
    let read = move |p: &Path| state.text_of(p).ok();
    let problems = {
        let mut caches = b.state.paper.facts.lock().unwrap();
        let cache = caches.entry(tex.to_path_buf()).or_default();
        Arc::new(paper::check_paper_cached(tex, &src, &tree, cache, &read).1)
    };
    if version.is_some() {
        b.state
            .paper
            .problems
            .lock()
            .unwrap()
            .insert(tex.to_path_buf(), (version, problems.clone()));
    }
    Some((src, problems))
}

/// The last check's problems of `tex`, whatever version they are of (None before any).
pub fn kept_problems(b: &Backend, tex: &Path) -> Option<Arc<Vec<TexProblem>>> {
    b.state
        .paper
        .problems
        .lock()
        .unwrap()
        .get(tex)
        .map(|(_, p)| p.clone())
}

/// The checks' problems of an open `tex` at its current version: those of the last check
/// when nothing was typed since, else a new check.
fn current_problems(b: &Backend, tex: &Path) -> Option<Arc<Vec<TexProblem>>> {
    let version = b.state.docs.lock().unwrap().get(tex).map(|d| d.doc.version());
    if let Some(v) = version {
        let kept = b.state.paper.problems.lock().unwrap().get(tex).cloned();
        if let Some((Some(kv), problems)) = kept {
            if kv == v {
                return Some(problems);
            }
        }
    }
    static_problems(b, tex).map(|(_, p)| p)
}

/// Checks `tex` and publishes its diagnostics (and its `.bib` files'), with the last
/// build's problems, clearing files that became clean.
pub async fn publish(b: &Backend, tex: &Path) {
    let b2 = b.clone();
    let tex_owned = tex.to_path_buf();
    let Ok(Some((_, problems))) = tokio::task::spawn_blocking(move || static_problems(&b2, &tex_owned)).await
    else {
        return;
    };
    let mut by_file: HashMap<PathBuf, Vec<Problem>> = HashMap::new();
    by_file.entry(tex.to_path_buf()).or_default();
    for p in problems.iter() {
        by_file.entry(p.path.clone()).or_default().push(Problem {
            path: p.path.clone(),
            span: Some((p.span.start, p.span.end)),
            severity: p.severity,
            message: p.message.clone(),
            code: Some(p.code),
        });
    }
    let built = b
        .state
        .paper
        .build_problems
        .lock()
        .unwrap()
        .get(tex)
        .cloned()
        .unwrap_or_default();
    let dir = tex.parent().unwrap_or(Path::new("."));
    for lp in built {
        let file = match &lp.file {
            Some(f) => crate::runner::local::absolutize(dir, f),
            None => tex.to_path_buf(),
        };
        let Ok(text) = b.state.text_of(&file) else {
            continue;
        };
        by_file.entry(file.clone()).or_default().push(Problem {
            path: file,
            span: line_span(&text, &lp),
            severity: lp.severity,
            message: format!("{}: {}", lp.source, lp.message),
            code: None,
        });
    }
    let before = b
        .state
        .paper
        .published
        .lock()
        .unwrap()
        .insert(tex.to_path_buf(), by_file.keys().cloned().collect())
        .unwrap_or_default();
    let enc = b.state.encoding();
    for (path, problems) in &by_file {
        let Some(uri) = uri_of(path) else { continue };
        let rope = ropey::Rope::from_str(&b.state.text_of(path).unwrap_or_default());
        let mut diags: Vec<Diagnostic> = problems
            .iter()
            .map(|p| convert::diagnostic(p, &rope, enc))
            .collect();
        if path == tex {
            // Placing a review's comments parses and normalises the whole paper: off the
            // async workers.
            let (b2, tex2, text) = (b.clone(), tex.to_path_buf(), rope.to_string());
            let review = tokio::task::spawn_blocking(move || {
                crate::lsp::views::review::diagnostics(&b2, &tex2, &text)
            });
            diags.extend(review.await.unwrap_or_default());
        }
        b.client.publish_diagnostics(uri, diags, None).await;
    }
    for gone in before.iter().filter(|p| !by_file.contains_key(*p)) {
        if let Some(uri) = uri_of(gone) {
            b.client.publish_diagnostics(uri, Vec::new(), None).await;
        }
    }
}

/// The byte span a log problem points at: its column and length when given, else the
/// whole line (without its newline); None when it has no line.
fn line_span(text: &str, p: &LogProblem) -> Option<(usize, usize)> {
    let line = p.line? as usize;
    let start = if line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)?
    };
    let end = text[start..].find('\n').map(|i| start + i).unwrap_or(text.len());
    match (p.column, p.length) {
        (Some(c), Some(l)) => {
            let a = (start + c.saturating_sub(1) as usize).min(end);
            let z = (a + l.max(1) as usize).min(end).max(a);
            let a = floor_boundary(text, a);
            Some((a, ceil_boundary(text, z)))
        }
        _ => Some((start, end)),
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Quick fixes for the checks' problems that touch `range` of `path` (a `.tex` or a `.bib`
/// of an open paper), plus "Build the paper" on a `.tex`.
pub fn code_actions(b: &Backend, path: &Path, range: Range) -> Vec<CodeActionOrCommand> {
    let mut out = Vec::new();
    let texes: Vec<PathBuf> = if is_tex(path) {
        vec![path.to_path_buf()]
    } else if is_bib(path) {
        b.state
            .docs
            .lock()
            .unwrap()
            .keys()
            .filter(|p| is_tex(p) && p.parent() == path.parent())
            .cloned()
            .collect()
    } else {
        return out;
    };
    let view = if is_tex(path) {
        b.state.tex_view(path)
    } else {
        b.state.text_of(path).ok().map(|text| {
            let rope = ropey::Rope::from_str(&text);
            Arc::new(crate::lsp::tex_view::TexView::plain(text, rope))
        })
    };
    let Some(view) = view else {
        return out;
    };
    let (text, rope) = (&view.text, &view.rope);
    let enc = b.state.encoding();
    // Whole lines: editors ask with the cursor's position, fixes belong to its line.
    let (lo, hi) = (view.byte_at(range.start, enc), view.byte_at(range.end, enc));
    let lo = text[..lo].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let hi = text[hi..].find('\n').map(|i| hi + i).unwrap_or(text.len());
    for tex in &texes {
        let Some(problems) = current_problems(b, tex) else {
            continue;
        };
        for p in problems.iter().filter(|p| p.path == path) {
            let Some(fix) = &p.fix else { continue };
            if p.span.end < lo || p.span.start > hi {
                continue;
            }
            let Some(uri) = uri_of(path) else { continue };
            let edit = TextEdit {
                range: convert::byte_range(rope, Some((fix.span.start, fix.span.end)), enc),
                new_text: fix.replacement.clone(),
            };
            let diagnostic = convert::diagnostic(
                &Problem {
                    path: p.path.clone(),
                    span: Some((p.span.start, p.span.end)),
                    severity: p.severity,
                    message: p.message.clone(),
                    code: Some(p.code),
                },
                rope,
                enc,
            );
            out.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: fix.title.clone(),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![diagnostic]),
                edit: Some(WorkspaceEdit {
                    changes: Some(HashMap::from([(uri, vec![edit])])),
                    ..Default::default()
                }),
                is_preferred: Some(true),
                ..Default::default()
            }));
        }
    }
    if is_tex(path) && crate::stages::writeup::paper_tex(&paper::runs_folder(path)) == path {
        // The section the cursor is in (a \section, with its subsections).
        // By position, so a second section with the same title is not mistaken for it.
        let section = view
            .facts
            .sections
            .iter()
            .filter(|s| s.level == 2)
            .enumerate()
            .filter(|(_, s)| s.body.start <= lo && lo <= s.body.end.max(s.heading.end))
            .last()
            .map(|(index, s)| (index, s.title.clone()));
        if let Some((index, title)) = section {
            let at = json!({
                "tex": path,
                "section": { "level": 2, "index": index, "title": title },
            });
            let title = format!("Write this section: {title}");
            out.push(command_action(
                title,
                "source.aisci.writeSection",
                "Write this section",
                WRITE_PAPER,
                at,
            ));
        }
        let title = format!(
            "Write the paper: every section, citations, fixes ({})",
            crate::stages::estimate::short(&crate::lsp::views::cost_of(
                b,
                &paper::runs_folder(path),
                crate::stages::estimate::Stage::Writeup
            ))
        );
        out.push(command_action(
            title,
            "source.aisci.writePaper",
            "Write the paper",
            WRITE_PAPER,
            json!({ "tex": path }),
        ));
    }
    if is_tex(path) {
        out.extend(crate::lsp::views::review::code_actions(b, path, &view, lo, hi));
        let title = "Build the paper (latexmk)";
        out.push(command_action(
            title,
            "source.aisci.buildPaper",
            "Build the paper",
            BUILD_PAPER,
            json!({ "tex": path }),
        ));
    }
    out
}

/// Builds `tex` in the background as an editor job (progress with cancel): a running
/// build of the same file is cancelled first and waited for, so builds of one document
/// never overlap and the newest text wins.
pub fn spawn_build(b: &Backend, tex: PathBuf) {
    let lock = {
        let mut builds = b.state.paper.builds.lock().unwrap();
        let entry = builds.entry(tex.clone()).or_default();
        if let Some(id) = entry.1.take() {
            b.state.jobs.cancel(id);
        }
        entry.0.clone()
    };
    let b = b.clone();
    tokio::spawn(async move {
        let _turn = lock.lock().await;
        let guard = match b
            .state
            .jobs
            .start("Build paper", &format!("build:{}", tex.display()))
        {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!("{e}");
                return;
            }
        };
        if let Some(entry) = b.state.paper.builds.lock().unwrap().get_mut(&tex) {
            entry.1 = Some(guard.info.id);
        }
        let id = guard.info.id;
        run_build(&b, &tex, guard).await;
        if let Some(entry) = b.state.paper.builds.lock().unwrap().get_mut(&tex) {
            if entry.1 == Some(id) {
                entry.1 = None;
            }
        }
    });
}

async fn run_build(b: &Backend, tex: &Path, guard: crate::jobs::JobGuard) {
    let (job, cancel) = (guard.info.id, guard.cancel.clone());
    let settings = b.state.settings_for(Some(&paper::runs_folder(tex))).settings;
    let timeout = Duration::from_secs(settings.latex.build_timeout_secs.max(1));
    let runner = crate::stages::services::runner_for(&settings);
    let name = file_name(tex);
    let progress = LspProgress::begin(
        &b.client,
        b.state.caps().work_done_progress,
        job,
        &format!("Building {name}"),
    )
    .await;
    let outcome = build::build(tex, timeout, &runner, settings.latex.project_rc, &cancel).await;
    // The job is over when the build is: out of the registry before the client hears of it.
    drop(guard);
    match outcome {
        Err(e @ build::BuildError::MissingTool) => {
            progress.finish("no LaTeX tools".into()).await;
            if !b.state.paper.tool_missing_said.swap(true, Ordering::SeqCst) {
                b.client
                    .show_message(MessageType::ERROR, format!("aisci: {e}"))
                    .await;
            }
        }
        Err(e) => {
            progress.finish(format!("failed: {e}")).await;
            b.client
                .show_message(MessageType::ERROR, format!("aisci: building {name}: {e}"))
                .await;
        }
        Ok(out) => {
            if let Some(rc) = &out.ignored_rc {
                if b.state.paper.rc_said.lock().unwrap().insert(rc.clone()) {
                    b.client
                        .show_message(
                            MessageType::WARNING,
                            format!(
                                "aisci: {} was not read: it is code latexmk would run, and this folder is not \
                                 in trusted_folders; the paper is built with aisci's own options",
                                rc.display()
                            ),
                        )
                        .await;
                }
                trust::offer(b, &paper::runs_folder(tex), vec![rc.display().to_string()]);
            }
            let mut problems = out.problems;
            if out.status != BuildStatus::Cancelled && settings.latex.chktex {
                if let Some(chk) = build::chktex(tex, CHKTEX_TIMEOUT).await {
                    problems.extend(chk);
                }
            }
            let errors = problems.iter().filter(|p| p.severity == Severity::Error).count();
            b.state
                .paper
                .build_problems
                .lock()
                .unwrap()
                .insert(tex.to_path_buf(), problems);
            let secs = out.elapsed.as_secs_f64();
            let (kind, message) = match out.status {
                BuildStatus::Built => (
                    MessageType::INFO,
                    format!(
                        "aisci: built {} in {secs:.1} s{}",
                        out.pdf.as_deref().map(file_name).unwrap_or_default(),
                        // Errors pdflatex recovered from: the PDF exists, but they are real.
                        match errors {
                            0 => String::new(),
                            n => format!(" with {n} LaTeX error(s) TeX recovered from"),
                        }
                    ),
                ),
                BuildStatus::Failed => (
                    MessageType::WARNING,
                    format!(
                        "aisci: {name} did not build ({errors} error(s)); {}",
                        match &out.pdf {
                            Some(p) => format!("the previous {} is kept", file_name(p)),
                            None => "no PDF yet".into(),
                        }
                    ),
                ),
                BuildStatus::TimedOut => (
                    MessageType::WARNING,
                    format!("aisci: building {name} was stopped after {} s", timeout.as_secs()),
                ),
                BuildStatus::Cancelled => (MessageType::INFO, format!("aisci: build of {name} cancelled")),
            };
            progress.finish(message.clone()).await;
            if out.status != BuildStatus::Cancelled {
                b.client.show_message(kind, message).await;
                if let (BuildStatus::Built, Some(pdf)) = (out.status, &out.pdf) {
                    b.client
                        .send_notification::<PdfBuilt>(PdfBuiltParams {
                            tex: tex.to_path_buf(),
                            pdf: pdf.clone(),
                        })
                        .await;
                }
            }
            publish(b, tex).await;
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `aisci/pdfBuilt`: a build of `tex` produced `pdf` (for clients that open or refresh a viewer).
pub enum PdfBuilt {}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct PdfBuiltParams {
    pub tex: PathBuf,
    pub pdf: PathBuf,
}

impl notification::Notification for PdfBuilt {
    type Params = PdfBuiltParams;
    const METHOD: &'static str = "aisci/pdfBuilt";
}

/// The paper's kept view and the byte offset of `pos` in it.
fn view_at(b: &Backend, path: &Path, pos: Position) -> Option<(Arc<crate::lsp::tex_view::TexView>, usize)> {
    let view = b.state.tex_view(path)?;
    let at = view.byte_at(pos, b.state.encoding());
    Some((view, at))
}

/// The review's scores, for a hover on `\title`.
pub fn review_hover(b: &Backend, path: &Path, pos: Position) -> Option<Hover> {
    let (view, byte) = view_at(b, path, pos)?;
    // Off the title, no review file is read.
    let title = view.facts.title.clone()?;
    if !(title.start <= byte && byte <= title.end) {
        return None;
    }
    crate::lsp::views::review::hover(path, &view.text, byte)
}

/// The entry behind the `\cite` key under the cursor, else the source of the number there.
pub fn hover(b: &Backend, path: &Path, pos: Position) -> Option<Hover> {
    if !is_tex(path) {
        return None;
    }
    let (view, at) = view_at(b, path, pos)?;
    let Some((key, span)) = paper::citation_at(&view.facts, at) else {
        return number_hover(b, path, &view, at);
    };
    let state = b.state.clone();
    let read = move |p: &Path| state.text_of(p).ok();
    let items = paper::bib_items(path, &view.text, &view.facts, &read);
    let value = match items.iter().find(|i| i.key == key) {
        Some(item) => paper::cite_info(item).markdown(),
        None => format!("`{key}` is not in the bibliography"),
    };
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value,
        }),
        range: Some(convert::byte_range(
            &view.rope,
            Some((span.start, span.end)),
            b.state.encoding(),
        )),
    })
}

/// Where a claimed number comes from: its run, metric, dataset and computation.
fn number_hover(b: &Backend, tex: &Path, view: &crate::lsp::tex_view::TexView, at: usize) -> Option<Hover> {
    let claimed = view.claims();
    // Most positions hold no number: answered before any run data is looked at.
    let i = claimed.partition_point(|c| c.span.start <= at).checked_sub(1)?;
    if at > claimed[i].span.end {
        return None;
    }
    let runs = crate::integrity::RunData::load_cached(&paper::runs_folder(tex));
    let e = view.explain(&runs, at)?;
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: e.markdown,
        }),
        range: Some(convert::byte_range(
            &view.rope,
            Some((e.span.start, e.span.end)),
            b.state.encoding(),
        )),
    })
}

/// Go to definition on a claimed number: the `final_info.json` entry (or the line of
/// `experiment.py`) it comes from.
pub fn definition(b: &Backend, path: &Path, pos: Position) -> Option<Location> {
    if !is_tex(path) {
        return None;
    }
    let (view, at) = view_at(b, path, pos)?;
    let runs = crate::integrity::RunData::load_cached(&paper::runs_folder(path));
    let (file, offset) = view.explain(&runs, at)?.target?;
    let text = b.state.text_of(&file).ok()?;
    let rope = ropey::Rope::from_str(&text);
    let range = convert::byte_range(&rope, Some((offset, offset)), b.state.encoding());
    Some(Location {
        uri: Url::from_file_path(&file).ok()?,
        range,
    })
}

/// Citation keys, inside the braces of a `\cite`-like command.
pub fn completion(b: &Backend, path: &Path, pos: Position) -> Option<CompletionResponse> {
    if !is_tex(path) {
        return None;
    }
    let (view, at) = view_at(b, path, pos)?;
    let typed = paper::cite_key_being_typed(&view.text, at)?;
    let state = b.state.clone();
    let read = move |p: &Path| state.text_of(p).ok();
    let range = convert::byte_range(&view.rope, Some((typed.start, typed.end)), b.state.encoding());
    let mut seen = HashSet::new();
    let items = paper::bib_items(path, &view.text, &view.facts, &read)
        .into_iter()
        .filter(|i| seen.insert(i.key.clone()))
        .map(|i| {
            let info = paper::cite_info(&i);
            let detail = match (&info.title, &info.year) {
                (Some(t), Some(y)) => format!("{t} ({y})"),
                (Some(t), None) => t.clone(),
                _ => i.kind.clone(),
            };
            CompletionItem {
                label: i.key.clone(),
                kind: Some(CompletionItemKind::REFERENCE),
                detail: Some(detail),
                // Typing words of the title or an author finds the key too.
                filter_text: Some(format!(
                    "{} {} {}",
                    i.key,
                    info.title.as_deref().unwrap_or(""),
                    info.authors.as_deref().unwrap_or("")
                )),
                documentation: Some(Documentation::MarkupContent(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: info.markdown(),
                })),
                text_edit: Some(CompletionTextEdit::Edit(TextEdit {
                    range,
                    new_text: i.key.clone(),
                })),
                ..Default::default()
            }
        })
        .collect();
    Some(CompletionResponse::List(CompletionList {
        is_incomplete: false,
        items,
    }))
}
