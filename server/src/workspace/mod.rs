//! Open documents, positions in the negotiated encoding, and syntax.

pub mod document;
pub mod memory;
pub mod position;
pub mod python;
pub mod syntax;

pub use document::{Change, DocError, Document, Language};
pub use position::{Pos, PosEncoding};
