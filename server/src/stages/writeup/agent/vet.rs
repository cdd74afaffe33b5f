//! The writing stage's last say over an edit of the paper, before it is written: the
//! picked papers' bibliography entries go in with it, the picked papers must be cited,
//! and the guards may refuse it.

use std::path::Path;

use async_trait::async_trait;

use crate::agent::conversation::{Vet, Vetted};
use crate::agent::edit_sink::{EditSink, SinkError};
use crate::agent::edits::FileEdit;
use crate::latex::syntax;

use super::{citations, guard};

pub(super) struct PaperVet<'a> {
    pub tex: &'a Path,
    pub tex_rel: &'a str,
    /// Entries to add to the bibliography with this edit.
    pub entries: &'a [String],
    /// Keys the edited text has to cite.
    pub must_cite: &'a [String],
    /// Counts the edits the guards refuse.
    pub refused: &'a mut u32,
}

#[async_trait]
impl Vet for PaperVet<'_> {
    fn adds_edits(&self) -> bool {
        !self.entries.is_empty()
    }

    async fn vet(&mut self, sink: &dyn EditSink, edits: &mut [FileEdit]) -> Result<Vetted, SinkError> {
        let Some(edit) = edits.iter_mut().find(|e| e.path == self.tex_rel) else {
            return Ok(Vetted::Write(Vec::new()));
        };
        let mut bib_file = Vec::new();
        if !self.entries.is_empty() {
            let facts = syntax::facts(&syntax::parse(&edit.after), &edit.after);
            match citations::target(self.tex, &facts) {
                Some(citations::Target::Block(name)) => {
                    edit.after = citations::add_to_block(&edit.after, &name, self.entries)
                        .expect("the block was just found in this text");
                }
                Some(citations::Target::File(path)) => {
                    let bib = sink.read(&path).await?;
                    let text = citations::add_to_file(&bib.text, self.entries);
                    bib_file.push((path, text));
                }
                None => {
                    return Ok(Vetted::Refused(
                        "the paper has no bibliography (no \\bibliography{...} and no filecontents .bib block); add one first".into(),
                    ))
                }
            }
        }
        if !self.must_cite.is_empty() {
            let facts = syntax::facts(&syntax::parse(&edit.after), &edit.after);
            let uncited: Vec<&str> = self
                .must_cite
                .iter()
                .filter(|k| !facts.citations.iter().any(|c| &c.key == *k))
                .map(String::as_str)
                .collect();
            if !uncited.is_empty() {
                return Ok(Vetted::Refused(format!(
                    "you picked {} but your edits do not cite it; cite each picked paper with its key, \
                     or leave it out of \"Selected\"",
                    uncited.join(", ")
                )));
            }
        }
        let refused = guard::problems(&edit.before, &edit.after);
        if !refused.is_empty() {
            *self.refused += 1;
            return Ok(Vetted::Refused(refused.join("\n")));
        }
        Ok(Vetted::Write(bib_file))
    }
}
