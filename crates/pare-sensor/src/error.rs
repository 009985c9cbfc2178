use std::path::PathBuf;

/// Everything that can go wrong in the sensor itself (never the app's own failures).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SensorError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("user {spec:?}: {reason}")]
    User { spec: String, reason: String },
    #[error("{what}: {errno}")]
    Sys {
        what: String,
        errno: nix::errno::Errno,
    },
    #[error("{command}: {reason}")]
    Command {
        command: String,
        reason: String,
        code: i32,
    },
    #[error("writing report")]
    Json(#[from] serde_json::Error),
}

impl SensorError {
    pub fn sys(what: impl Into<String>, errno: nix::errno::Errno) -> Self {
        SensorError::Sys {
            what: what.into(),
            errno,
        }
    }
}
