//! The files a profile is written as: `profile.json`, `seccomp.json`, `apparmor.profile`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pare_trace::{AccessKind, Profile, SCHEMA_VERSION, SensorReport};

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

/// Reads a `profile.json`, refusing one written with another schema version than
/// [`SCHEMA_VERSION`] (also when the rest of it does not parse as this version's shape).
pub fn read_profile(path: &Path) -> Result<Profile, ProfileError> {
    let text = std::fs::read(path).map_err(io_err(path))?;
    let version_err = |found: u64| ProfileError::ProfileVersion {
        path: path.into(),
        found,
        supported: SCHEMA_VERSION,
    };
    match serde_json::from_slice::<Profile>(&text) {
        Ok(p) if p.version == SCHEMA_VERSION => Ok(p),
        Ok(p) => Err(version_err(p.version.into())),
        Err(source) => {
            let version = serde_json::from_slice::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("version")?.as_u64());
            match version {
                Some(v) if v != u64::from(SCHEMA_VERSION) => Err(version_err(v)),
                _ => Err(ProfileError::ProfileJson {
                    path: path.into(),
                    source,
                }),
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_of_another_schema_version_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile {
            version: SCHEMA_VERSION,
            ..Default::default()
        };
        let written = write_artifacts(&profile, &[], dir.path()).unwrap();
        assert_eq!(read_profile(&written.profile_json).unwrap(), profile);

        // A newer pare's profile, whether or not the rest still parses as this version's.
        let path = dir.path().join("newer.json");
        let mut v = serde_json::to_value(&profile).unwrap();
        v["version"] = (SCHEMA_VERSION + 1).into();
        std::fs::write(&path, v.to_string()).unwrap();
        let e = read_profile(&path).unwrap_err();
        assert!(matches!(e, ProfileError::ProfileVersion { .. }), "{e:?}");
        let line = e.to_string();
        assert!(line.starts_with(&path.display().to_string()), "{line}");
        assert!(
            line.contains(&format!("version {}", SCHEMA_VERSION + 1))
                && line.contains(&format!("reads version {SCHEMA_VERSION}"))
                && !line.contains('\n'),
            "{line}"
        );
        v["sensor"] = "a shape from the future".into();
        std::fs::write(&path, v.to_string()).unwrap();
        assert!(matches!(
            read_profile(&path).unwrap_err(),
            ProfileError::ProfileVersion { found, .. } if found == u64::from(SCHEMA_VERSION) + 1
        ));

        // Not a profile at all: a JSON error naming the file, the parser's words as cause.
        std::fs::write(&path, "{\"version\": 1, \"image\": 5}").unwrap();
        let e = read_profile(&path).unwrap_err();
        assert!(matches!(e, ProfileError::ProfileJson { .. }), "{e:?}");
        assert_eq!(e.to_string(), path.display().to_string());
        assert!(std::error::Error::source(&e).is_some());
    }
}
