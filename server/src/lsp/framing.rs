//! A guard in front of tower-lsp's reader. tower-lsp 0.20 with current tokio-util
//! stops reading for good after one undecodable message, which would end the
//! session; this passes well-formed messages through unchanged and replaces a
//! body that is not JSON with a harmless notification, so one bad message costs
//! only itself.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Sent in place of a body that is not JSON; tower-lsp ignores `$/` notifications
/// it does not know.
const MALFORMED: &[u8] = br#"{"jsonrpc":"2.0","method":"$/aisci/malformedMessage"}"#;

/// Largest body accepted (a guard against a bogus Content-Length).
const MAX_BODY: usize = 256 << 20;

pub async fn forward_messages<R, W>(input: R, mut output: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut line = Vec::new();
    let mut body = Vec::new();
    loop {
        let mut length: Option<usize> = None;
        let mut any_header = false;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            if text.is_empty() {
                if any_header {
                    break;
                }
                continue;
            }
            any_header = true;
            if let Some((name, value)) = text.split_once(':') {
                if name.trim().eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().ok();
                }
            }
        }
        let Some(length) = length.filter(|l| *l <= MAX_BODY) else {
            tracing::warn!("LSP message without a usable Content-Length skipped");
            continue;
        };
        body.resize(length, 0);
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let payload: &[u8] = if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() {
            &body
        } else {
            tracing::warn!("LSP message that is not JSON skipped ({length} bytes)");
            MALFORMED
        };
        let header = format!("Content-Length: {}\r\n\r\n", payload.len());
        if output.write_all(header.as_bytes()).await.is_err() || output.write_all(payload).await.is_err() {
            return;
        }
        if output.flush().await.is_err() {
            return;
        }
    }
}
