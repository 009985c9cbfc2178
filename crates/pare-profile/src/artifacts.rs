//! The files a profile is written as: `profile.json`, `seccomp.json`, `apparmor.profile`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pare_trace::{AccessKind, Profile, SensorReport};

use crate::{Artifacts, ProfileError, apparmor, io_err, seccomp};

/// Writes `profile.json`, `seccomp.json` and `apparmor.profile` into `dir` (created if needed).
pub fn write_artifacts(
    profile: &Profile,
    ports: &[u16],
    dir: &Path,
) -> Result<Artifacts, ProfileError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let write = |name: &str, data: &[u8]| -> Result<PathBuf, ProfileError> {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, data).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        Ok(path)
    };
    let mut json = serde_json::to_vec_pretty(profile).expect("profile serializes");
    json.push(b'\n');
    let profile_json = write("profile.json", &json)?;
    let mut sj = seccomp::seccomp_json(&profile.sensor.syscalls).into_bytes();
    sj.push(b'\n');
    let seccomp_json = write("seccomp.json", &sj)?;
    let apparmor_name = apparmor::profile_name(&profile.image.reference);
    let aa = apparmor::apparmor_profile(
        &apparmor_name,
        &profile.image.reference,
        &profile.sensor,
        ports,
    );
    let apparmor_profile = write("apparmor.profile", aa.as_bytes())?;
    Ok(Artifacts {
        profile_json,
        seccomp_json,
        apparmor_profile,
        apparmor_name,
    })
}

/// Reads a `profile.json`.
pub fn read_profile(path: &Path) -> Result<Profile, ProfileError> {
    let text = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&text).map_err(|source| ProfileError::ProfileJson {
        path: path.into(),
        source,
    })
}

/// Files per access kind, for reports.
pub fn kind_counts(report: &SensorReport) -> BTreeMap<AccessKind, usize> {
    let mut m = BTreeMap::new();
    for f in report.files.values() {
        for k in &f.kinds {
            *m.entry(*k).or_insert(0) += 1;
        }
    }
    m
}

