//! Building the paper: `latexmk -pdf` (or pdflatex → bibtex → pdflatex → pdflatex when
//! latexmk is absent) into `.aisci/build/` beside the `.tex`, under one time limit, through
//! a [`Runner`] (own process group, killed on timeout or cancel). Errors pdflatex recovers
//! from in nonstop mode do not stop the passes, and the PDF they give is the build's, as in
//! v1. The PDF is copied next to the `.tex` only when a build gives one, so a build that
//! stops (a fatal error, the time limit) never replaces the last good PDF. The final
//! pass's log, bibtex's `.blg` and chktex become [`LogProblem`]s.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::log::{self, LogProblem};
use crate::runner::{ExitKind, RunSpec, Runner};

/// Where builds go, relative to the `.tex`'s folder.
pub const BUILD_DIR: &str = ".aisci/build";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Latexmk,
    /// pdflatex, bibtex when there is a bibliography, then pdflatex twice.
    Pdflatex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStatus {
    /// A PDF came of all the passes; `problems` may still hold errors pdflatex recovered
    /// from (v1 ships such a PDF too).
    Built,
    /// No PDF, or TeX stopped at a fatal error.
    Failed,
    TimedOut,
    Cancelled,
}

#[derive(Debug)]
pub struct BuildOutcome {
    pub status: BuildStatus,
    pub tool: Tool,
    /// The PDF next to the `.tex`: the new one when built, else the previous one if any.
    pub pdf: Option<PathBuf>,
    /// True when `pdf` is from this build.
    pub pdf_is_new: bool,
    pub problems: Vec<LogProblem>,
    pub log: PathBuf,
    pub elapsed: Duration,
    /// The project's latexmk rc file that was not read (the folder is not trusted).
    pub ignored_rc: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "no LaTeX build tool: neither latexmk nor pdflatex is on PATH (install TeX Live, e.g. \
         `apt-get install texlive-latex-extra latexmk`; `aisci doctor` lists what is missing)"
    )]
    MissingTool,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Run(#[from] crate::runner::RunError),
}

/// The first of `names` found on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file() && is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

pub fn available_tool() -> Option<Tool> {
    if find_on_path("latexmk").is_some() {
        Some(Tool::Latexmk)
    } else if find_on_path("pdflatex").is_some() {
        Some(Tool::Pdflatex)
    } else {
        None
    }
}

/// Builds `tex` within `timeout`. Errors only when nothing could be run; a failed build is
/// an outcome with its problems.
pub async fn build(
    tex: &Path,
    timeout: Duration,
    runner: &dyn Runner,
    project_rc: bool,
    cancel: &CancellationToken,
) -> Result<BuildOutcome, BuildError> {
    let tool = available_tool().ok_or(BuildError::MissingTool)?;
    let started = Instant::now();
    let dir = tex.parent().unwrap_or(Path::new(".")).to_path_buf();
    let name = tex
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = tex
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = dir.join(BUILD_DIR);
    std::fs::create_dir_all(&out)?;
    let built_pdf = out.join(format!("{stem}.pdf"));
    // A PDF left by an earlier build must not pass for this one's.
    let _ = std::fs::remove_file(&built_pdf);
    let out_arg = out.to_string_lossy().into_owned();

    let pdflatex = (
        "pdflatex".to_owned(),
        vec![
            "-interaction=nonstopmode".into(),
            "-file-line-error".into(),
            format!("-output-directory={out_arg}"),
            name.clone(),
        ],
    );
    let bibtex = ("bibtex".to_owned(), vec![format!("{out_arg}/{stem}")]);
    let steps: Vec<Step> = match tool {
        Tool::Latexmk => vec![(
            "latexmk".into(),
            [
                // A latexmkrc is Perl that latexmk runs: outside a trusted folder none is
                // read (aisci's own options follow).
                (!project_rc).then(|| "-norc".to_string()),
                Some("-pdf".into()),
                // Go on past bibtex errors (a repeated entry, say), as pdflatex itself does
                // in nonstopmode: the problems are reported, the PDF still gets built.
                Some("-f".into()),
                Some("-interaction=nonstopmode".into()),
                Some("-file-line-error".into()),
                Some(format!("-outdir={out_arg}")),
                Some(name.clone()),
            ]
            .into_iter()
            .flatten()
            .collect(),
        )],
        Tool::Pdflatex => vec![
            pdflatex.clone(),
            bibtex.clone(),
            pdflatex.clone(),
            pdflatex.clone(),
        ],
    };

    let log_path = out.join(format!("{stem}.log"));
    let read_log = || {
        std::fs::read(&log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let ctx = StepContext {
        dir: &dir,
        out: &out,
        stem: &stem,
        started,
        timeout,
        runner,
        cancel,
    };
    let mut status = ctx.run(&steps, 0).await?;
    // Even with -f, latexmk runs no more passes once pdflatex has reported an error, so
    // citations and references stay unresolved where pdflatex recovered from the error
    // (a stray brace in math, an unknown macro). Finish as v1's chain does: bibtex on the
    // last .aux, then pdflatex until the references settle.
    let recovered = |log: &str| {
        !log::stopped_fatally(log)
            && log::parse_latex_log(log)
                .iter()
                .any(|p| p.severity == crate::project::Severity::Error)
    };
    if status == BuildStatus::Built && tool == Tool::Latexmk && recovered(&read_log()) {
        let finish = [bibtex, pdflatex.clone(), pdflatex.clone()];
        status = ctx.run(&finish, steps.len()).await?;
    }
    if status == BuildStatus::Built && log::asks_rerun(&read_log()) {
        status = ctx.run(std::slice::from_ref(&pdflatex), steps.len() + 3).await?;
    }

    // The .log is the last pass's alone: warnings of undefined citations from an early
    // pass that later ones resolved are not in it.
    let final_log = read_log();
    let mut problems = log::parse_latex_log(&final_log);
    if let Ok(blg) = std::fs::read(out.join(format!("{stem}.blg"))) {
        problems.extend(log::parse_bibtex_log(&String::from_utf8_lossy(&blg)));
    }
    if let Ok(src) = std::fs::read_to_string(tex) {
        map_filecontents(&mut problems, &src, tex, &out);
    }
    // Errors pdflatex recovered from still give the paper's PDF, as v1's chain does; the
    // errors are reported with it. A fatal stop leaves at most the pages before it.
    if status == BuildStatus::Built && log::stopped_fatally(&final_log) {
        status = BuildStatus::Failed;
    }
    let target = dir.join(format!("{stem}.pdf"));
    let pdf_is_new = status == BuildStatus::Built && built_pdf.is_file();
    if pdf_is_new {
        crate::fsutil::write_atomic(&target, &std::fs::read(&built_pdf)?)?;
    } else if status == BuildStatus::Built {
        status = BuildStatus::Failed;
    }
    Ok(BuildOutcome {
        status,
        tool,
        pdf: target.is_file().then_some(target),
        pdf_is_new,
        problems,
        log: log_path,
        elapsed: started.elapsed(),
        ignored_rc: (!project_rc && tool == Tool::Latexmk)
            .then(|| ["latexmkrc", ".latexmkrc"].map(|n| dir.join(n)))
            .and_then(|rc| rc.into_iter().find(|p| p.exists())),
    })
}

/// A program and its arguments.
type Step = (String, Vec<String>);

/// What every step of one build shares.
struct StepContext<'a> {
    dir: &'a Path,
    out: &'a Path,
    stem: &'a str,
    started: Instant,
    timeout: Duration,
    runner: &'a dyn Runner,
    cancel: &'a CancellationToken,
}

impl StepContext<'_> {
    /// Runs `steps` in order within what is left of the time limit; `first` numbers their
    /// output files after the steps already run.
    async fn run(&self, steps: &[Step], first: usize) -> Result<BuildStatus, BuildError> {
        let out_arg = self.out.to_string_lossy();
        for (i, (program, args)) in steps.iter().enumerate() {
            let left = self.timeout.saturating_sub(self.started.elapsed());
            if left.is_zero() {
                return Ok(BuildStatus::TimedOut);
            }
            // bibtex without \bibdata in the .aux has nothing to do, and says so as an error.
            if program == "bibtex" && !aux_has_bibdata(&self.out.join(format!("{}.aux", self.stem))) {
                continue;
            }
            let n = first + i;
            let spec = RunSpec {
                program: program.clone(),
                args: args.clone(),
                cwd: self.dir.to_path_buf(),
                timeout: left,
                stdout_path: self.out.join(format!("step{n}.stdout.txt")),
                stderr_path: self.out.join(format!("step{n}.stderr.txt")),
                env: vec![
                    // Unwrapped log lines; inputs found beside the .tex and in the build folder.
                    ("max_print_line".into(), "100000".into()),
                    ("BIBINPUTS".into(), format!("{}:{out_arg}:", self.dir.display())),
                    ("TEXINPUTS".into(), format!("{}:", self.dir.display())),
                ],
                watch_dir: None,
            };
            match self.runner.run(&spec, self.cancel).await?.exit {
                ExitKind::TimedOut => return Ok(BuildStatus::TimedOut),
                ExitKind::Cancelled => return Ok(BuildStatus::Cancelled),
                // Errors make the tools exit non-zero but they go on: keep building so
                // references settle, and judge by the log and the PDF afterwards.
                _ => {}
            }
        }
        Ok(BuildStatus::Built)
    }
}

/// Problems reported in a file that the `.tex` writes itself from a `filecontents` block
/// (v1's `references.bib`) are moved to that block's lines in the `.tex`. LaTeX writes a
/// few comment lines of its own above the block's text: the offset is found by locating
/// the block's first line in the written file.
fn map_filecontents(problems: &mut [LogProblem], src: &str, tex: &Path, build_dir: &Path) {
    let facts = super::syntax::facts(&super::syntax::parse(src), src);
    for p in problems.iter_mut() {
        let Some(name) = p
            .file
            .as_ref()
            .and_then(|f| f.file_name())
            .map(|n| n.to_string_lossy().into_owned())
        else {
            continue;
        };
        let Some(block) = facts.filecontents.iter().find(|b| b.name == name) else {
            continue;
        };
        let first_line = src[block.body.clone()].lines().next().unwrap_or("");
        let written = std::fs::read_to_string(build_dir.join(&name)).unwrap_or_default();
        let header = written.lines().position(|l| l == first_line).unwrap_or(0) as u32;
        let first = src[..block.body.start].matches('\n').count() as u32 + 1;
        p.file = Some(tex.to_path_buf());
        p.line = p.line.map(|l| (first + l).saturating_sub(header + 1).max(first));
    }
}

fn aux_has_bibdata(aux: &Path) -> bool {
    std::fs::read(aux)
        .map(|b| String::from_utf8_lossy(&b).contains("\\bibdata"))
        .unwrap_or(false)
}

/// chktex's warnings for `tex` (none when chktex is not installed). Bounded by `timeout`.
pub async fn chktex(tex: &Path, timeout: Duration) -> Option<Vec<LogProblem>> {
    let program = find_on_path("chktex")?;
    let dir = tex.parent().unwrap_or(Path::new("."));
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("-q")
        .arg("-f")
        .arg(log::CHKTEX_FORMAT)
        .arg(tex.file_name()?)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(timeout, cmd.output()).await.ok()?.ok()?;
    Some(log::parse_chktex(&String::from_utf8_lossy(&out.stdout), tex))
}
