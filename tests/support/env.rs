//! The one change the test binary makes to its own environment, so that no test sees
//! the configuration of the machine it runs on: `AISCI_CONFIG` names a user config file
//! that does not exist, and `AISCI_MODEL` and the literature variables that the
//! configuration reads (`AISCI_ENGINES`, `AISCI_S2_URL`, `AISCI_OPENALEX_URL`,
//! `AISCI_ARXIV_URL`) are taken away. It matters for the servers run in-process
//! (`lsp_client::TestClient`), which read their settings from this process's
//! environment; the `aisci` processes the tests start inherit it too (most are given
//! their own `AISCI_CONFIG` anyway).
//!
//! All tests share one process, so this is done once, for all of them, and before any
//! test thread exists: from a constructor run before `main` (the `ctor` crate), so that no
//! thread can be reading the environment while it changes. As a safeguard [`hermetic`]
//! applies it on first use too; `TestClient::start` calls it.
//! No test may change the process environment itself: give a child process its own
//! variables with `Command::env` instead.

use std::sync::Once;

/// The user config file named by `AISCI_CONFIG`: in a folder that does not exist.
pub fn missing_user_config() -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!("aisci-tests-{}-none", std::process::id()))
        .join("no-user-config.toml")
}

/// Makes the environment hermetic (see the module's documentation); only the first call
/// does anything.
pub fn hermetic() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AISCI_CONFIG", missing_user_config());
        for var in [
            "AISCI_MODEL",
            "AISCI_ENGINES",
            "AISCI_S2_URL",
            "AISCI_OPENALEX_URL",
            "AISCI_ARXIV_URL",
        ] {
            std::env::remove_var(var);
        }
    });
}

/// Runs [`hermetic`] before `main`, while the process has a single thread.
#[ctor::ctor]
fn before_main() {
    hermetic();
}

/// In place before any test runs (before `main`), without a call to [`hermetic`].
#[test]
fn the_environment_is_hermetic_before_any_test_runs() {
    assert_eq!(
        std::env::var_os("AISCI_CONFIG"),
        Some(missing_user_config().into())
    );
    assert!(!missing_user_config().exists());
    for var in ["AISCI_MODEL", "AISCI_ENGINES", "AISCI_S2_URL"] {
        assert_eq!(std::env::var_os(var), None, "{var}");
    }
}
