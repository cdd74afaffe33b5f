//! Prompts and stages of the research loop.
