//! Trusting a folder: its absolute path added to `trusted_folders` in the user-level
//! config file. The file is the user's, so it is edited in place (comments, order and
//! layout kept), never rewritten from parsed values.

use std::path::Path;

use toml_edit::{Array, DocumentMut, Item, Value};

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{0}: not valid TOML, so it was not changed ({1})")]
    NotToml(String, String),
    #[error("{0}: trusted_folders is not a list of paths, so it was not changed")]
    NotAList(String),
    #[error("{0} is not an absolute path that TOML can hold")]
    BadFolder(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Adds `folder` to `trusted_folders` in the config file at `config` (created when
/// missing). Returns whether it was added: `false` when the list already held it.
pub fn trust_folder(config: &Path, folder: &Path) -> Result<bool, TrustError> {
    let entry = match folder.to_str() {
        Some(s) if folder.is_absolute() => s.to_owned(),
        _ => return Err(TrustError::BadFolder(folder.display().to_string())),
    };
    if let Some(dir) = config.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    crate::fsutil::update_shared(config, |current| {
        let text = current.unwrap_or_default();
        let new = add_entry(&text, &entry).map_err(|e| match e {
            AddError::NotToml(why) => TrustError::NotToml(config.display().to_string(), why),
            AddError::NotAList => TrustError::NotAList(config.display().to_string()),
        })?;
        let added = new.is_some();
        Ok((new, added))
    })
}

enum AddError {
    NotToml(String),
    NotAList,
}

/// The config text with `entry` in `trusted_folders`, or `None` when it is there already.
fn add_entry(text: &str, entry: &str) -> Result<Option<String>, AddError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| AddError::NotToml(e.message().to_owned()))?;
    let root = doc.as_table_mut();
    if !root.contains_key("trusted_folders") {
        // A top-level key goes above the first `[section]` whatever its place in the table.
        root.insert("trusted_folders", Item::Value(Value::Array(Array::new())));
    }
    let list = root
        .get_mut("trusted_folders")
        .and_then(Item::as_array_mut)
        .ok_or(AddError::NotAList)?;
    if list.iter().any(|v| v.as_str() == Some(entry)) {
        return Ok(None);
    }
    list.push(entry);
    Ok(Some(doc.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_gets_the_list() {
        let out = add_entry("", "/p/a").ok().flatten().unwrap();
        assert_eq!(out.trim(), r#"trusted_folders = ["/p/a"]"#);
    }

    #[test]
    fn comments_layout_and_other_keys_are_kept() {
        let text = "# my settings\n[llm]\nmodel = \"m\" # the model\n\n[run]\npython = \"py\"\n";
        let out = add_entry(text, "/p/a").ok().flatten().unwrap();
        assert!(out.contains("# my settings\n"), "{out}");
        assert!(out.contains("model = \"m\" # the model\n"), "{out}");
        assert!(out.contains("[run]\npython = \"py\"\n"), "{out}");
        let parsed: toml::Table = out.parse().unwrap();
        assert_eq!(parsed["trusted_folders"].as_array().unwrap().len(), 1);
        assert_eq!(parsed["llm"]["model"].as_str(), Some("m"));
    }

    #[test]
    fn an_existing_list_is_extended_once() {
        let text = "trusted_folders = [\n  \"/p/a\", # work\n]\n";
        let out = add_entry(text, "/p/b").ok().flatten().unwrap();
        assert!(out.contains("# work"), "{out}");
        let parsed: toml::Table = out.parse().unwrap();
        let list: Vec<_> = parsed["trusted_folders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(list, ["/p/a", "/p/b"]);
        assert!(add_entry(&out, "/p/b").ok().unwrap().is_none());
    }

    #[test]
    fn a_broken_file_or_a_wrong_type_is_left_alone() {
        assert!(matches!(add_entry("llm = [", "/p"), Err(AddError::NotToml(_))));
        assert!(matches!(
            add_entry("trusted_folders = \"/p\"", "/q"),
            Err(AddError::NotAList)
        ));
    }

    #[test]
    fn the_file_is_written_and_read_back_as_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("sub").join("config.toml");
        std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        std::fs::write(&cfg, "# keep me\n").unwrap();
        assert!(trust_folder(&cfg, Path::new("/p/a")).unwrap());
        assert!(!trust_folder(&cfg, Path::new("/p/a")).unwrap());
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert!(text.contains("# keep me\n"), "{text}");
        assert!(trust_folder(&cfg, Path::new("relative")).is_err());
    }
}
