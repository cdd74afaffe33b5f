//! Settings from files, the editor and the environment.

mod engine;
mod load;
pub use engine::Engine;
pub mod settings;
mod trust;
pub use load::{expand_home, load, user_config_path, Layer, Loaded, Sources, UNTRUSTED_KEYS};
pub use settings::{
    default_max_memory_bytes, Direction, EditsSettings, ExperimentSettings, IdeaSettings, LiteratureSettings,
    LlmSettings, NoveltySettings, Price, ProviderKind, ReviewExample, ReviewMode, ReviewSettings,
    RunSettings, RunnerKind, SearchMode, Settings, SlurmSettings, TreeSettings, Vision, WriteupSettings,
};
pub use trust::{trust_folder, TrustError};
