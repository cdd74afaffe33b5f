//! The language server: a thin layer over the core.
