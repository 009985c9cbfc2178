//! Errors of pare-lint.

use std::path::PathBuf;

/// A Dockerfile syntax error with its position (reported as DL1000).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("{line}:{column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
}

impl ParseError {
    pub fn line(&self) -> usize {
        match self {
            ParseError::Syntax { line, .. } => *line,
        }
    }
    pub fn column(&self) -> usize {
        match self {
            ParseError::Syntax { column, .. } => *column,
        }
    }
    pub fn message(&self) -> &str {
        match self {
            ParseError::Syntax { message, .. } => message,
        }
    }
}

/// Errors reading inputs or configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LintError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("invalid value {value:?} for {what}")]
    Value { what: String, value: String },
    #[error("cannot write report")]
    Write(#[from] std::io::Error),
}
