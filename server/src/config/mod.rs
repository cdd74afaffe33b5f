//! Settings from files, the editor and the environment.

mod settings;
pub use settings::{IdeaSettings, LlmSettings, Price, ProviderKind, RunSettings, Settings};
