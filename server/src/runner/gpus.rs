//! Which GPUs runs may use: the configured list (`run.gpus`), else what `nvidia-smi`
//! reports. No `nvidia-smi`, a failing one, or one that lists no devices means CPU only,
//! with the reason kept for the user.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::RunSettings;

/// The query used for detection (`index,name,memory.total`, CSV with a header).
pub const NVIDIA_SMI_QUERY: &[&str] = &["--query-gpu=index,name,memory.total", "--format=csv"];
/// How long `nvidia-smi` may take before it counts as failing.
pub const NVIDIA_SMI_TIMEOUT: Duration = Duration::from_secs(15);

/// One GPU a run can be given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gpu {
    /// What goes into `CUDA_VISIBLE_DEVICES` (an index such as "0", or a UUID).
    pub index: String,
    /// The model name, when known (not from config).
    pub name: Option<String>,
    pub memory_mib: Option<u64>,
}

impl Gpu {
    pub fn from_index(index: impl Into<String>) -> Self {
        Self {
            index: index.into(),
            name: None,
            memory_mib: None,
        }
    }
}

/// Where the GPU list came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuSource {
    /// `run.gpus` (an empty list: CPU only by choice).
    Config,
    /// `nvidia-smi` listed them.
    NvidiaSmi,
    /// None found; why (no `nvidia-smi`, it failed, it listed no devices).
    None(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuDetection {
    pub gpus: Vec<Gpu>,
    pub source: GpuSource,
}

impl GpuDetection {
    /// One line for a log or the terminal.
    pub fn describe(&self) -> String {
        let list = || {
            self.gpus
                .iter()
                .map(|g| match &g.name {
                    Some(n) => format!("{} ({n})", g.index),
                    None => g.index.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.source {
            GpuSource::Config if self.gpus.is_empty() => "CPU only (run.gpus = [])".into(),
            GpuSource::Config => format!("GPUs from run.gpus: {}", list()),
            GpuSource::NvidiaSmi => format!("GPUs from nvidia-smi: {}", list()),
            GpuSource::None(why) => format!("CPU only: {why}"),
        }
    }
}

/// Parses the CSV `nvidia-smi --query-gpu=index,name,memory.total` prints, with or
/// without the header line and units (`81559 MiB` or `81559`). A name containing commas
/// is kept whole (the first field is the index, the last the memory). Lines that are not
/// GPU rows (a header, "No devices were found") are skipped; Err when text remained but
/// no line was a GPU row.
pub fn parse_nvidia_smi(text: &str) -> Result<Vec<Gpu>, String> {
    let mut gpus = Vec::new();
    let mut other = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let row = (fields.len() >= 3)
            .then(|| {
                let index = fields[0];
                if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let name = fields[1..fields.len() - 1].join(", ");
                let mem = fields[fields.len() - 1];
                let mem = mem
                    .strip_suffix("MiB")
                    .map(str::trim)
                    .unwrap_or(mem)
                    .parse::<u64>()
                    .ok();
                Some(Gpu {
                    index: index.to_string(),
                    name: (!name.is_empty()).then_some(name),
                    memory_mib: mem,
                })
            })
            .flatten();
        match row {
            Some(g) => gpus.push(g),
            None if line.to_ascii_lowercase().starts_with("index") => {}
            None => other.push(line),
        }
    }
    if gpus.is_empty() && !other.is_empty() {
        return Err(other.join(" ").chars().take(200).collect());
    }
    Ok(gpus)
}

/// Runs `program` (normally `nvidia-smi`) with [`NVIDIA_SMI_QUERY`].
pub async fn detect_with(program: &str) -> GpuDetection {
    let none = |why: String| GpuDetection {
        gpus: Vec::new(),
        source: GpuSource::None(why),
    };
    let out = tokio::time::timeout(
        NVIDIA_SMI_TIMEOUT,
        tokio::process::Command::new(program)
            .args(NVIDIA_SMI_QUERY)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await;
    let out = match out {
        Err(_) => return none(format!("{program} did not answer within {NVIDIA_SMI_TIMEOUT:?}")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return none(format!("{program} not found"))
        }
        Ok(Err(e)) => return none(format!("cannot run {program}: {e}")),
        Ok(Ok(o)) => o,
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let msg = [stdout.trim(), stderr.trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let msg: String = msg.chars().take(200).collect();
        return none(format!("{program} failed ({}): {msg}", out.status));
    }
    match parse_nvidia_smi(&stdout) {
        Ok(g) if g.is_empty() => none(format!("{program} listed no GPUs")),
        Ok(gpus) => GpuDetection {
            gpus,
            source: GpuSource::NvidiaSmi,
        },
        Err(text) => none(format!("{program} printed no GPU rows: {text}")),
    }
}

/// `run.gpus` when set, else `nvidia-smi`.
pub async fn detect(settings: &RunSettings) -> GpuDetection {
    match &settings.gpus {
        Some(list) => GpuDetection {
            gpus: list.iter().map(Gpu::from_index).collect(),
            source: GpuSource::Config,
        },
        None => detect_with("nvidia-smi").await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Constructed (not recorded) in the format nvidia-smi 550 prints for
    /// `--query-gpu=index,name,memory.total --format=csv` on a two-H100 machine.
    const H100_CSV: &str = "index, name, memory.total [MiB]\n\
        0, NVIDIA H100 80GB HBM3, 81559 MiB\n\
        1, NVIDIA H100 80GB HBM3, 81559 MiB\n";

    #[test]
    fn parses_header_and_units() {
        let g = parse_nvidia_smi(H100_CSV).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].index, "1");
        assert_eq!(g[0].name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
        assert_eq!(g[0].memory_mib, Some(81559));
    }

    #[test]
    fn parses_noheader_nounits_and_crlf() {
        let g = parse_nvidia_smi("0, Tesla T4, 15360\r\n\r\n1, Tesla T4, 15360\r\n").unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].memory_mib, Some(15360));
        assert_eq!(g[1].name.as_deref(), Some("Tesla T4"));
    }

    #[test]
    fn odd_rows() {
        // A name with a comma, and memory reported as "[N/A]".
        let g = parse_nvidia_smi("3, Weird, GPU, [N/A]\n").unwrap();
        assert_eq!(g[0].index, "3");
        assert_eq!(g[0].name.as_deref(), Some("Weird, GPU"));
        assert_eq!(g[0].memory_mib, None);
        assert_eq!(parse_nvidia_smi("").unwrap(), vec![]);
        assert_eq!(
            parse_nvidia_smi("index, name, memory.total [MiB]\n").unwrap(),
            vec![]
        );
        let e = parse_nvidia_smi("No devices were found\n").unwrap_err();
        assert!(e.contains("No devices"), "{e}");
    }

    #[tokio::test]
    async fn missing_or_failing_nvidia_smi_means_cpu() {
        let d = detect_with("/nonexistent/nvidia-smi").await;
        assert!(d.gpus.is_empty());
        assert!(
            matches!(&d.source, GpuSource::None(w) if w.contains("not found")),
            "{d:?}"
        );
        let d = detect_with("false").await;
        assert!(
            matches!(&d.source, GpuSource::None(w) if w.contains("failed")),
            "{d:?}"
        );
        assert!(d.describe().starts_with("CPU only"));
    }

    #[tokio::test]
    async fn config_wins() {
        let s = RunSettings {
            gpus: Some(vec!["0".into(), "1".into()]),
            ..RunSettings::default()
        };
        let d = detect(&s).await;
        assert_eq!(d.source, GpuSource::Config);
        assert_eq!(d.gpus, vec![Gpu::from_index("0"), Gpu::from_index("1")]);
        assert_eq!(d.describe(), "GPUs from run.gpus: 0, 1");
    }
}
