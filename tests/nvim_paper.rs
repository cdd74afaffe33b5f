//! The paper end to end in a real editor: headless Neovim with the plugin in
//! `editors/nvim` opens an idea's `latex/template.tex`; the static checks arrive as
//! diagnostics (the template's placeholders, a mistyped citation key typed into the
//! buffer), the quick fix corrects the key, and the "Write this section: Results" code
//! action brings the model's text into the buffer as an undoable edit (a fake
//! OpenAI-style model; the paper is then built with the real TeX Live).
//!
//! The editor side is `tests/nvim/paper.lua`. Neovim is found as `$AISCI_NVIM`, else
//! `.venv/bin/nvim` at the repository root, else `nvim` on PATH; never skipped.

use serde_json::{json, Value};

use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::copy_tiny_mlp;
use crate::support::nvim::{plugin_dir, server_bin, Finished, NvimRun};

/// The model's Results: the placeholder replaced, the figure (whose files this folder
/// lacks) dropped so the build is clean.
const RESULTS: &str = "latex/template.tex\n<<<<<<< SEARCH\nRESULTS HERE\n=======\nThe baseline reaches a validation accuracy of 0.95 on blobs.\n>>>>>>> REPLACE\n\n\
latex/template.tex\n<<<<<<< SEARCH\n\\begin{figure}[h]\n\\centering\n\\includegraphics[width=0.48\\textwidth]{val_acc.png}\n\\includegraphics[width=0.48\\textwidth]{val_loss.png}\n\\caption{Validation accuracy (left) and loss (right) per dataset; bars are means over three seeds with standard errors.}\n\\label{fig:results}\n\\end{figure}\n=======\n>>>>>>> REPLACE\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_paper_diagnostics_quick_fix_and_write_section() {
    let llm = FakeLlm::start(vec![Reply::chat_completion(
        "chatcmpl-nvim-paper",
        RESULTS,
        900,
        120,
    )])
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let idea = tmp.path().join("idea");
    copy_tiny_mlp(&idea);
    let tex = idea.join("latex/template.tex");
    let settings = json!({
        "llm": { "provider": "vllm", "base_url": llm.v1(), "model": "local-model",
                 "stream": false, "max_retries": 0 },
        "literature": { "engines": [], "cache_dir": tmp.path().join("lit-cache") },
        "latex": { "build_on_save": false },
        "writeup": { "fix_rounds": 0 },
    });
    let report_path = tmp.path().join("report-paper.json");
    let Finished { report: r, .. } = NvimRun {
        script: "paper.lua",
        args: vec![
            plugin_dir().into(),
            server_bin().into(),
            tex.clone().into(),
            report_path.clone().into(),
            settings.to_string().into(),
        ],
        dir: tmp.path(),
        report: &report_path,
        who: "Neovim".into(),
        name: "nvim paper".into(),
        env: vec![],
        env_remove: &["AISCI_ENGINES"],
    }
    .run()
    .await;

    assert_eq!(r["filetype"], "tex");
    // The placeholder warning sits on the placeholder's line.
    assert_eq!(r["placeholder"], r["results_line"]);
    // The typed key: an error, with the close key offered and applied.
    assert_eq!(r["citation_diag"]["severity"], 1, "{}", r["citation_diag"]);
    assert!(
        r["citation_diag"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean \"chizat2019lazy\""),
        "{}",
        r["citation_diag"]
    );
    assert_eq!(r["fixed_line"], "As in \\citep{chizat2019lazy}.");
    // The model's Results arrived in the buffer; the rest of the user's text is intact.
    let lines: Vec<&str> = r["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(lines.contains(&"The baseline reaches a validation accuracy of 0.95 on blobs."));
    assert!(lines.contains(&"As in \\citep{chizat2019lazy}."));
    assert!(!lines.iter().any(|l| l.contains("RESULTS HERE")));
    assert!(!lines.iter().any(|l| l.contains("val_acc.png")));
    assert_eq!(
        r["after_undo_has_placeholder"],
        Value::Bool(true),
        "undo takes the edit back"
    );
    assert_eq!(llm.hits(), 1);
    // What the model saw was the buffer's text (with the user's fix), and the stage saved
    // it before building.
    let seen = llm.seen();
    assert!(seen[0].body.to_string().contains("chizat2019lazy}."));
    let on_disk = std::fs::read_to_string(&tex).unwrap();
    assert!(on_disk.contains("The baseline reaches a validation accuracy of 0.95 on blobs."));
}
