//! The parts of a paper the stage writes, in order, and what each should hold.

/// One part: its name in prompts, the words that find its `\section` in a `.tex`, and
/// what to write there.
pub struct Part {
    pub name: &'static str,
    pub matches: &'static [&'static str],
    pub guidance: &'static str,
}

pub const PARTS: [Part; 8] = [
    Part {
        name: "Title and abstract",
        matches: &["abstract", "title"],
        guidance: "Set \\title{...} to a short, specific title. The abstract is one paragraph: \
                   the question, why it matters, what was done, and the main result with its number.",
    },
    Part {
        name: "Introduction",
        matches: &["introduction", "intro"],
        guidance: "Say what problem is studied and why it is worth studying, what makes it hard, \
                   what this paper does, and list the contributions as an itemize list.",
    },
    Part {
        name: "Background",
        matches: &["background", "preliminaries"],
        guidance: "Give the concepts and notation a reader needs for the method, with the \
                   prior work they come from; define the problem setting formally if it helps.",
    },
    Part {
        name: "Method",
        matches: &["method", "approach"],
        guidance: "Describe what was done and why, in the notation of the background, precisely \
                   enough to reimplement it from the text (use experiment.py as the ground truth).",
    },
    Part {
        name: "Experimental Setup",
        matches: &["experimental setup", "setup", "experiments"],
        guidance: "Describe the datasets, metrics, hyperparameters and implementation details as \
                   experiment.py and notes.txt give them. Mention hardware and software only as the \
                   run facts state them.",
    },
    Part {
        name: "Results",
        matches: &["results"],
        guidance: "Report the runs' results against the baseline (run_0) with the exact numbers, \
                   in a table where it helps; refer to each existing figure and say what it shows; \
                   state the limitations. Claim nothing the results do not show.",
    },
    Part {
        name: "Conclusion",
        matches: &["conclusion", "conclusions", "discussion"],
        guidance: "Sum up what was found in a few sentences and name concrete next steps.",
    },
    Part {
        name: "Related Work",
        matches: &["related work", "related"],
        guidance: "Sketch the related work: name the closest lines of work and how they differ from \
                   this one (aim, assumptions, method). Cite only keys already in the bibliography; \
                   the citation rounds that follow add more.",
    },
];

/// The part a section title belongs to, by its words (`Conclusions and Future Work` →
/// Conclusion).
pub fn part_for(title: &str) -> Option<&'static Part> {
    let t = title.to_ascii_lowercase();
    PARTS.iter().find(|p| p.matches.iter().any(|m| t.contains(m)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_titles_find_their_part() {
        assert_eq!(
            part_for("Conclusions and Future Work").unwrap().name,
            "Conclusion"
        );
        assert_eq!(part_for("Experimental Setup").unwrap().name, "Experimental Setup");
        assert_eq!(part_for("Related Work").unwrap().name, "Related Work");
        assert!(part_for("Appendix").is_none());
    }
}
