//! Writing new signal weights into a copy of a signal-defs directory while
//! keeping everything else of the files — comments, order, formatting —
//! as it was (toml_edit edits the document in place), and describing the
//! change as a readable diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use intent_files::signal_defs::collect_toml;

/// Why the weights were not written.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// The output is the input.
    #[error("refusing to overwrite the input {}", .0.display())]
    WouldOverwrite(PathBuf),
    /// The output directory already holds files.
    #[error("{} exists and is not empty", .0.display())]
    NotEmpty(PathBuf),
    /// Copying the definitions failed.
    #[error("copying {} to {}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read, listed or written.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A definitions file is not TOML.
    #[error("{}", path.display())]
    Toml {
        path: PathBuf,
        #[source]
        source: toml_edit::TomlError,
    },
    /// Weights were given for signals the definitions do not have.
    #[error("no [[signal]] with id {ids:?} in {}", from.display())]
    UnknownSignals { ids: Vec<String>, from: PathBuf },
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> RewriteError + '_ {
    move |source| RewriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One changed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub file: PathBuf,
    pub line: usize,
    pub before: String,
    pub after: String,
}

/// Copies `from` to `to` (which must not exist yet or be empty) and sets
/// `weight` of each `[[signal]]` whose `id` is in `weights`. Returns the
/// changed lines. Signals not found are listed in the error.
pub fn write_weights(
    from: &Path,
    to: &Path,
    weights: &BTreeMap<String, f64>,
) -> Result<Vec<Change>, RewriteError> {
    if from.canonicalize().ok() == to.canonicalize().ok() && to.exists() {
        return Err(RewriteError::WouldOverwrite(from.to_path_buf()));
    }
    if to.exists() && std::fs::read_dir(to).map_err(io_at(to))?.next().is_some() {
        return Err(RewriteError::NotEmpty(to.to_path_buf()));
    }
    copy_tree(from, to).map_err(|source| RewriteError::Copy {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    })?;
    let mut paths = Vec::new();
    collect_toml(to, &mut paths).map_err(io_at(to))?;
    paths.sort();
    let mut found = std::collections::BTreeSet::new();
    let mut changes = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(io_at(&path))?;
        let mut doc: toml_edit::DocumentMut =
            text.parse().map_err(|source| RewriteError::Toml {
                path: path.clone(),
                source,
            })?;
        let mut touched = false;
        if let Some(signals) = doc
            .get_mut("signal")
            .and_then(|s| s.as_array_of_tables_mut())
        {
            for table in signals.iter_mut() {
                let Some(id) = table.get("id").and_then(|v| v.as_str()).map(str::to_string) else {
                    continue;
                };
                let Some(&weight) = weights.get(&id) else {
                    continue;
                };
                found.insert(id);
                match table.get_mut("weight").and_then(|v| v.as_value_mut()) {
                    Some(value) => {
                        // Keep the value's surrounding whitespace and comment.
                        let decor = value.decor().clone();
                        *value = toml_edit::Value::from(weight);
                        *value.decor_mut() = decor;
                    }
                    None => {
                        table.insert("weight", toml_edit::value(weight));
                    }
                }
                touched = true;
            }
        }
        if touched {
            let new_text = doc.to_string();
            let relative = path.strip_prefix(to).unwrap_or(&path).to_path_buf();
            changes.extend(diff_lines(&relative, &text, &new_text));
            std::fs::write(&path, new_text).map_err(io_at(&path))?;
        }
    }
    let missing: Vec<String> = weights
        .keys()
        .filter(|id| !found.contains(*id))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(RewriteError::UnknownSignals {
            ids: missing,
            from: from.to_path_buf(),
        });
    }
    Ok(changes)
}

/// Lines that differ between two texts of the same shape (values changed
/// in place); a line added at the end (a weight that was missing) counts too.
fn diff_lines(file: &Path, before: &str, after: &str) -> Vec<Change> {
    let (a, b): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    (0..a.len().max(b.len()))
        .filter_map(|i| {
            let (x, y) = (
                a.get(i).copied().unwrap_or(""),
                b.get(i).copied().unwrap_or(""),
            );
            (x != y).then(|| Change {
                file: file.to_path_buf(),
                line: i + 1,
                before: x.to_string(),
                after: y.to_string(),
            })
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_change_in_place_and_the_rest_stays() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../signal-defs");
        let out = tempfile::tempdir().unwrap();
        let target = out.path().join("tuned");
        let weights = BTreeMap::from([
            ("budget_confirmed".to_string(), 12.5),
            ("live_qa".to_string(), 7.25),
        ]);
        let changes = write_weights(&shipped, &target, &weights).unwrap();
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(changes.iter().all(|c| c.file == Path::new("signals.toml")));
        assert!(
            changes
                .iter()
                .any(|c| c.before == "weight = 20.0" && c.after == "weight = 12.5"),
            "{changes:?}"
        );
        let before = std::fs::read_to_string(shipped.join("signals.toml")).unwrap();
        let after = std::fs::read_to_string(target.join("signals.toml")).unwrap();
        assert_eq!(before.lines().count(), after.lines().count());
        // Comments survive.
        let comments = |t: &str| {
            t.lines()
                .filter(|l| l.trim_start().starts_with('#'))
                .count()
        };
        assert_eq!(comments(&before), comments(&after));
        // The result is a valid set with the new weights.
        let set = intent_files::load_dir(&target).unwrap();
        let budget = set.signal_idx("budget_confirmed").unwrap();
        assert_eq!(set.signals[budget as usize].weight, 12.5);
        // Never over the input, nor into a directory with files.
        assert!(matches!(
            write_weights(&shipped, &shipped, &weights),
            Err(RewriteError::WouldOverwrite(_))
        ));
        assert!(matches!(
            write_weights(&shipped, &target, &weights),
            Err(RewriteError::NotEmpty(_))
        ));
        let unknown = BTreeMap::from([("no_such_signal".to_string(), 1.0)]);
        let err = write_weights(&shipped, &out.path().join("x"), &unknown).unwrap_err();
        assert!(err.to_string().contains("no_such_signal"), "{err}");
    }
}
