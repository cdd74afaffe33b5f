//! `aisci contain` (hidden): what a Slurm job script execs on the node; see
//! [`crate::runner::contain`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::runner::contain::{self, Containment};

#[derive(clap::Args)]
pub struct Args {
    /// Processes and threads the run may have at once.
    #[arg(long)]
    max_processes: Option<u32>,
    /// Memory the run may use, in bytes (default: three quarters of this node's memory).
    #[arg(long)]
    max_memory: Option<u64>,
    /// Where to record the limit when the run is killed for going over its memory.
    #[arg(long)]
    oom_file: Option<PathBuf>,
    /// The experiment and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub async fn command(a: Args) -> ExitCode {
    let c = Containment {
        max_processes: a.max_processes,
        max_memory: a.max_memory,
        oom_file: a.oom_file,
        kill_grace: crate::runner::local::KILL_GRACE.max(Duration::from_secs(1)),
    };
    let (program, args) = a.command.split_first().expect("clap requires a command");
    match contain::run(&c, program, args).await {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("aisci contain: cannot run {program}: {e}");
            // As a shell does for a command it cannot run.
            ExitCode::from(127)
        }
    }
}
