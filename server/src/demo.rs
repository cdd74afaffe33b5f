//! The offline demo: the bundled template and its recorded model conversation,
//! written out to a folder of the user's so nothing in the install is changed.

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

/// The demo template, embedded so `aisci demo` works from any directory.
static DEMO_TEMPLATE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../templates/tiny_mlp");

/// The recording's path inside the template.
pub const RECORDING: &str = ".aisci/replay/ideas.json";
pub const DEMO_IDEAS: u32 = 2;
pub const DEMO_REFLECTIONS: u32 = 3;

pub struct DemoProject {
    pub template: PathBuf,
    pub recording: PathBuf,
}

/// Writes the demo template to `out/tiny_mlp` (or a new temporary folder).
pub fn materialize(out: Option<&Path>) -> std::io::Result<DemoProject> {
    let base = match out {
        Some(p) => {
            std::fs::create_dir_all(p)?;
            p.to_path_buf()
        }
        None => tempfile::Builder::new().prefix("aisci-demo-").tempdir()?.keep(),
    };
    let template = base.join("tiny_mlp");
    if template.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists; choose another --out", template.display()),
        ));
    }
    std::fs::create_dir_all(&template)?;
    DEMO_TEMPLATE.extract(&template)?;
    let recording = template.join(RECORDING);
    Ok(DemoProject { template, recording })
}
