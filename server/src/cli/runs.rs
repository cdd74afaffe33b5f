//! `aisci runs`: an idea folder's checkpoints (the nodes of its search tree, or its line
//! of runs): list them, restore one as experiment.py, or branch the experiment from one.

use std::path::{Path, PathBuf};

use crate::config::{self, Sources};
use crate::runs::checkpoint::{self, CheckpointId};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Every checkpoint with its score against the baseline, children under their parent
    /// (the best marked ★), then the metric and the seeds of the best.
    List {
        /// The idea folder (results/<template>/<YYYYmmdd_HHMMSS>_<Name>/).
        folder: PathBuf,
        /// Print the list as JSON (the editor's aisci.listNodes answer) instead.
        #[arg(long)]
        json: bool,
    },
    /// Write a checkpoint's code over the folder's experiment.py; the file it replaces is
    /// kept in .aisci/attempts/restored_<stamp>/.
    Restore {
        /// The idea folder.
        folder: PathBuf,
        /// node_<n> (a tree search) or run_<n> (a line of runs).
        checkpoint: String,
    },
    /// Make a checkpoint the point the next `aisci experiment --idea-folder` goes on
    /// from. A tree: the next search first improves (or fixes) that node. A line: the
    /// later runs move to .aisci/attempts/branched_<stamp>/ and experiment.py becomes
    /// the checkpoint's code.
    Branch {
        /// The idea folder.
        folder: PathBuf,
        /// node_<n> (a tree search) or run_<n> (a line of runs).
        checkpoint: String,
    },
}

pub fn command(a: Args) -> std::process::ExitCode {
    super::report(run(a))
}

fn idea_folder(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = std::fs::canonicalize(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    if !dir.join("experiment.py").is_file() {
        anyhow::bail!(
            "{} is not an idea folder (it has no experiment.py)",
            dir.display()
        );
    }
    Ok(dir)
}

fn run(a: Args) -> anyhow::Result<()> {
    match a.action {
        Action::List { folder, json } => {
            let folder = idea_folder(&folder)?;
            let loaded = config::load(&Sources::from_system(Some(&folder)));
            let c = checkpoint::list(&folder, &loaded.settings.experiment.tree)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else if c.nodes.is_empty() {
                println!("{}: no completed runs yet", folder.display());
            } else {
                print!("{}", checkpoint::render_text(&c));
            }
        }
        Action::Restore {
            folder,
            checkpoint: id,
        } => {
            let folder = idea_folder(&folder)?;
            let id = CheckpointId::parse(&id)?;
            let r = checkpoint::restore(&folder, id)?;
            match r.aside {
                Some(aside) => println!(
                    "experiment.py is {id}'s code; the replaced file is kept in {}",
                    aside.display()
                ),
                None => println!("experiment.py is {id}'s code"),
            }
        }
        Action::Branch {
            folder,
            checkpoint: id,
        } => {
            let folder = idea_folder(&folder)?;
            let b = checkpoint::branch(&folder, CheckpointId::parse(&id)?)?;
            println!("{}", b.message);
            println!("go on with: aisci experiment --idea-folder {}", folder.display());
        }
    }
    Ok(())
}
