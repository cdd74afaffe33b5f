//! The built `aisci` as a user runs it, in a clean environment: only PATH, a home and
//! XDG folders in the test's folder, and the user config file the test names.

use std::path::Path;
use std::process::Stdio;

/// `aisci` with no arguments yet: stdin closed, stdout and stderr captured, killed when
/// dropped. Add arguments, more variables and a folder to run in.
pub fn aisci(home: &Path, user_config: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aisci"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("xdg-config"))
        .env("XDG_CACHE_HOME", home.join("xdg-cache"))
        .env("AISCI_CONFIG", user_config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}
