//! SEARCH/REPLACE: parsing what models really write, applying all-or-none,
//! and `apply_reply_to_folder` on disk.

use std::collections::HashMap;

use aisci::agent::edits::{
    apply_blocks, apply_reply_to_folder, feedback_for, parse_reply, ApplyOptions, BlockError, EditBlock,
    FileEdit,
};

const ALLOWED: &[&str] = &["experiment.py", "plot.py", "notes.txt"];

fn block(path: &str, search: &str, replace: &str) -> EditBlock {
    EditBlock {
        index: 1,
        path: path.into(),
        search: search.into(),
        replace: replace.into(),
    }
}

fn apply(
    files: &[(&str, &str)],
    blocks: &[EditBlock],
    check_python: bool,
) -> Result<Vec<FileEdit>, Vec<BlockError>> {
    let map: HashMap<String, String> = files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    let opts = ApplyOptions {
        allowed: ALLOWED,
        check_python,
    };
    apply_blocks(blocks, &mut |p| map.get(p).cloned(), &opts)
}

// ---- parsing ----

#[test]
fn parses_the_usual_shape_and_crlf_and_loose_markers() {
    let reply = "Here we go.\r\n\r\nexperiment.py\r\n```python\r\n<<<<<<<  SEARCH  \r\nx = 1\r\n=======   \r\nx = 2\r\n>>>>>>> REPLACE \r\n```\r\n";
    let p = parse_reply(reply);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(
        p.blocks,
        vec![EditBlock {
            index: 1,
            path: "experiment.py".into(),
            search: "x = 1\n".into(),
            replace: "x = 2\n".into()
        }]
    );
}

#[test]
fn file_names_in_many_places_and_missing_fences() {
    let reply = "\
**plot.py**
```py
<<<<<<< SEARCH
a
=======
b
>>>>>>> REPLACE
```

```python notes.txt
<<<<<<< SEARCH
c
=======
d
>>>>>>> REPLACE
```

`experiment.py`:
<<<<<<< SEARCH
e
=======
f
>>>>>>> REPLACE

And the same file again:
```
<<<<<<< SEARCH
g
=======
h
>>>>>>> REPLACE
```
";
    let p = parse_reply(reply);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let paths: Vec<_> = p.blocks.iter().map(|b| b.path.as_str()).collect();
    assert_eq!(paths, ["plot.py", "notes.txt", "experiment.py", "experiment.py"]);
    assert_eq!(p.blocks[3].index, 4);
}

#[test]
fn cut_off_and_broken_blocks_are_problems_not_blocks() {
    let reply = "experiment.py\n```python\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n\nexperiment.py\n```python\n<<<<<<< SEARCH\nc\n=======\nd\n";
    let p = parse_reply(reply);
    assert_eq!(p.blocks.len(), 1);
    assert_eq!(p.problems, ["block 2 is cut off before >>>>>>> REPLACE"]);

    let p = parse_reply("x.py\n<<<<<<< SEARCH\na\n");
    assert_eq!(p.problems, ["block 1 is cut off before ======="]);

    // The next SEARCH before this one's REPLACE: this one is dropped, the next is read.
    let p =
        parse_reply("x.py\n<<<<<<< SEARCH\na\n=======\nb\n<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n");
    assert_eq!(p.blocks.len(), 1);
    assert_eq!(p.blocks[0].index, 2);
    assert_eq!(p.blocks[0].path, "x.py");
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);

    let p = parse_reply("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n");
    assert!(p.blocks.is_empty());
    assert!(p.problems[0].contains("names no file"), "{:?}", p.problems);
}

#[test]
fn fences_and_dividers_inside_the_code_are_content() {
    let reply = "notes.txt\n```\n<<<<<<< SEARCH\nTitle\n```python\nold()\n```\n=======\nTitle\n=======\n```python\nnew()\n```\n>>>>>>> REPLACE\n```\n";
    let p = parse_reply(reply);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(p.blocks[0].search, "Title\n```python\nold()\n```\n");
    // Later ======= lines before REPLACE stay in the replacement (e.g. an underline).
    assert_eq!(p.blocks[0].replace, "Title\n=======\n```python\nnew()\n```\n");
    // `print("=======")` is not a marker line.
    let p = parse_reply("a.py\n<<<<<<< SEARCH\nprint(\"=======\")\n=======\nx\n>>>>>>> REPLACE\n");
    assert_eq!(p.blocks[0].search, "print(\"=======\")\n");
}

#[test]
fn quoted_echoes_are_not_blocks() {
    let p = parse_reply("> <<<<<<< SEARCH\n> a\n> =======\n> b\n> >>>>>>> REPLACE\n");
    assert!(p.blocks.is_empty() && p.problems.is_empty(), "{p:?}");
}

// ---- applying ----

const PY: &str =
    "import os\n\n\ndef train(lr):\n    x = 1\n    for i in range(3):\n        x += i\n    return x\n";

#[test]
fn exact_match_and_later_blocks_see_earlier_ones() {
    let blocks = [
        block("experiment.py", "    x = 1\n", "    x = 10\n"),
        block("experiment.py", "    x = 10\n", "    x = 100\n"),
    ];
    let out = apply(&[("experiment.py", PY)], &blocks, true).unwrap();
    assert_eq!(out.len(), 1);
    assert!(out[0].after.contains("    x = 100\n"));
    assert_eq!(out[0].before, PY);
}

#[test]
fn fuzzy_match_reindents_the_replacement() {
    // The model dropped the function's indentation and left trailing spaces.
    let search = "for i in range(3):   \n    x += i\n";
    let replace = "for i in range(5):\n    x += 2 * i\n";
    let out = apply(
        &[("experiment.py", PY)],
        &[block("experiment.py", search, replace)],
        true,
    )
    .unwrap();
    assert!(
        out[0]
            .after
            .contains("    for i in range(5):\n        x += 2 * i\n    return x\n"),
        "{}",
        out[0].after
    );
    // Too much indentation is taken away the same way.
    let out = apply(
        &[("experiment.py", PY)],
        &[block(
            "experiment.py",
            "        x = 1\n\n",
            "        x = 2\n        y = 3\n",
        )],
        false,
    )
    .unwrap();
    assert!(out[0].after.contains("    x = 2\n    y = 3\n    for"));
}

#[test]
fn inconsistent_indentation_does_not_match() {
    let err = apply(
        &[("experiment.py", PY)],
        &[block("experiment.py", "for i in range(3):\nx += i\n", "")],
        false,
    )
    .unwrap_err();
    assert!(matches!(err[0], BlockError::NoMatch { .. }), "{err:?}");
}

#[test]
fn ambiguity_names_the_lines() {
    let text = "a = 1\nb = 2\na = 1\n";
    let err = apply(
        &[("experiment.py", text)],
        &[block("experiment.py", "a = 1\n", "a = 3\n")],
        false,
    )
    .unwrap_err();
    match &err[0] {
        BlockError::Ambiguous { matches, lines, .. } => {
            assert_eq!((*matches, lines.as_slice()), (2, [1, 3].as_slice()))
        }
        e => panic!("{e:?}"),
    }
    assert!(err[0]
        .to_string()
        .starts_with("block 1 (experiment.py): SEARCH text matches 2 places"));
    // Only whole lines match: `x = 1` is not inside `max = 1`.
    let out = apply(
        &[("experiment.py", "max = 1\nx = 1\n")],
        &[block("experiment.py", "x = 1\n", "x = 2\n")],
        false,
    )
    .unwrap();
    assert_eq!(out[0].after, "max = 1\nx = 2\n");
}

#[test]
fn no_match_shows_the_closest_lines() {
    let err = apply(
        &[("experiment.py", PY)],
        &[block(
            "experiment.py",
            "    x = 1\n    for i in range(4):\n        x += i\n",
            "",
        )],
        false,
    )
    .unwrap_err();
    let msg = err[0].to_string();
    assert!(
        msg.starts_with("block 1 (experiment.py): SEARCH text not found; the closest lines are 5-7:"),
        "{msg}"
    );
    assert!(msg.contains("    for i in range(3):"), "{msg}");
    let fb = feedback_for(&err);
    assert!(fb.contains("None of your SEARCH/REPLACE blocks were applied"));
    assert!(fb.contains("copy them from the current file"));
}

#[test]
fn protected_paths_and_all_or_none() {
    let blocks = [
        block("experiment.py", "    x = 1\n", "    x = 2\n"),
        EditBlock {
            index: 2,
            ..block("run.sh", "a\n", "b\n")
        },
        EditBlock {
            index: 3,
            ..block("../experiment.py", "a\n", "b\n")
        },
    ];
    let err = apply(&[("experiment.py", PY), ("run.sh", "a\n")], &blocks, false).unwrap_err();
    assert_eq!(err.len(), 2, "{err:?}");
    assert!(matches!(&err[0], BlockError::NotAllowed { block: 2, .. }));
    assert!(matches!(&err[1], BlockError::OutsideFolder { block: 3, .. }));
    assert!(feedback_for(&err).contains("Only these files may be edited: experiment.py, plot.py, notes.txt"));
}

#[test]
fn empty_search_creates_but_never_overwrites() {
    let out = apply(&[], &[block("./plot.py", "", "print(1)\n")], true).unwrap();
    assert_eq!(
        out,
        [FileEdit {
            path: "plot.py".into(),
            before: String::new(),
            after: "print(1)\n".into()
        }]
    );
    let err = apply(&[("plot.py", "x\n")], &[block("plot.py", "", "y\n")], false).unwrap_err();
    assert!(matches!(err[0], BlockError::FileExists { .. }));
    let err = apply(&[], &[block("plot.py", "x\n", "y\n")], false).unwrap_err();
    assert!(matches!(err[0], BlockError::NoSuchFile { .. }));
}

#[test]
fn python_syntax_is_checked_before_anything_runs() {
    let err = apply(
        &[("experiment.py", PY)],
        &[block("experiment.py", "    x = 1\n", "    x = (1\n")],
        true,
    )
    .unwrap_err();
    match &err[0] {
        BlockError::SyntaxError { path, line, .. } => {
            assert_eq!(path, "experiment.py");
            assert!((5..=8).contains(line), "{line}");
        }
        e => panic!("{e:?}"),
    }
    // Not checked when not asked, and notes.txt is never parsed as Python.
    apply(
        &[("experiment.py", PY)],
        &[block("experiment.py", "    x = 1\n", "    x = (1\n")],
        false,
    )
    .unwrap();
}

// ---- folders ----

fn reply(path: &str, search: &str, replace: &str) -> String {
    format!("{path}\n```python\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n")
}

#[test]
fn folder_apply_dry_run_then_write() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("experiment.py"), PY).unwrap();
    let r = reply("experiment.py", "    x = 1\n", "    x = 2\n") + &reply("plot.py", "", "print(2)\n");
    let report = apply_reply_to_folder(dir.path(), &r, None, true).unwrap();
    assert!(
        report.diff.contains("-    x = 1\n+    x = 2\n"),
        "{}",
        report.diff
    );
    assert!(
        report.diff.contains("--- /dev/null\n+++ b/plot.py"),
        "{}",
        report.diff
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("experiment.py")).unwrap(),
        PY
    );
    assert!(!dir.path().join("plot.py").exists());

    apply_reply_to_folder(dir.path(), &r, Some(ALLOWED), false).unwrap();
    assert!(std::fs::read_to_string(dir.path().join("experiment.py"))
        .unwrap()
        .contains("x = 2"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("plot.py")).unwrap(),
        "print(2)\n"
    );
    // Atomic writes leave no temporary files.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["experiment.py", "plot.py"]);
}

#[test]
fn folder_apply_is_all_or_none() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("experiment.py"), PY).unwrap();
    let r = reply("experiment.py", "    x = 1\n", "    x = 2\n")
        + &reply("experiment.py", "nothing like this\n", "y\n");
    let err = apply_reply_to_folder(dir.path(), &r, None, false).unwrap_err();
    assert!(matches!(err[0], BlockError::NoMatch { block: 2, .. }), "{err:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("experiment.py")).unwrap(),
        PY
    );
    // A cut-off block refuses the whole reply.
    let cut = reply("experiment.py", "    x = 1\n", "    x = 2\n") + "experiment.py\n<<<<<<< SEARCH\n";
    let err = apply_reply_to_folder(dir.path(), &cut, None, false).unwrap_err();
    assert!(
        matches!(err[0], BlockError::Malformed { block: 2, .. }),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("experiment.py")).unwrap(),
        PY
    );
}

#[test]
fn folder_apply_refuses_paths_outside() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("idea");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(outer.path().join("secret.py"), "a = 1\n").unwrap();
    let abs = outer.path().join("secret.py");
    #[cfg(unix)]
    std::os::unix::fs::symlink(outer.path(), dir.join("up")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&abs, dir.join("link.py")).unwrap();
    let mut paths = vec!["../secret.py".to_string(), abs.display().to_string()];
    if cfg!(unix) {
        paths.push("up/secret.py".into());
        paths.push("link.py".into());
    }
    for p in paths {
        let err = apply_reply_to_folder(&dir, &reply(&p, "a = 1\n", "a = 2\n"), None, false).unwrap_err();
        assert!(matches!(err[0], BlockError::OutsideFolder { .. }), "{p}: {err:?}");
    }
    assert_eq!(std::fs::read_to_string(&abs).unwrap(), "a = 1\n");
}

// ---- following aider, and explaining misses ----

#[test]
fn a_blank_line_closing_search_or_replace_is_dropped_as_aider_does() {
    // Models end blocks with a blank line because aider drops it; kept, every such edit
    // would add a stray blank line (or, in SEARCH, eat one of the file's).
    let reply = "experiment.py\n```python\n<<<<<<< SEARCH\nimport os\n\n=======\nimport os\nimport sys\n\n>>>>>>> REPLACE\n```\n";
    let parsed = parse_reply(reply);
    assert_eq!(parsed.blocks[0].search, "import os\n");
    assert_eq!(parsed.blocks[0].replace, "import os\nimport sys\n");
    let out = apply(&[("experiment.py", PY)], &parsed.blocks, false).unwrap();
    assert!(
        out[0].after.starts_with("import os\nimport sys\n\n\ndef train"),
        "{}",
        out[0].after
    );
    // Only one, and only an empty one: aider keeps the rest.
    let two = parse_reply("a.py\n<<<<<<< SEARCH\nx\n=======\ny\n\n\n>>>>>>> REPLACE\n");
    assert_eq!(two.blocks[0].replace, "y\n\n");
    let spaces = parse_reply("a.py\n<<<<<<< SEARCH\nx\n=======\ny\n  \n>>>>>>> REPLACE\n");
    assert_eq!(spaces.blocks[0].replace, "y\n  \n");
}

#[test]
fn a_search_wrong_only_in_whitespace_says_so_and_where() {
    let err = apply(
        &[("experiment.py", PY)],
        &[block(
            "experiment.py",
            "def train(lr):\n    x = 1\n\n    for i in range(3):\n            x += i\n",
            "",
        )],
        false,
    )
    .unwrap_err();
    let msg = err[0].to_string();
    assert!(
        msg.starts_with(
            "block 1 (experiment.py): SEARCH text not found; the SEARCH text matches lines 4-7 except for whitespace (the indentation of line 7, blank lines)"
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with("def train(lr):\n    x = 1\n    for i in range(3):\n        x += i\n"),
        "{msg}"
    );
    // A real difference is not called whitespace, and the listing stays short.
    let long: String = (0..40).map(|i| format!("v{i} = {i}\n")).collect();
    let search: String = (0..30)
        .map(|i| format!("v{i} = {}\n", i + usize::from(i == 29)))
        .collect();
    let err = apply(
        &[("experiment.py", &long)],
        &[block("experiment.py", &search, "")],
        false,
    )
    .unwrap_err();
    let msg = err[0].to_string();
    assert!(!msg.contains("except for whitespace"), "{msg}");
    assert!(msg.contains("the closest lines are 1-8:"), "{msg}");
    assert!(msg.lines().count() <= 10, "{msg}");
}

#[test]
fn a_one_megabyte_reply_applies_in_under_a_second() {
    // 100 blocks of 100 lines (SEARCH) and 100 lines (REPLACE) each, on a 20,000-line file.
    let file: String = (0..20_000)
        .map(|i| format!("value_{i} = compute({i}, 'some padding text here')\n"))
        .collect();
    let mut reply = String::new();
    for b in 0..100 {
        let i = b * 200;
        reply.push_str("experiment.py\n```python\n<<<<<<< SEARCH\n");
        for k in i..i + 100 {
            reply.push_str(&format!("value_{k} = compute({k}, 'some padding text here')\n"));
        }
        reply.push_str("=======\n");
        for k in i..i + 100 {
            reply.push_str(&format!(
                "value_{k} = compute({k}, 'changed padding text here')\n"
            ));
        }
        reply.push_str(">>>>>>> REPLACE\n```\n\n");
    }
    assert!(reply.len() >= 1_000_000, "{}", reply.len());
    let t = std::time::Instant::now();
    let parsed = parse_reply(&reply);
    let out = apply(&[("experiment.py", &file)], &parsed.blocks, false).unwrap();
    let took = t.elapsed();
    eprintln!("1 MB reply ({} bytes, 100 blocks): {took:?}", reply.len());
    assert_eq!(out[0].after.matches("changed").count(), 10_000);
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
}
