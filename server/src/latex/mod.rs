//! The paper: what a `.tex` and its bibliography hold (tree-sitter and the `biblatex`
//! crate), and the static checks run on it while the user types.

pub mod anchor;
pub mod bib;
pub mod build;
pub mod checks;
pub mod log;
pub mod mentions;
pub mod paper;
pub mod syntax;

pub use checks::{check, Fix, Inputs, TexProblem};
pub use syntax::{facts, facts_cached, parse, FactsCache, TexFacts};
