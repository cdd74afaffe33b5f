//! `aisci apply`: a saved model reply's SEARCH/REPLACE blocks applied to a folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::report;

#[derive(clap::Args)]
pub struct Args {
    /// The saved reply ('-' reads standard input).
    reply: PathBuf,
    /// Show the unified diff and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The folder whose files are edited.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

pub fn command(a: Args) -> ExitCode {
    report(apply(&a.reply, a.dry_run, &a.dir))
}

fn apply(reply: &Path, dry_run: bool, dir: &Path) -> anyhow::Result<()> {
    let text = if reply == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(reply).map_err(|e| anyhow::anyhow!("{}: {e}", reply.display()))?
    };
    match crate::agent::edits::apply_reply_to_folder(dir, &text, None, dry_run) {
        Ok(report) if report.files.is_empty() => anyhow::bail!(
            "the reply has no SEARCH/REPLACE edit blocks (a file path line, then <<<<<<< SEARCH, \
             the text to find, =======, its replacement, >>>>>>> REPLACE); nothing was changed"
        ),
        Ok(report) => {
            if dry_run {
                print!("{}", report.diff);
            }
            let verb = if dry_run { "would change" } else { "changed" };
            let files: Vec<&str> = report.files.iter().map(|f| f.path.as_str()).collect();
            eprintln!("aisci: {verb} {} file(s): {}", files.len(), files.join(", "));
            Ok(())
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("aisci: {e}");
            }
            anyhow::bail!("{} block(s) failed; no file was changed", errors.len())
        }
    }
}
