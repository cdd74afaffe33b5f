//! `:AisciTree` in real headless Neovim, without a server: the plugin's renderer turns
//! `aisci.listNodes` answers (fixtures of the contract, a tree search and the classic
//! line of runs) into one line per node, children indented under their parent, the best
//! node starred; in the tree buffer `<CR>` opens a node's diff (or its code), `r`, `b`
//! and `R` send `aisci.restoreCheckpoint`, `aisci.branchFrom` and `aisci.listNodes` for
//! the idea folder (the server stubbed at `require('aisci').exec`), `q` closes it. The
//! editor side, with the exact lines, is `tests/nvim/tree_render.lua`.

use serde_json::{json, Value};

use crate::support::nvim::{plugin_dir, Finished, NvimRun};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_renders_the_search_tree_and_acts_on_its_nodes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let report_path = dir.join("report.json");
    let Finished { report: r, .. } = NvimRun {
        script: "tree_render.lua",
        args: vec![
            plugin_dir().into(),
            dir.clone().into(),
            report_path.clone().into(),
        ],
        dir: &dir,
        report: &report_path,
        who: "Neovim (tree)".into(),
        name: "nvim tree".into(),
        env: vec![],
        env_remove: &[],
    }
    .run()
    .await;

    let lines = |key: &str| -> Vec<String> {
        r[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {r:#}"))
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    // Indented under parents, the best starred, states in words (the script checks every line).
    let tree = lines("tree_lines");
    let starts = |prefix: &str| tree.iter().any(|l| l.starts_with(prefix));
    assert!(starts("node_0 "), "{tree:#?}");
    assert!(starts("├─ node_1 "), "{tree:#?}");
    assert!(starts("│  ├─ node_3 ★ "), "{tree:#?}");
    assert!(starts("│  │  └─ node_6 "), "{tree:#?}");
    assert!(starts("   └─ node_4 "), "{tree:#?}");
    assert_eq!(tree.iter().filter(|l| l.contains('★')).count(), 1, "{tree:#?}");
    assert!(tree.iter().any(|l| l.contains("not promoted")), "{tree:#?}");
    assert!(
        tree.iter().any(|l| l.starts_with("└─ node_2 ")
            && l.contains("failed")
            && l.ends_with("KeyError: 'lr' (line 40)")),
        "{tree:#?}"
    );
    // Line mode: the runs flat, one after another.
    let line = lines("line_lines");
    assert!(line.iter().any(|l| l.starts_with("run_2 ★ ")), "{line:#?}");
    assert!(!line.iter().any(|l| l.contains('└')), "{line:#?}");

    let idea = dir.join("results/tiny_mlp/20261129_120000_dropout");
    let folder = idea.to_str().unwrap();
    assert_eq!(
        r["opened"],
        idea.join(".aisci/tree/node_3/edit.diff").to_str().unwrap()
    );
    assert_eq!(
        r["opened_no_diff"],
        idea.join(".aisci/tree/node_1/experiment.py").to_str().unwrap()
    );
    let sent: Vec<Value> = r["sent"].as_array().unwrap().clone();
    let node = |command: &str, id: &str| json!({ "command": command, "arguments": [{ "folder": folder, "id": id }] });
    let list = json!({ "command": "aisci.listNodes", "arguments": [{ "folder": folder }] });
    assert_eq!(
        sent,
        vec![
            node("aisci.restoreCheckpoint", "node_3"),
            node("aisci.branchFrom", "node_3"),
            list.clone(), // a branch refreshes the tree
            list.clone(), // R
            list,         // :AisciTree from a node's own copy of the code
        ],
        "{r:#}"
    );
    let notes: Vec<&str> = r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["msg"].as_str().unwrap())
        .collect();
    assert!(
        notes.contains(&"aisci: the next run continues from node_3"),
        "{notes:?}"
    );
    assert_eq!(r["closed"], true);
}
