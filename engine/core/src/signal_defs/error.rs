//! What a refused load says: every problem at once, each with its file and
//! line, so an analyst fixes them in one pass.

use std::fmt;
use std::path::PathBuf;

/// One problem found in the definitions, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct DefError {
    /// The file the problem is in (empty for a problem of the whole set).
    pub file: PathBuf,
    /// 1-based line of the problem (0 when it has no place).
    pub line: usize,
    /// What is wrong, naming the field.
    pub message: String,
}

/// Every problem found in one load, all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefErrors(
    /// The problems, in the order they were found.
    pub Vec<DefError>,
);

impl fmt::Display for DefErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DefErrors {}
