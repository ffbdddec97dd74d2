//! Signal definitions from a directory: every `*.toml` file below it, read
//! in path order and compiled by the core. A directory that cannot be read,
//! holds no definitions or holds a bad file is refused as a whole, with each
//! file and line, so the caller's running definitions stay in force.

use std::path::{Path, PathBuf};

use intent_core::signal_defs::{compile_sources, DefError, DefErrors, SignalSet, Source};

/// Reads every `*.toml` file below `dir` (sorted by path) and compiles them.
pub fn load_dir(dir: &Path) -> Result<SignalSet, DefErrors> {
    compile_sources(&read_dir_sources(dir)?)
}

/// Reads every `.toml` file under `dir` (recursively), sorted by path.
pub fn read_dir_sources(dir: &Path) -> Result<Vec<Source>, DefErrors> {
    let mut paths = Vec::new();
    collect_toml(dir, &mut paths).map_err(|e| {
        DefErrors(vec![DefError {
            file: dir.to_path_buf(),
            line: 0,
            message: format!("cannot read directory: {e}"),
        }])
    })?;
    paths.sort();
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(Source { path, text }),
            Err(e) => errors.push(DefError {
                file: path,
                line: 0,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(DefErrors(errors));
    }
    if sources.is_empty() {
        return Err(DefErrors(vec![DefError {
            file: dir.to_path_buf(),
            line: 0,
            message: "no .toml signal definitions found".into(),
        }]));
    }
    Ok(sources)
}

/// Paths of the `.toml` files under `dir`, recursively (unsorted).
pub fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_toml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}
