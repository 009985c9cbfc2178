//! Errors of pare-lint.

use std::path::PathBuf;

/// A Dockerfile syntax error with its position (reported as DL1000).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The text is not a valid Dockerfile: an unknown instruction, an instruction without its
    /// required arguments, a malformed `FROM` or `ONBUILD`, or an unterminated heredoc.
    #[error("{line}:{column}: {message}")]
    Syntax {
        /// 1-based line where the problem is.
        line: usize,
        /// 1-based column where the problem is.
        column: usize,
        /// What is wrong, in words, on one line (reported as DL1000's message).
        message: String,
    },
}

impl ParseError {
    /// 1-based line of the error.
    pub fn line(&self) -> usize {
        match self {
            ParseError::Syntax { line, .. } => *line,
        }
    }
    /// 1-based column of the error.
    pub fn column(&self) -> usize {
        match self {
            ParseError::Syntax { column, .. } => *column,
        }
    }
    /// The message without the position.
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
    /// A Dockerfile or directory named on the command line could not be read or listed.
    #[error("cannot read {path}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A configuration file is not valid YAML, has an unknown key, or holds an invalid value
    /// (such as an unknown `failure-threshold`).
    #[error("invalid config {path}: {message}")]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong with it, on one line: a rule broken in words, or the YAML parser's
        /// text with `\r`/`\n` escaped, because it quotes the file's own bytes (an unknown key
        /// with newlines in it) and must stay one line wherever it is printed.
        message: String,
    },
    /// A flag or `HADOLINT_*` variable has a value pare does not accept (an unknown severity
    /// or output format, a `--shellcheck` binary that is not found).
    #[error("invalid value {value:?} for {what}")]
    Value {
        /// The flag or variable, possibly with a hint.
        what: String,
        /// The value given.
        value: String,
    },
    /// Writing the report to standard output failed (for example a closed pipe).
    #[error("cannot write report")]
    Write(#[from] std::io::Error),
}
