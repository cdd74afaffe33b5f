//! The trust prompt. Outside `trusted_folders` a project's `aisci.toml` may not choose
//! endpoints, secrets or commands, and latexmk does not read the project's latexmkrc.
//! The first time that costs a folder something, the client is asked once whether to
//! trust it (`window/showMessageRequest`, which every client can answer); yes adds the
//! folder to the user config, and the settings are read again.

use std::path::{Path, PathBuf};

use tower_lsp::lsp_types::{MessageActionItem, MessageType};

use super::backend::Backend;
use crate::config;

pub const TRUST: &str = "Trust this folder";
pub const NOT_NOW: &str = "Not now";

/// Asks whether to trust `folder`, where `ignored` was passed over for want of trust.
/// Once per folder per session: a folder below one already asked about is not asked
/// about either. The question waits for the user off the caller's path.
pub fn offer(b: &Backend, folder: &Path, ignored: Vec<String>) {
    if ignored.is_empty() {
        return;
    }
    let folder = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
    {
        let mut asked = b.state.trust_asked.lock().unwrap();
        if asked.iter().any(|a| folder.starts_with(a)) {
            return;
        }
        asked.insert(folder.clone());
    }
    let b = b.clone();
    tokio::spawn(async move {
        let message = format!(
            "aisci: {} is not in trusted_folders, so aisci ignored {}. Trusting it lets its aisci.toml \
             choose endpoints, secrets, commands and limits, and lets latexmk run its latexmkrc (Perl code).",
            folder.display(),
            ignored.join(", ")
        );
        let actions = [TRUST, NOT_NOW]
            .map(|t| MessageActionItem {
                title: t.into(),
                properties: Default::default(),
            })
            .to_vec();
        // No time limit: the answer is the user's, and they may take a while.
        let reply = b
            .client
            .show_message_request(MessageType::WARNING, message, Some(actions))
            .await;
        match reply {
            Ok(Some(item)) if item.title == TRUST => trust(&b, &folder).await,
            Ok(_) => {}
            Err(e) => tracing::warn!("the trust question for {} got no answer: {e}", folder.display()),
        }
    });
}

async fn trust(b: &Backend, folder: &Path) {
    let env = |k: &str| std::env::var(k).ok();
    let Some(path) = config::user_config_path(&env) else {
        b.client
            .show_message(
                MessageType::ERROR,
                "aisci: there is no user config folder to record the trust in; set AISCI_CONFIG",
            )
            .await;
        return;
    };
    let (file, dir) = (path.clone(), folder.to_path_buf());
    let written = tokio::task::spawn_blocking(move || config::trust_folder(&file, &dir)).await;
    match written {
        Ok(Ok(_)) => {
            tracing::info!("trusted {} in {}", folder.display(), path.display());
            forget_ignored_rc(b, folder);
            // Settings are read afresh on every use; this shows what the folder's own file says now.
            let loaded = b.state.settings_for(Some(folder));
            b.show_new_warnings(&loaded).await;
            b.client
                .show_message(
                    MessageType::INFO,
                    format!(
                        "aisci: {} is trusted now (added to trusted_folders in {}); its aisci.toml is read in \
                         full and the next build reads its latexmkrc",
                        folder.display(),
                        path.display()
                    ),
                )
                .await;
        }
        Ok(Err(e)) => {
            b.client
                .show_message(
                    MessageType::ERROR,
                    format!("aisci: the folder was not trusted: {e}"),
                )
                .await
        }
        Err(e) => tracing::error!("trusting {}: {e}", folder.display()),
    }
}

/// An rc file under a folder trusted now is read from the next build on; should trust be
/// taken away later, its being ignored is said again.
fn forget_ignored_rc(b: &Backend, folder: &Path) {
    let canon = |p: &PathBuf| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
    b.state
        .paper
        .rc_said
        .lock()
        .unwrap()
        .retain(|rc| !canon(rc).starts_with(folder));
}
