//! Every `aisci.*` command the server executes: its name, its argument as a typed
//! struct, and the one way a command reports failure (a JSON-RPC error: bad arguments
//! are `InvalidParams`, a command that cannot start is `InvalidRequest`).

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use tower_lsp::jsonrpc::{Error as RpcError, ErrorCode};
use tower_lsp::lsp_types::Url;

pub const GENERATE_IDEAS: &str = "aisci.generateIdeas";
pub const CANCEL: &str = "aisci.cancel";
pub const SHOW_IDEA: &str = "aisci.showIdea";
pub const CHECK_NOVELTY: &str = "aisci.checkNovelty";
pub const IMPLEMENT_IDEA: &str = "aisci.implementIdea";
pub const RUN_EXPERIMENTS: &str = "aisci.runExperiments";
pub const RUN_BASELINE: &str = "aisci.runBaseline";
pub const OPEN_RUN: &str = "aisci.openRun";
pub const LAUNCH_RUN: &str = "aisci.launchRun";
pub const LIST_RUNS: &str = "aisci.listRuns";
pub const LIST_JOBS: &str = "aisci.listJobs";
pub const BUILD_PAPER: &str = "aisci.buildPaper";
pub const WRITE_PAPER: &str = "aisci.writePaper";
pub const REVIEW_PAPER: &str = "aisci.reviewPaper";
pub const REVISE_COMMENT: &str = "aisci.reviseFromReview";
pub const REVISE_ALL: &str = "aisci.reviseAll";
pub const LIST_NODES: &str = "aisci.listNodes";
pub const RESTORE_CHECKPOINT: &str = "aisci.restoreCheckpoint";
pub const BRANCH_FROM: &str = "aisci.branchFrom";
pub const RESOLVE_EDIT: &str = "aisci.resolveEdit";
pub const APPLY_REPLY: &str = "aisci.applyReply";
pub const PENDING_EDITS: &str = "aisci.pendingEdits";

/// What `initialize` advertises.
pub const COMMANDS: &[&str] = &[
    LIST_RUNS,
    GENERATE_IDEAS,
    CANCEL,
    SHOW_IDEA,
    CHECK_NOVELTY,
    IMPLEMENT_IDEA,
    RUN_EXPERIMENTS,
    RUN_BASELINE,
    OPEN_RUN,
    LAUNCH_RUN,
    BUILD_PAPER,
    WRITE_PAPER,
    REVIEW_PAPER,
    REVISE_COMMENT,
    REVISE_ALL,
    LIST_JOBS,
    LIST_NODES,
    RESTORE_CHECKPOINT,
    BRANCH_FROM,
    RESOLVE_EDIT,
    PENDING_EDITS,
    APPLY_REPLY,
];

/// A command with its argument read.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    GenerateIdeas {
        template: PathBuf,
    },
    CheckNovelty(NoveltyArgs),
    ShowIdea(ShowIdeaArgs),
    ImplementIdea(ImplementArgs),
    RunExperiments(FolderArgs),
    RunBaseline {
        template: PathBuf,
    },
    LaunchRun(FolderArgs),
    OpenRun(PathArgs),
    ListRuns(ListRunsArgs),
    ListJobs,
    /// These jobs, or every job when `None` (no argument).
    Cancel(Option<Vec<u64>>),
    BuildPaper(TexArgs),
    WritePaper(WriteArgs),
    ReviewPaper(TexArgs),
    ReviseFromReview(ReviseArgs),
    ReviseAll(TexArgs),
    /// An idea folder's checkpoints (search tree nodes, or its line of runs).
    ListNodes(FolderArgs),
    RestoreCheckpoint(CheckpointArgs),
    BranchFrom(CheckpointArgs),
    /// The user's decision on an edit waiting for review: the hunks kept.
    ResolveEdit(ResolveArgs),
    PendingEdits,
    /// A model reply's SEARCH/REPLACE blocks applied to its project, all or none.
    ApplyReply(FileArgs),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NoveltyArgs {
    pub template: PathBuf,
    /// Only these ideas (by Name); `None`: every unchecked one.
    pub ideas: Option<Vec<String>>,
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ShowIdeaArgs {
    pub file: PathBuf,
    pub index: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ImplementArgs {
    pub template: PathBuf,
    pub idea: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FolderArgs {
    pub folder: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FileArgs {
    pub file: PathBuf,
}

/// An edit waiting for review and the hunks to keep (`[]`: reject it all).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ResolveArgs {
    pub id: u64,
    pub accept: Vec<usize>,
}

/// A checkpoint of an idea folder: `node_<n>` or `run_<n>`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CheckpointArgs {
    pub folder: PathBuf,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PathArgs {
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListRunsArgs {
    /// One folder; `None`: every workspace folder.
    pub folder: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TexArgs {
    pub tex: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WriteArgs {
    pub tex: PathBuf,
    /// The section to write; `None`: the whole paper.
    #[serde(default)]
    pub section: Option<SectionArg>,
}

/// A section of the paper: by its position in the document as the editor shows it
/// (robust when two sections share a title), or by its title (must name one section).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SectionArg {
    At {
        /// 2 `\section`, 3 `\subsection`, ...
        level: u8,
        /// 0-based among the headings of that level, in document order.
        index: usize,
        /// For messages only.
        #[serde(default)]
        title: Option<String>,
    },
    Title(String),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReviseArgs {
    pub tex: PathBuf,
    /// A review comment id such as `weakness-0`.
    pub comment: String,
}

/// How a command failed, as the client is told.
#[derive(Debug)]
pub enum CommandError {
    /// The arguments are not what the command takes; says what it takes.
    BadArguments(String),
    /// The command was understood but cannot start (no template there, no API key, ...).
    CannotStart(String),
}

impl From<CommandError> for RpcError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::BadArguments(m) => RpcError::invalid_params(m),
            CommandError::CannotStart(m) => RpcError {
                code: ErrorCode::InvalidRequest,
                message: m.into(),
                data: None,
            },
        }
    }
}

impl Command {
    /// Reads `arguments` for `command`. Commands take one argument (an object), or none.
    pub fn parse(command: &str, arguments: &[Value]) -> Result<Command, CommandError> {
        let first = arguments.first().cloned().unwrap_or(Value::Null);
        let bad =
            |usage: &str, why: String| CommandError::BadArguments(format!("{command} needs {usage}: {why}"));
        Ok(match command {
            GENERATE_IDEAS => Command::GenerateIdeas {
                template: template_of(&first).ok_or_else(|| {
                    bad(
                        "the template folder: [{\"template\": \"/path/to/template\"}]",
                        "no template given".into(),
                    )
                })?,
            },
            CHECK_NOVELTY => {
                let usage =
                    "the template folder: [{\"template\": \"/path\", \"ideas\": [names], \"force\": false}]";
                let template = template_of(&first).ok_or_else(|| bad(usage, "no template given".into()))?;
                let ideas = match first.get("ideas") {
                    None | Some(Value::Null) => None,
                    Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
                        Some(a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    }
                    Some(other) => {
                        return Err(bad(
                            usage,
                            format!("\"ideas\" must be a list of idea names, not {other}"),
                        ))
                    }
                };
                let mut args = NoveltyArgs {
                    template: PathBuf::new(),
                    ideas,
                    force: first.get("force").and_then(Value::as_bool).unwrap_or(false),
                };
                args.template = template;
                Command::CheckNovelty(args)
            }
            RUN_BASELINE => Command::RunBaseline {
                template: template_of(&first)
                    .ok_or_else(|| bad("{\"template\": path}", "no template given".into()))?,
            },
            SHOW_IDEA => Command::ShowIdea(object(first, || {
                bad("{\"file\": path, \"index\": n}", String::new())
            })?),
            IMPLEMENT_IDEA => Command::ImplementIdea(object(first, || {
                bad("{\"template\": path, \"idea\": name}", String::new())
            })?),
            RUN_EXPERIMENTS => {
                Command::RunExperiments(object(first, || bad("{\"folder\": idea folder}", String::new()))?)
            }
            LAUNCH_RUN => Command::LaunchRun(object(first, || {
                bad("{\"folder\": the folder of experiment.py}", String::new())
            })?),
            OPEN_RUN => Command::OpenRun(object(first, || bad("{\"path\": file}", String::new()))?),
            LIST_RUNS => Command::ListRuns(ListRunsArgs {
                folder: first.get("folder").and_then(Value::as_str).map(PathBuf::from),
            }),
            LIST_JOBS => Command::ListJobs,
            RESOLVE_EDIT => Command::ResolveEdit(object(first, || {
                bad("{\"id\": proposal id, \"accept\": [hunk indices]}", String::new())
            })?),
            PENDING_EDITS => Command::PendingEdits,
            APPLY_REPLY => Command::ApplyReply(object(first, || {
                bad("{\"file\": the file holding the reply}", String::new())
            })?),
            LIST_NODES => {
                Command::ListNodes(object(first, || bad("{\"folder\": idea folder}", String::new()))?)
            }
            RESTORE_CHECKPOINT | BRANCH_FROM => {
                let usage = "{\"folder\": idea folder, \"id\": \"node_<n>\" or \"run_<n>\"}";
                let args: CheckpointArgs = object(first, || bad(usage, String::new()))?;
                if let Err(e) = crate::runs::checkpoint::CheckpointId::parse(&args.id) {
                    return Err(bad(usage, e.to_string()));
                }
                if command == RESTORE_CHECKPOINT {
                    Command::RestoreCheckpoint(args)
                } else {
                    Command::BranchFrom(args)
                }
            }
            CANCEL => Command::Cancel(match arguments.first() {
                None => None,
                // A number that is no job's id cancels nothing, as it always has.
                Some(Value::Number(n)) => Some(n.as_u64().into_iter().collect()),
                Some(other) => {
                    return Err(CommandError::BadArguments(format!(
                        "{command} takes a job id (a number) or nothing, not {other}"
                    )))
                }
            }),
            BUILD_PAPER => Command::BuildPaper(tex_args(first, || {
                bad("{\"tex\": path of a .tex file}", String::new())
            })?),
            WRITE_PAPER => {
                let usage = "{\"tex\": path of latex/template.tex, \"section\": optional {\"level\": 2, \"index\": n} or title}";
                let args: WriteArgs = object(first, || bad(usage, String::new()))?;
                if !is_tex(&args.tex) {
                    return Err(bad(usage, format!("{} is not a .tex file", args.tex.display())));
                }
                Command::WritePaper(args)
            }
            REVIEW_PAPER => Command::ReviewPaper(tex_args(first, || {
                bad("{\"tex\": path of latex/template.tex}", String::new())
            })?),
            REVISE_ALL => Command::ReviseAll(tex_args(first, || {
                bad("{\"tex\": path of latex/template.tex}", String::new())
            })?),
            REVISE_COMMENT => {
                let usage = "{\"tex\": path of latex/template.tex, \"comment\": id such as \"weakness-0\"}";
                let args: ReviseArgs = object(first, || bad(usage, String::new()))?;
                if !is_tex(&args.tex) {
                    return Err(bad(usage, format!("{} is not a .tex file", args.tex.display())));
                }
                Command::ReviseFromReview(args)
            }
            other => return Err(CommandError::BadArguments(format!("unknown command {other}"))),
        })
    }
}

fn typed<T: DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(v)
}

/// The object argument as `T`; `usage` makes the message when it is not one.
fn object<T: DeserializeOwned>(v: Value, usage: impl Fn() -> CommandError) -> Result<T, CommandError> {
    typed(v).map_err(|e| match usage() {
        CommandError::BadArguments(m) => CommandError::BadArguments(format!("{m}{e}")),
        other => other,
    })
}

fn tex_args(v: Value, usage: impl Fn() -> CommandError) -> Result<TexArgs, CommandError> {
    let args: TexArgs = object(v, &usage)?;
    if !is_tex(&args.tex) {
        return Err(match usage() {
            CommandError::BadArguments(m) => {
                CommandError::BadArguments(format!("{m}{} is not a .tex file", args.tex.display()))
            }
            other => other,
        });
    }
    Ok(args)
}

fn is_tex(p: &std::path::Path) -> bool {
    p.extension().is_some_and(|e| e == "tex")
}

/// The template a command argument names: a path, a file URI, or `{ "template": ... }`
/// (or `"uri"`).
fn template_of(v: &Value) -> Option<PathBuf> {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("template").or_else(|| o.get("uri"))?.as_str()?,
        _ => return None,
    };
    Some(match Url::parse(s) {
        Ok(u) if u.scheme() == "file" => u.to_file_path().ok()?,
        _ => PathBuf::from(s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_advertised_command_parses_or_names_its_arguments() {
        for name in COMMANDS {
            match Command::parse(name, &[]) {
                Ok(_) => {}
                Err(CommandError::BadArguments(m)) => assert!(m.starts_with(name), "{m}"),
                Err(e) => panic!("{name}: {e:?}"),
            }
        }
    }

    #[test]
    fn template_forms() {
        let want = PathBuf::from("/t/x");
        for arg in [
            json!("/t/x"),
            json!("file:///t/x"),
            json!({"template": "/t/x"}),
            json!({"uri": "file:///t/x"}),
        ] {
            assert_eq!(
                Command::parse(GENERATE_IDEAS, &[arg]).unwrap(),
                Command::GenerateIdeas {
                    template: want.clone()
                }
            );
        }
    }

    #[test]
    fn novelty_options_are_typed() {
        let c = Command::parse(
            CHECK_NOVELTY,
            &[json!({"template": "/t", "ideas": ["a"], "force": true})],
        )
        .unwrap();
        assert_eq!(
            c,
            Command::CheckNovelty(NoveltyArgs {
                template: "/t".into(),
                ideas: Some(vec!["a".into()]),
                force: true
            })
        );
        assert!(matches!(
            Command::parse(CHECK_NOVELTY, &[json!({"template": "/t", "ideas": "a"})]),
            Err(CommandError::BadArguments(_))
        ));
        // As before the typed commands: a force that is not true is false.
        let Command::CheckNovelty(a) =
            Command::parse(CHECK_NOVELTY, &[json!({"template": "/t", "force": "yes"})]).unwrap()
        else {
            panic!()
        };
        assert!(!a.force && a.ideas.is_none());
        // listRuns without a usable folder lists every workspace folder.
        for arg in [json!("x"), json!({"folder": 3}), json!({})] {
            assert_eq!(
                Command::parse(LIST_RUNS, &[arg]).unwrap(),
                Command::ListRuns(ListRunsArgs::default())
            );
        }
    }

    #[test]
    fn checkpoint_commands_name_a_node_or_a_run() {
        assert_eq!(
            Command::parse(RESTORE_CHECKPOINT, &[json!({"folder": "/f", "id": "node_3"})]).unwrap(),
            Command::RestoreCheckpoint(CheckpointArgs {
                folder: "/f".into(),
                id: "node_3".into()
            })
        );
        for bad in [
            json!({"folder": "/f", "id": "3"}),
            json!({"folder": "/f"}),
            json!("node_3"),
        ] {
            let Err(CommandError::BadArguments(m)) = Command::parse(BRANCH_FROM, &[bad]) else {
                panic!()
            };
            assert!(m.starts_with("aisci.branchFrom needs {\"folder\""), "{m}");
        }
    }

    #[test]
    fn sections_by_position_or_title() {
        let at = Command::parse(
            WRITE_PAPER,
            &[json!({"tex": "/p/latex/template.tex", "section": {"level": 2, "index": 3, "title": "Results"}})],
        )
        .unwrap();
        let Command::WritePaper(w) = at else { panic!() };
        assert_eq!(
            w.section,
            Some(SectionArg::At {
                level: 2,
                index: 3,
                title: Some("Results".into())
            })
        );
        let by_title =
            Command::parse(WRITE_PAPER, &[json!({"tex": "/p/a.tex", "section": "Results"})]).unwrap();
        let Command::WritePaper(w) = by_title else {
            panic!()
        };
        assert_eq!(w.section, Some(SectionArg::Title("Results".into())));
        assert!(Command::parse(WRITE_PAPER, &[json!({"tex": "/p/a.pdf"})]).is_err());
    }

    #[test]
    fn cancel_takes_a_number_or_nothing() {
        assert_eq!(Command::parse(CANCEL, &[]).unwrap(), Command::Cancel(None));
        assert_eq!(
            Command::parse(CANCEL, &[json!(7)]).unwrap(),
            Command::Cancel(Some(vec![7]))
        );
        assert_eq!(
            Command::parse(CANCEL, &[json!(-1)]).unwrap(),
            Command::Cancel(Some(vec![]))
        );
        assert!(Command::parse(CANCEL, &[json!("7")]).is_err());
        assert!(Command::parse(CANCEL, &[Value::Null]).is_err());
        assert!(Command::parse("aisci.nope", &[]).is_err());
    }
}
