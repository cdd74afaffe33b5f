//! A review that The AI Scientist v1 left in an idea folder: its `review.txt` (v1's keys,
//! `json.dumps(indent=4)`) read as the paper's review when aisci has written no
//! `review.json`, and its text kept aside before aisci writes its own `review.txt`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::agent::Review;
use super::aggregate::calibrated;
use super::{EnsembleInfo, PaperInfo, ReviewFile, REVIEW_TXT};
use crate::config::Settings;

/// `ReviewFile::provider` of a review read from v1's file (it also tells aisci's own
/// `review.txt` from v1's).
pub const V1_PROVIDER: &str = "v1 review.txt";

/// Where v1's `review.txt` is kept once aisci writes its own.
pub const KEPT_TXT: &str = "review_v1.txt";

/// v1's review of the paper in `root`, as a review file: its scores and comments, the
/// model's decision, the calibrated one at the default threshold. None when there is no
/// `review.txt` or it is not a review.
pub fn read(root: &Path) -> Option<ReviewFile> {
    let path = root.join(REVIEW_TXT);
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    let review = Review::from_value(&value).ok()?;
    let threshold = Settings::default().review.accept_threshold;
    let created = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map(|t| {
            chrono::DateTime::<chrono::Local>::from(t)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
        })
        .unwrap_or_default();
    let means: Map<String, Value> = super::form::SCORES
        .iter()
        .filter_map(|(n, _, _)| Some((n.to_string(), Value::from(review.score(n)?))))
        .collect();
    Some(ReviewFile {
        created,
        decision: review.decision,
        calibrated_decision: calibrated(review.overall, threshold),
        threshold,
        ensemble: EnsembleInfo {
            requested: 1,
            used: 1,
            meta_reviewed: false,
            means,
            rounding: "one review, as v1 wrote it".into(),
            members: Vec::new(),
        },
        reflections: 0,
        reflection_done: false,
        notes: vec![format!("written by The AI Scientist v1 ({})", path.display())],
        paper: PaperInfo {
            source: "pdf".into(),
            path: paper_pdf(root),
        },
        model: "The AI Scientist v1".into(),
        provider: V1_PROVIDER.into(),
        calls: 0,
        cost_usd: 0.0,
        previous: Vec::new(),
        addressed: Vec::new(),
        review,
    })
}

/// v1 reviews `<folder>/<Name>.pdf`; outside a results folder, the PDF beside the `.tex`.
fn paper_pdf(root: &Path) -> PathBuf {
    match crate::project::IdeaFolder::from_path(root) {
        Some(f) => root.join(format!("{}.pdf", f.name)),
        None => crate::stages::writeup::paper_tex(root).with_extension("pdf"),
    }
}

impl ReviewFile {
    /// Read from v1's `review.txt` rather than written by aisci.
    pub fn is_v1(&self) -> bool {
        self.provider == V1_PROVIDER
    }
}

/// Before aisci replaces `txt` with its own review, v1's `review.txt` is copied to
/// `review_v1.txt` (once), so what v1 wrote stays beside the scores kept as the previous
/// review. `current` is the folder's review before this one.
pub fn keep_before_overwrite(root: &Path, txt: &Path, current: Option<&ReviewFile>) -> std::io::Result<()> {
    let kept = root.join(KEPT_TXT);
    let is_v1s = txt.file_name() == Some(REVIEW_TXT.as_ref()) && current.is_some_and(ReviewFile::is_v1);
    if !is_v1s || kept.exists() {
        return Ok(());
    }
    let Ok(text) = std::fs::read_to_string(txt) else {
        return Ok(());
    };
    if Review::from_value(&serde_json::from_str(&text).unwrap_or(Value::Null)).is_err() {
        return Ok(());
    }
    crate::fsutil::write_atomic(&kept, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_review() -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/v1/example_papers/adaptive_dual_scale_denoising/review.txt");
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn v1_review_txt_reads_as_the_papers_review() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir
            .path()
            .join("results/2d_diffusion/20240802_090035_adaptive_dual_scale_denoising");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join(REVIEW_TXT), v1_review()).unwrap();
        let f = read(&root).expect("v1's review.txt is a review");
        assert!(f.is_v1());
        assert_eq!(f.review.overall, 5);
        assert_eq!(f.decision, super::super::agent::Decision::Reject);
        assert_eq!(f.review.weaknesses.len(), 6);
        assert!(f.review.weaknesses[0]
            .text
            .starts_with("Increased computational complexity"));
        assert!(f
            .review
            .summary
            .starts_with("This paper introduces an adaptive dual-scale"));
        assert_eq!(f.snapshot().overall, 5);
        assert_eq!(f.snapshot().scores["Originality"], 3);
        assert_eq!(f.paper.path, root.join("adaptive_dual_scale_denoising.pdf"));
        // The fallback of read_review when aisci has no review.json.
        assert_eq!(super::super::read_review(&root), Some(f));
    }

    #[test]
    fn no_or_broken_review_txt_is_no_review() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).is_none());
        std::fs::write(dir.path().join(REVIEW_TXT), "{\"Summary\": \"s\"}").unwrap();
        assert!(read(dir.path()).is_none());
        std::fs::write(dir.path().join(REVIEW_TXT), "not json").unwrap();
        assert!(read(dir.path()).is_none());
    }

    #[test]
    fn v1_text_is_kept_once_and_aiscis_own_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let txt = root.join(REVIEW_TXT);
        std::fs::write(&txt, v1_review()).unwrap();
        let v1 = read(root).unwrap();
        keep_before_overwrite(root, &txt, Some(&v1)).unwrap();
        assert_eq!(std::fs::read_to_string(root.join(KEPT_TXT)).unwrap(), v1_review());
        // aisci's review.txt replaces it; a later review does not overwrite the kept one.
        let mut ours = v1.clone();
        ours.provider = "openai".into();
        ours.review.overall = 7;
        std::fs::write(&txt, ours.review.to_v1_text()).unwrap();
        keep_before_overwrite(root, &txt, Some(&ours)).unwrap();
        assert_eq!(std::fs::read_to_string(root.join(KEPT_TXT)).unwrap(), v1_review());

        let other = tempfile::tempdir().unwrap();
        let txt = other.path().join(REVIEW_TXT);
        std::fs::write(&txt, ours.review.to_v1_text()).unwrap();
        keep_before_overwrite(other.path(), &txt, Some(&ours)).unwrap();
        keep_before_overwrite(other.path(), &txt, None).unwrap();
        assert!(
            !other.path().join(KEPT_TXT).exists(),
            "aisci's own text is not v1's"
        );
    }

    #[test]
    fn a_new_review_keeps_v1s_scores_as_the_previous_and_revisions_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(REVIEW_TXT), v1_review()).unwrap();
        // A revision of v1's weakness-1 is recorded in a review.json made from v1's review.
        super::super::mark_addressed(root, &["weakness-1".into()]).unwrap();
        let marked = super::super::read_review(root).unwrap();
        assert!(marked.is_v1());
        assert_eq!(marked.addressed, ["weakness-1"]);

        let mut ours = read(root).unwrap();
        ours.provider = "vllm".into();
        ours.review.overall = 7;
        super::super::write_review(root, &mut ours).unwrap();
        assert_eq!(ours.previous.len(), 1);
        assert_eq!(ours.previous[0].overall, 5);
        assert!(
            ours.headline().starts_with("Overall 7/10 (was 5) · Reject"),
            "{}",
            ours.headline()
        );
        assert_eq!(
            std::fs::read_to_string(root.join(REVIEW_TXT)).unwrap(),
            v1_review()
        );
    }
}
