//! `aisci writeup`: the paper of an idea folder, or one section of it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{job, open_idea_folder, report, Terminal};
use crate::agent::edit_sink::DiskSink;
use crate::stages;
use crate::stages::host::StageHost;
use crate::stages::writeup::agent::WriteScope;
use crate::stages::writeup::{self as writeup_stage, WriteupRequest};

#[derive(clap::Args)]
pub struct Args {
    /// The idea folder (holds notes.txt, experiment.py, run_<i>/ and latex/).
    #[arg(long)]
    idea_folder: PathBuf,
    /// Write only this section, then check and build: its position among the
    /// \section headings (1 = the first), or its title when only one section has it.
    #[arg(long)]
    section: Option<String>,
    /// Print the expected tokens and cost, and stop (no model call).
    #[arg(long)]
    estimate: bool,
}

pub async fn command(a: Args, model: Option<String>) -> ExitCode {
    if a.estimate {
        use crate::stages::estimate::Stage;
        return report(super::print_estimate(
            &a.idea_folder,
            model,
            true,
            &[Stage::Writeup],
            1,
            |_| {},
        ));
    }
    report(writeup(&a.idea_folder, a.section, model).await)
}

/// `aisci writeup --idea-folder DIR [--section N|TITLE]`.
async fn writeup(dir: &Path, section: Option<String>, model: Option<String>) -> anyhow::Result<()> {
    let flag_model = model.is_some();
    let (root, idea, mut loaded) = open_idea_folder(dir, model)?;
    let tex = writeup_stage::paper_tex(&root);
    if !tex.is_file() {
        anyhow::bail!("{} has no paper: expected {}", root.display(), tex.display());
    }
    if flag_model {
        // --model names the model for this command, over writeup.model too.
        loaded.settings.writeup.model = None;
    }
    let s = &loaded.settings;
    let llm = crate::stages::services::llm_for_role(s, &root, crate::stages::services::ModelRole::Writer)?;
    let lit = match stages::services::literature_for(s) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("aisci: warning: no literature search, so no citations: {e}");
            None
        }
    };
    let scope = match section {
        Some(t) => WriteScope::Section(section_ref(&t)),
        None => WriteScope::Paper,
    };
    eprintln!(
        "aisci: writing {} with {} via {}",
        tex.display(),
        llm.provider().model(),
        llm.provider().name()
    );
    let job = job(writeup_stage::TITLE, &root)?;
    let cancel = job.cancel.clone();
    let terminal = Terminal::default();
    let host = StageHost::new(&DiskSink, &terminal, &cancel);
    let req = WriteupRequest {
        root: &root,
        idea: &idea,
        scope: &scope,
        settings: s,
        llm: &llm,
        literature: lit.as_deref(),
    };
    let outcome = writeup_stage::run(req, &host).await?;
    println!("{}", outcome.summary());
    if !outcome.report.succeeded() {
        anyhow::bail!("the paper is not finished (see above)");
    }
    Ok(())
}

/// `--section 3` is the third `\section`; anything else is a title.
fn section_ref(arg: &str) -> crate::stages::writeup::agent::SectionRef {
    use crate::stages::writeup::agent::SectionRef;
    match arg.trim().parse::<usize>() {
        Ok(n) if n >= 1 => SectionRef::At {
            level: 2,
            index: n - 1,
        },
        _ => SectionRef::Title(arg.to_string()),
    }
}
