//! Starting the stages for the editor: arguments in, progress and results out.

pub mod experiment;
pub mod ideas;
pub mod novelty;
pub mod resume;
pub mod review;
pub mod stage;
pub mod writeup;
