//! `aisci apply`: a saved model reply applied to a folder, all or none.

use std::path::Path;
use std::process::Command;

fn aisci(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aisci"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: &str = "Raising the rate.\n\nexperiment.py\n```python\n<<<<<<< SEARCH\nlr = 0.1\n=======\nlr = 0.2\n>>>>>>> REPLACE\n```\n\nnotes.txt\n```\n<<<<<<< SEARCH\n=======\nRun 1: lr 0.2\n>>>>>>> REPLACE\n```\n";

#[test]
fn dry_run_shows_the_diff_and_changes_nothing_then_apply_changes_all() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("experiment.py"), "import math\nlr = 0.1\n").unwrap();
    std::fs::write(dir.path().join("reply.md"), GOOD).unwrap();
    let (code, out, err) = aisci(dir.path(), &["apply", "--dry-run", "reply.md"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("-lr = 0.1\n+lr = 0.2"), "{out}");
    assert!(out.contains("+Run 1: lr 0.2"), "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("experiment.py")).unwrap(),
        "import math\nlr = 0.1\n"
    );
    assert!(!dir.path().join("notes.txt").exists());

    let (code, _, err) = aisci(dir.path(), &["apply", "reply.md"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("experiment.py")).unwrap(),
        "import math\nlr = 0.2\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "Run 1: lr 0.2\n"
    );
}

#[test]
fn one_failing_block_changes_no_file_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("experiment.py"), "lr = 0.1\n").unwrap();
    let reply = format!(
        "{GOOD}\nexperiment.py\n```python\n<<<<<<< SEARCH\nepochs = 3\n=======\nepochs = 4\n>>>>>>> REPLACE\n```\n"
    );
    std::fs::write(dir.path().join("reply.md"), reply).unwrap();
    let (code, _, err) = aisci(dir.path(), &["apply", "reply.md"]);
    assert_eq!(code, 1);
    assert!(err.contains("block 3 (experiment.py)"), "{err}");
    assert!(err.contains("no file was changed"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("experiment.py")).unwrap(),
        "lr = 0.1\n"
    );
    assert!(!dir.path().join("notes.txt").exists());
}

#[test]
fn paths_outside_the_folder_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("proj");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(outer.path().join("victim.py"), "x = 1\n").unwrap();
    let reply = "../victim.py\n```python\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n```\n";
    std::fs::write(dir.join("reply.md"), reply).unwrap();
    let (code, _, err) = aisci(&dir, &["apply", "reply.md"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("victim.py"), "{err}");
    assert_eq!(
        std::fs::read_to_string(outer.path().join("victim.py")).unwrap(),
        "x = 1\n"
    );
}
