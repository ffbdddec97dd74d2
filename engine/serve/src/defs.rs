//! The signal definitions in force and where they come from: the signal-defs
//! directory, overlaid by the files of the NATS KV bucket (one key per file,
//! the key being the file's path relative to the directory). Any change is
//! compiled first and swapped in only when valid; the running set stays in
//! force otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use intent_core::signal_defs::{compile_sources, DefErrors, SignalSet, Source};
use intent_files::signal_defs::{collect_toml, read_dir_sources};

/// A fingerprint of the directory: every `.toml` file's path, size and
/// modification time.
pub type DirStamp = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The inputs of the definitions in force.
#[derive(Debug)]
pub struct DefsSource {
    dir: PathBuf,
    kv_label: String,
    /// KV overlay: relative path -> file text.
    kv_files: BTreeMap<String, String>,
    /// The directory as last read.
    dir_stamp: DirStamp,
}

impl DefsSource {
    pub fn new(dir: &Path, kv_bucket: &str) -> DefsSource {
        DefsSource {
            dir: dir.to_path_buf(),
            kv_label: format!("kv://{kv_bucket}"),
            kv_files: BTreeMap::new(),
            dir_stamp: Vec::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the directory and the overlay and compiles them.
    pub fn compile(&mut self) -> Result<SignalSet, DefErrors> {
        self.dir_stamp = stamp(&self.dir);
        let mut sources: Vec<Source> = match read_dir_sources(&self.dir) {
            Ok(sources) => sources,
            // An empty directory is fine when the bucket supplies the files.
            Err(_) if !self.kv_files.is_empty() && self.dir_stamp.is_empty() => Vec::new(),
            Err(errors) => return Err(errors),
        };
        for (key, text) in &self.kv_files {
            let shadowed = self.dir.join(key);
            sources.retain(|s| s.path != shadowed);
            sources.push(Source {
                path: PathBuf::from(format!("{}/{key}", self.kv_label)),
                text: text.clone(),
            });
        }
        compile_sources(&sources)
    }

    /// Whether the directory changed since it was last read.
    pub fn dir_changed(&self) -> bool {
        stamp(&self.dir) != self.dir_stamp
    }

    /// Records a KV put (`Some`) or delete (`None`); returns the overlay as it
    /// was, to restore when the result does not compile.
    pub fn set_kv(&mut self, key: &str, text: Option<String>) -> BTreeMap<String, String> {
        let before = self.kv_files.clone();
        match text {
            Some(text) => self.kv_files.insert(key.to_string(), text),
            None => self.kv_files.remove(key),
        };
        before
    }

    pub fn restore_kv(&mut self, files: BTreeMap<String, String>) {
        self.kv_files = files;
    }

    /// The overlay's keys.
    pub fn kv_keys(&self) -> Vec<String> {
        self.kv_files.keys().cloned().collect()
    }
}

/// Whether a KV key can name a definitions file.
pub fn is_defs_key(key: &str) -> bool {
    key.ends_with(".toml") && !key.split('/').any(|part| part.is_empty() || part == "..")
}

fn stamp(dir: &Path) -> DirStamp {
    let mut paths = Vec::new();
    if collect_toml(dir, &mut paths).is_err() {
        return Vec::new();
    }
    let mut out: DirStamp = paths
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let len = meta.as_ref().map(|m| m.len()).unwrap_or(0);
            let modified = meta.and_then(|m| m.modified().ok());
            (p, len, modified)
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../signal-defs")
    }

    fn copy_dir(from: &Path, to: &Path) {
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                std::fs::create_dir_all(&target).unwrap();
                copy_dir(&path, &target);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }

    #[test]
    fn kv_files_overlay_the_directory_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&shipped(), dir.path());
        let mut source = DefsSource::new(dir.path(), "intent-signals");
        let base = source.compile().unwrap();
        assert!(!source.dir_changed());

        let engine_toml = std::fs::read_to_string(dir.path().join("engine.toml")).unwrap();
        let changed = engine_toml.replacen("scale = 40.0", "scale = 123.0", 1);
        assert_ne!(changed, engine_toml, "engine.toml sets scale");
        let before = source.set_kv("engine.toml", Some(changed));
        let tuned = source.compile().unwrap();
        assert_ne!(tuned.version, base.version);
        assert_eq!(tuned.score.scale, 123.0);

        source.set_kv("engine.toml", Some("[score\nscale = 1".into()));
        let errors = source.compile().unwrap_err();
        let text = errors.to_string();
        assert!(text.contains("kv://intent-signals/engine.toml:1"), "{text}");
        source.restore_kv(before);
        assert_eq!(source.compile().unwrap().version, base.version);

        std::fs::write(dir.path().join("extra.toml"), "").unwrap();
        assert!(source.dir_changed());
    }

    #[test]
    fn only_relative_toml_keys_name_files() {
        assert!(is_defs_key("signals.toml"));
        assert!(is_defs_key("libraries/medical.toml"));
        for bad in ["notes.txt", "../x.toml", "/abs.toml", "a//b.toml"] {
            assert!(!is_defs_key(bad), "{bad}");
        }
    }
}
