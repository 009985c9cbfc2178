//! The way forward for a profile error, printed by the binary as one `hint:` line.

use crate::ProfileError;

impl ProfileError {
    /// A way forward, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            ProfileError::Reference(e) => pare_source::hint::reference_hint(e),
            ProfileError::Source(e) => e.hint(),
            ProfileError::NotReady { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }
}
