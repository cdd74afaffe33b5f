//! Open documents and syntax.
