//! OS identification and installed packages from captured files.

use pare_image::ImagePath;
use pare_layerfs::{Kind, MergedFs};
use serde::Serialize;

use crate::capture::{APK, DPKG, NODE, OS_RELEASE, PYTHON};

/// The distribution, from `/etc/os-release` (or `/usr/lib/os-release`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OsInfo {
    /// `ID` (`debian`, `alpine`, …).
    pub id: String,
    /// `VERSION_ID` (`12`, `3.19.1`), when set.
    pub version_id: Option<String>,
    /// `PRETTY_NAME` (`Debian GNU/Linux 12 (bookworm)`), when set.
    pub pretty_name: Option<String>,
}

/// One installed package.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Package {
    /// Package name as its database records it.
    pub name: String,
    /// Version string as recorded (may be empty for language packages without one).
    pub version: String,
    /// Where it was found (the database or manifest path).
    pub source: ImagePath,
}

/// Installed packages by ecosystem, each as found in the final filesystem.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Packages {
    /// From dpkg's `var/lib/dpkg/status` (or distroless `status.d/`), installed packages only.
    pub dpkg: Vec<Package>,
    /// From apk's `lib/apk/db/installed`.
    pub apk: Vec<Package>,
    /// Python distributions (`*.dist-info/METADATA`, `*.egg-info/PKG-INFO`).
    pub python: Vec<Package>,
    /// Node modules (`node_modules/NAME/package.json`, `@scope/NAME` included).
    pub node: Vec<Package>,
}

impl Packages {
    /// Packages of all ecosystems together.
    pub fn total(&self) -> usize {
        self.dpkg.len() + self.apk.len() + self.python.len() + self.node.len()
    }
}

/// Parses `/etc/os-release` syntax.
pub fn parse_os_release(text: &str) -> Option<OsInfo> {
    let mut id = None;
    let mut version_id = None;
    let mut pretty = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
        match k.trim() {
            "ID" => id = Some(v),
            "VERSION_ID" => version_id = Some(v),
            "PRETTY_NAME" => pretty = Some(v),
            _ => {}
        }
    }
    Some(OsInfo {
        id: id?,
        version_id,
        pretty_name: pretty,
    })
}

/// Packages from a dpkg status file (only those whose status is `install ok installed`).
pub fn parse_dpkg_status(text: &str, source: &ImagePath) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut name = None;
        let mut version = "";
        let mut installed = true;
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package:") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version:") {
                version = v.trim();
            } else if let Some(v) = line.strip_prefix("Status:") {
                installed = v.trim().ends_with(" installed");
            }
        }
        if let (Some(n), true) = (name, installed) {
            out.push(Package {
                name: n.to_string(),
                version: version.to_string(),
                source: source.clone(),
            });
        }
    }
    out
}

/// Packages from an apk `installed` database (`P:` name, `V:` version).
pub fn parse_apk_installed(text: &str, source: &ImagePath) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut name = None;
        let mut version = "";
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("P:") {
                name = Some(v);
            } else if let Some(v) = line.strip_prefix("V:") {
                version = v;
            }
        }
        if let Some(n) = name {
            out.push(Package {
                name: n.to_string(),
                version: version.to_string(),
                source: source.clone(),
            });
        }
    }
    out
}

fn name_version(body: &[u8], source: &ImagePath) -> Option<Package> {
    let s = String::from_utf8_lossy(body);
    let (n, v) = s.split_once('\0')?;
    Some(Package {
        name: n.to_string(),
        version: v.to_string(),
        source: source.clone(),
    })
}

pub(crate) fn collect(fs: &MergedFs) -> (Option<OsInfo>, Packages) {
    let mut pk = Packages::default();
    let mut os_etc = None;
    let mut os_lib = None;
    for (path, data) in fs.captured_files() {
        let Some((&tag, body)) = data.split_first() else {
            continue;
        };
        let src = ImagePath::from_rel(path);
        match tag {
            OS_RELEASE => {
                let info = parse_os_release(&String::from_utf8_lossy(body));
                if path == "etc/os-release" {
                    os_etc = info
                } else {
                    os_lib = info
                }
            }
            DPKG => pk
                .dpkg
                .extend(parse_dpkg_status(&String::from_utf8_lossy(body), &src)),
            APK => pk
                .apk
                .extend(parse_apk_installed(&String::from_utf8_lossy(body), &src)),
            PYTHON => pk.python.extend(name_version(body, &src)),
            NODE => pk.node.extend(name_version(body, &src)),
            _ => {}
        }
    }
    // /etc/os-release is usually a symlink to ../usr/lib/os-release.
    let etc_is_file = fs
        .get("etc/os-release")
        .is_some_and(|n| n.kind == Kind::File);
    let os = if etc_is_file {
        os_etc.or(os_lib)
    } else {
        os_lib.or(os_etc)
    };
    for v in [&mut pk.dpkg, &mut pk.apk, &mut pk.python, &mut pk.node] {
        v.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| a.version.cmp(&b.version))
                .then_with(|| a.source.cmp(&b.source))
        });
    }
    (os, pk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_skips_removed_packages() {
        let t = "Package: bash\nStatus: install ok installed\nVersion: 5.2-1\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13\n";
        let p = parse_dpkg_status(t, &ImagePath::from_rel("var/lib/dpkg/status"));
        let names: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(names, vec![("bash", "5.2-1"), ("zlib1g", "1:1.2.13")]);
    }

    #[test]
    fn apk_and_os_release() {
        let p = parse_apk_installed(
            "C:Q1x\nP:musl\nV:1.2.4-r2\n\nP:busybox\nV:1.36.1-r5\n",
            &ImagePath::from_rel("lib/apk/db/installed"),
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].name, "busybox");
        let os = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        )
        .unwrap();
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id.as_deref(), Some("12"));
    }
}
