//! The way forward for a build error, printed by the binary as one `hint:` line.

use crate::BuildError;

impl BuildError {
    /// A way forward, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            BuildError::NoReport { .. } => Some(
                "run `pare build IMAGE` first (it writes pare-build/report.json), \
                 or point --report at a build's report.json or artifacts directory"
                    .into(),
            ),
            BuildError::Reference(e) => pare_source::hint::reference_hint(e),
            BuildError::Source(e) => e.hint(),
            BuildError::Profile(e) => e.hint(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn why_without_a_report_says_to_build_first() {
        let dir = tempfile::tempdir().unwrap();
        let e = crate::why(&dir.path().join("pare-build"), "/bin/sh").unwrap_err();
        assert!(matches!(e, crate::BuildError::NoReport { .. }), "{e}");
        assert!(e.hint().unwrap().contains("pare build"));
        // A directory without report.json is the same.
        let e = crate::why(dir.path(), "/bin/sh").unwrap_err();
        assert!(e.to_string().contains("report.json"), "{e}");
    }
}
