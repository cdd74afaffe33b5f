//! The terminal front end: one file per command family.

pub mod batch;
pub mod demo;
pub mod doctor;
pub mod launch;
pub mod review_bench;
