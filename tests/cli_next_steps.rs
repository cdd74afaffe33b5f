//! Messages that say what to do next, with the exit status a script would expect: a
//! missing module in the baseline, novelty before any idea, a reply without edit blocks,
//! resuming a launch that is finished, a plot.py that falls back without matplotlib.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::fs::tiny_mlp_without_ideas;

async fn aisci(home: &Path, config: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let cfg = home.join("user-config.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = crate::support::cli::aisci(home, &cfg);
    cmd.args(args)
        .current_dir(home)
        .env("AISCI_RUNTIME_DIR", home.join("runtime"));
    tokio::time::timeout(Duration::from_secs(60), cmd.spawn().unwrap().wait_with_output())
        .await
        .expect("aisci finished within 60 s")
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn a_baseline_missing_a_module_says_how_to_get_it_not_a_traceback() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny_mlp_without_ideas(&dir.path().join("tiny_mlp"));
    std::fs::remove_dir_all(t.join("run_0")).unwrap();
    let src = std::fs::read_to_string(t.join("experiment.py")).unwrap();
    std::fs::write(
        t.join("experiment.py"),
        format!("import numpy_not_here_42\n{src}"),
    )
    .unwrap();
    let out = aisci(dir.path(), "", &[&"baseline", &"--template", &t]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("ModuleNotFoundError: No module named 'numpy_not_here_42'"),
        "{said}"
    );
    assert!(
        said.contains("numpy_not_here_42 is not installed for python3 (run.python)"),
        "{said}"
    );
    assert!(
        said.contains("python3 -m pip install numpy_not_here_42"),
        "{said}"
    );
    assert!(said.contains("scripts/torch-up"), "{said}");
    assert!(said.contains("stderr.txt"), "the whole log is named: {said}");
    assert!(!said.contains("Traceback (most recent call last)"), "{said}");
}

#[tokio::test]
async fn novelty_before_any_idea_says_to_generate_ideas_without_asking_for_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny_mlp_without_ideas(&dir.path().join("tiny_mlp"));
    let out = aisci(
        dir.path(),
        "[llm]\nmodel = \"gpt-4o\"\n",
        &[&"novelty", &"--template", &t],
    )
    .await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("ideas.json does not exist: there are no ideas to check yet"),
        "{said}"
    );
    assert!(said.contains("aisci ideas --template"), "{said}");
    assert!(
        !said.contains("API key") && !said.contains("OPENAI_API_KEY"),
        "{said}"
    );
}

#[tokio::test]
async fn a_reply_without_edit_blocks_is_an_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("experiment.py"), "lr = 0.1\n").unwrap();
    let reply = dir.path().join("reply.txt");
    std::fs::write(&reply, "I would raise the learning rate to 0.2.\n").unwrap();
    let out = aisci(dir.path(), "", &[&"apply", &reply, &"--dir", &work]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("the reply has no SEARCH/REPLACE edit blocks"),
        "{said}"
    );
    assert!(!said.contains("changed 0 file(s)"), "{said}");
    assert_eq!(
        std::fs::read_to_string(work.join("experiment.py")).unwrap(),
        "lr = 0.1\n"
    );
}

#[tokio::test]
async fn resuming_a_finished_launch_says_so_without_asking_for_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny_mlp_without_ideas(&dir.path().join("tiny_mlp"));
    std::fs::create_dir_all(t.join(".aisci")).unwrap();
    let journal = serde_json::json!({
        "started": "2026-12-07T10:00:00+00:00",
        "ideas_generated": {"state": "done"},
        "novelty_checked": {"state": "skipped", "detail": "--skip-novelty-check"},
        "ideas": [{
            "name": "wider", "title": "Wider", "folder": dir.path().join("results/tiny_mlp/x_wider"),
            "experiments": {"state": "done"}, "runs_completed": 2,
            "writeup": {"state": "done"}, "review": {"state": "done"}, "overall": 4,
            "improvement": {"state": "skipped", "detail": "not asked for"}
        }],
        "not_novel": [], "improvement": false
    });
    std::fs::write(t.join(".aisci/launch.json"), journal.to_string()).unwrap();
    let cfg = "[llm]\nmodel = \"gpt-4o\"\n";
    let out = aisci(dir.path(), cfg, &[&"launch", &"--template", &t, &"--resume"]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("is finished (1 idea(s) pursued, 1 paper(s)): nothing is left to resume"),
        "{said}"
    );
    assert!(!said.contains("OPENAI_API_KEY"), "{said}");
    // One step left: the resume goes on, and so needs the key.
    let mut unfinished = journal.clone();
    unfinished["ideas"][0]["review"] = serde_json::json!({"state": "pending"});
    std::fs::write(t.join(".aisci/launch.json"), unfinished.to_string()).unwrap();
    let out = aisci(dir.path(), cfg, &[&"launch", &"--template", &t, &"--resume"]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("OPENAI_API_KEY"), "{said}");
}

#[tokio::test]
async fn doctor_tells_a_plot_that_falls_back_from_one_that_fails() {
    let dir = tempfile::tempdir().unwrap();
    for (name, plot) in [
        (
            "falls_back",
            "try:\n    import plotlib_not_here_42\nexcept ImportError:\n    print('table only')\n",
        ),
        ("fails", "import plotlib_not_here_42\n"),
    ] {
        let t = dir.path().join("templates").join(name);
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("experiment.py"), "import json\n").unwrap();
        std::fs::write(t.join("plot.py"), plot).unwrap();
        std::fs::write(
            t.join("prompt.json"),
            r#"{"system": "s", "task_description": "t"}"#,
        )
        .unwrap();
    }
    let out = aisci(
        dir.path(),
        "[run]\ngpus = []\n[literature]\nengines = []\n",
        &[&"doctor", &"templates"],
    )
    .await;
    let said = text(&out);
    assert!(
        said.contains("template falls_back: python3 cannot import plotlib_not_here_42: plot.py falls back to its text output, so papers get no figures"),
        "{said}"
    );
    assert!(
        said.contains("template fails: python3 cannot import plotlib_not_here_42: plot.py will fail, so papers get no figures"),
        "{said}"
    );
    assert!(
        said.contains("set run.python to a Python that has it, or scripts/torch-up"),
        "{said}"
    );
}
