//! Images in prompts: the [`Image`] a [`super::Message`] carries, how its type is told
//! from its bytes, and which models are known to look at images (`llm.vision = "auto"`).

use std::io::{self, Read};
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest image aisci sends, in bytes (20 MB, decimal).
///
/// It is the providers' own ceiling: OpenAI refuses images over 20 MB each (and 50 MB of
/// image bytes per request); Anthropic's API takes at most 5 MB per image within a 32 MB
/// request, and answers a larger one with a 400 that aisci reports as it comes. Anything
/// bigger can only fail after a slow upload (base64 makes it a third larger again), so it
/// is refused before it is read.
pub const MAX_IMAGE_BYTES: u64 = 20_000_000;

/// One image of a prompt: its media type (`image/png`, `image/jpeg`, `image/gif`,
/// `image/webp`) and its bytes. Serialised with the bytes as standard base64.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub media_type: String,
    #[serde(serialize_with = "base64_out", deserialize_with = "base64_in")]
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Image {
    /// The type and size, not megabytes of bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("media_type", &self.media_type)
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl Image {
    /// Reads an image file. The media type comes from the file's first bytes (PNG, JPEG,
    /// GIF or WebP; the extension is not trusted); anything else, and any file over
    /// [`MAX_IMAGE_BYTES`], is refused with an `InvalidData` / `FileTooLarge` error that
    /// names the file.
    pub fn from_file(path: impl AsRef<Path>) -> io::Result<Image> {
        let path = path.as_ref();
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let file = std::fs::File::open(path).map_err(named)?;
        let len = file.metadata().map_err(named)?.len();
        if len > MAX_IMAGE_BYTES {
            return Err(named(too_large(len)));
        }
        // A file that grows while it is read still stops one byte past the limit.
        let mut data = Vec::with_capacity(len as usize);
        file.take(MAX_IMAGE_BYTES + 1)
            .read_to_end(&mut data)
            .map_err(named)?;
        Image::from_bytes(data).map_err(named)
    }

    /// An image from bytes already in memory, with the same checks as [`Image::from_file`].
    pub fn from_bytes(data: Vec<u8>) -> io::Result<Image> {
        if data.len() as u64 > MAX_IMAGE_BYTES {
            return Err(too_large(data.len() as u64));
        }
        let media_type = sniff_media_type(&data).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "not a PNG, JPEG, GIF or WebP image (the only kinds the model providers accept)",
            )
        })?;
        Ok(Image {
            media_type: media_type.to_owned(),
            data,
        })
    }

    /// The bytes as standard base64 (with padding), as both wire formats want them.
    pub fn base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.data)
    }

    /// `data:<media type>;base64,<bytes>`: OpenAI's `image_url.url` for inline images.
    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.media_type, self.base64())
    }
}

fn too_large(len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!(
            "image is {len} bytes; at most {MAX_IMAGE_BYTES} (20 MB) are sent, the providers' per-image limit \
             (OpenAI 20 MB, Anthropic 5 MB): shrink or re-encode it"
        ),
    )
}

/// The media type the bytes start like, if it is one every supported provider accepts
/// (PNG, JPEG, GIF, WebP).
pub fn sniff_media_type(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if b.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if b.len() >= 12 && b.starts_with(b"RIFF") && &b[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn base64_out<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
}

fn base64_in<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(serde::de::Error::custom)
}

/// Whether `model` belongs to a family known to accept images; what `llm.vision = "auto"`
/// decides by. Case is ignored, and so is a `vendor/` prefix for the hosted families.
///
/// - OpenAI: `gpt-4o*` (not its audio, realtime, transcribe and tts variants),
///   `gpt-4.1*`, `gpt-4-turbo` and its dated snapshots (not `gpt-4-turbo-preview`),
///   `gpt-5*`, `o1` (not `o1-mini`, `o1-preview`), `o3` (not `o3-mini`), `o4-mini`.
/// - Anthropic: `claude-3*`, `claude-*-4*` (so `claude-sonnet-4*`, `claude-opus-4*`,
///   `claude-haiku-4*`).
/// - Google: `gemini-1.5*`, `gemini-2*`, `gemini-3*`.
/// - Open models whose name contains `vl` (Qwen-VL, InternVL, CogVLM; not the word
///   `vllm`), `vision`, `llava`, `pixtral`, `gemma-3`/`gemma3` or `llama-4`/`llama4`.
///
/// Everything else is taken to be text only; `llm.vision = "yes"` or `"no"` overrides.
pub fn known_vision_model(model: &str) -> bool {
    let full = model.trim().to_ascii_lowercase();
    let open = full.replace("vllm", "");
    if [
        "vl", "vision", "llava", "pixtral", "gemma-3", "gemma3", "llama-4", "llama4",
    ]
    .iter()
    .any(|s| open.contains(s))
    {
        return true;
    }
    let m = full.rsplit('/').next().unwrap_or(&full);
    // `name` exactly, or `name-…` (a dated snapshot or a size).
    let family = |p: &str| {
        m.strip_prefix(p)
            .is_some_and(|r| r.is_empty() || r.starts_with('-'))
    };
    let openai = (m.starts_with("gpt-4o")
        && !["audio", "realtime", "transcribe", "tts"]
            .iter()
            .any(|x| m.contains(x)))
        || m.starts_with("gpt-4.1")
        || m == "gpt-4-turbo"
        || m.starts_with("gpt-4-turbo-2")
        || m.starts_with("gpt-5")
        || (family("o1") && !m.starts_with("o1-mini") && !m.starts_with("o1-preview"))
        || (family("o3") && !m.starts_with("o3-mini"))
        || family("o4-mini");
    let google = ["gemini-1.5", "gemini-2", "gemini-3"]
        .iter()
        .any(|p| m.starts_with(p));
    openai || google || is_claude_with_vision(m)
}

/// `claude-3*` and `claude-<name>-4*`, wherever the name starts (Bedrock spells it
/// `anthropic.claude-3-5-sonnet-…`).
fn is_claude_with_vision(m: &str) -> bool {
    let Some(at) = m.find("claude-") else {
        return false;
    };
    let rest = &m[at + "claude-".len()..];
    rest.starts_with('3') || rest.split('-').skip(1).any(|part| part.starts_with('4'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_comes_from_the_magic_bytes() {
        let cases: &[(&[u8], &str)] = &[
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
            (
                &[0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F'],
                "image/jpeg",
            ),
            (b"GIF89a\x01\0\x01\0", "image/gif"),
            (b"GIF87a\x01\0\x01\0", "image/gif"),
            (b"RIFF\x24\0\0\0WEBPVP8 ", "image/webp"),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (i, (bytes, want)) in cases.iter().enumerate() {
            // A misleading extension changes nothing.
            let path = dir.path().join(format!("figure{i}.txt"));
            std::fs::write(&path, bytes).unwrap();
            let img = Image::from_file(&path).unwrap();
            assert_eq!(img.media_type, *want);
            assert_eq!(img.data, *bytes);
        }
    }

    #[test]
    fn non_images_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("plot.png", b"%PDF-1.7\n".as_slice()),
            ("empty.png", b"".as_slice()),
            ("short.webp", b"RIFF\0\0\0\0WEB".as_slice()),
            ("riff.png", b"RIFF\0\0\0\0WAVEfmt ".as_slice()),
            (
                "svg.png",
                b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".as_slice(),
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let e = Image::from_file(&path).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{name}");
            let text = e.to_string();
            assert!(
                text.contains(name) && text.contains("not a PNG, JPEG, GIF or WebP"),
                "{text}"
            );
        }
        let e = Image::from_file(dir.path().join("missing.png")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("missing.png"), "{e}");
    }

    #[test]
    fn images_over_the_limit_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.png");
        let f = std::fs::File::create(&path).unwrap();
        // A sparse file: the size is checked, the bytes are never read.
        f.set_len(MAX_IMAGE_BYTES + 1).unwrap();
        let e = Image::from_file(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        let text = e.to_string();
        assert!(text.contains("huge.png") && text.contains("20 MB"), "{text}");

        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(MAX_IMAGE_BYTES as usize + 1, 0);
        assert_eq!(
            Image::from_bytes(big).unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        let mut at_limit = b"\x89PNG\r\n\x1a\n".to_vec();
        at_limit.resize(MAX_IMAGE_BYTES as usize, 0);
        assert!(Image::from_bytes(at_limit).is_ok());
    }

    #[test]
    fn serialises_bytes_as_base64() {
        let img = Image {
            media_type: "image/png".into(),
            data: b"\x89PNG\r\n\x1a\n".to_vec(),
        };
        let v = serde_json::to_value(&img).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"media_type": "image/png", "data": "iVBORw0KGgo="})
        );
        assert_eq!(serde_json::from_value::<Image>(v).unwrap(), img);
        assert_eq!(img.data_url(), "data:image/png;base64,iVBORw0KGgo=");
        assert!(serde_json::from_str::<Image>(r#"{"media_type":"image/png","data":"not base64!"}"#).is_err());
        assert_eq!(
            format!("{img:?}"),
            r#"Image { media_type: "image/png", bytes: 8 }"#
        );
    }

    #[test]
    fn vision_families() {
        for m in [
            "gpt-4o",
            "gpt-4o-2024-11-20",
            "gpt-4o-mini",
            "openai/gpt-4o",
            "gpt-4.1-nano",
            "gpt-4-turbo",
            "gpt-4-turbo-2024-04-09",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5.2",
            "o1",
            "o1-2024-12-17",
            "o3",
            "o3-2025-04-16",
            "o4-mini",
            "o4-mini-2025-04-16",
            "claude-3-5-sonnet-20241022",
            "claude-3-haiku-20240307",
            "claude-sonnet-4-5",
            "claude-opus-4-1-20250805",
            "claude-haiku-4-5",
            "anthropic/claude-sonnet-4",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "gemini-2.5-flash",
            "gemini-1.5-pro",
            "Qwen/Qwen2.5-VL-7B-Instruct",
            "OpenGVLab/InternVL2-8B",
            "llava-v1.6-mistral-7b",
            "llama3.2-vision",
            "meta-llama/Llama-3.2-11B-Vision-Instruct",
            "mistralai/Pixtral-12B-2409",
            "google/gemma-3-27b-it",
            "gemma3:27b",
            "meta-llama/Llama-4-Scout-17B-16E-Instruct",
            "llama4:scout",
        ] {
            assert!(known_vision_model(m), "{m}");
        }
        for m in [
            "o1-mini",
            "o1-preview",
            "o3-mini",
            "o3-mini-2025-01-31",
            "gpt-4",
            "gpt-4-turbo-preview",
            "gpt-3.5-turbo",
            "gpt-4o-audio-preview",
            "gpt-4o-realtime-preview",
            "gpt-4o-mini-tts",
            "claude-2.1",
            "claude-instant-1.2",
            "gemini-pro",
            "deepseek-chat",
            "deepseek-reasoner",
            "deepseek/deepseek-r1",
            "meta-llama/Llama-3.1-8B-Instruct",
            "llama3",
            "local-model",
            "my-vllm-served-model",
            "replay",
            "",
        ] {
            assert!(!known_vision_model(m), "{m}");
        }
    }
}
