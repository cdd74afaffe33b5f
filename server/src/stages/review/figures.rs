//! The paper's figures as the reviewer sees them, for a model that takes images: the
//! pages of the built PDF that carry them (found with `pdfimages -list`, drawn with
//! `pdftoppm`), else the figure files the `.tex` includes. A model without image input
//! reads the text alone, and the review's notes say so once.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::latex::syntax;
use crate::llm::{Image, Llm};

/// Pages (or figure files) shown at most: each costs about as much as a page of text.
pub const MAX_IMAGES: usize = 6;
/// Enough to read axis labels on a letter page (about 680 × 880 pixels).
const PAGE_DPI: &str = "80";
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// What the reviewer is shown besides the text.
#[derive(Debug, Default)]
pub struct Shown {
    pub images: Vec<Image>,
    pub notes: Vec<String>,
}

/// The figures of the paper `tex` (its PDF `pdf` where the text came from one).
pub async fn for_review(tex: &Path, pdf: Option<&Path>, llm: &Llm, cancel: &CancellationToken) -> Shown {
    let mut shown = Shown::default();
    let Ok(src) = std::fs::read_to_string(tex) else {
        return shown;
    };
    let facts = syntax::facts(&syntax::parse(&src), &src);
    if facts.graphics.is_empty() {
        return shown;
    }
    let count = facts.graphics.len();
    if !llm.accepts_images() {
        shown.notes.push(format!(
            "the reviewer ({}) takes no images: it read the text without the paper's {count} figure(s)",
            llm.model()
        ));
        return shown;
    }
    if let Some(pdf) = pdf {
        match pages_with_images(pdf, cancel).await {
            Ok(pages) if !pages.is_empty() => {
                for &page in pages.iter().take(MAX_IMAGES) {
                    match page_image(pdf, page, cancel).await {
                        Ok(img) => shown.images.push(img),
                        Err(e) => shown
                            .notes
                            .push(format!("page {page} of the PDF was not shown: {e}")),
                    }
                }
                if pages.len() > MAX_IMAGES {
                    shown.notes.push(format!(
                        "the reviewer saw the first {MAX_IMAGES} of {} pages with figures",
                        pages.len()
                    ));
                }
                if !shown.images.is_empty() {
                    return shown;
                }
            }
            Ok(_) => {}
            Err(e) => shown
                .notes
                .push(format!("{e}; the figure files are shown instead")),
        }
    }
    let base = tex.parent().unwrap_or(Path::new("."));
    for g in &facts.graphics {
        if shown.images.len() >= MAX_IMAGES {
            break;
        }
        let Some(file) =
            crate::latex::checks::find_graphic(base, &facts.graphics_paths, &g.name, &|p| p.is_file())
        else {
            continue;
        };
        let img = if file.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf")) {
            page_image(&file, 1, cancel).await
        } else {
            Image::from_file(&file).map_err(|e| e.to_string())
        };
        match img {
            Ok(img) => shown.images.push(img),
            Err(e) => shown.notes.push(format!("figure {} was not shown: {e}", g.name)),
        }
    }
    shown
}

/// The pages of `pdf` that embed an image, in order (`pdfimages -list`).
async fn pages_with_images(pdf: &Path, cancel: &CancellationToken) -> Result<Vec<u32>, String> {
    let out = poppler("pdfimages", vec!["-list".into(), pdf.into()], cancel).await?;
    let text = String::from_utf8_lossy(&out);
    let mut pages: Vec<u32> = text
        .lines()
        .skip(2)
        .filter(|l| l.split_whitespace().nth(2) == Some("image"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    pages.dedup();
    Ok(pages)
}

/// Page `page` of `pdf` as a PNG.
async fn page_image(pdf: &Path, page: u32, cancel: &CancellationToken) -> Result<Image, String> {
    let p = page.to_string();
    let args: Vec<OsString> = vec![
        "-r".into(),
        PAGE_DPI.into(),
        "-png".into(),
        "-f".into(),
        p.clone().into(),
        "-l".into(),
        p.into(),
        pdf.into(),
    ];
    let png = poppler("pdftoppm", args, cancel).await?;
    Image::from_bytes(png).map_err(|e| e.to_string())
}

/// A poppler tool's stdout, within a time limit, stopped on cancel.
pub(crate) async fn poppler(
    tool: &str,
    args: Vec<OsString>,
    cancel: &CancellationToken,
) -> Result<Vec<u8>, String> {
    let child = tokio::process::Command::new(tool)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("{tool} is not installed (poppler-utils)"),
            _ => format!("{tool} could not start: {e}"),
        })?;
    let out = tokio::select! {
        r = tokio::time::timeout(TOOL_TIMEOUT, child.wait_with_output()) => match r {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => return Err(format!("{tool} failed: {e}")),
            Err(_) => return Err(format!("{tool} took too long")),
        },
        _ = cancel.cancelled() => return Err("cancelled".into()),
    };
    if !out.status.success() {
        return Err(format!(
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}
