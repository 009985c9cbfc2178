//! Which small files xray keeps while layers stream by. Captured bytes are tagged by their
//! first byte; secrets are reduced to a reason and never stored.

use pare_layerfs::Capture;

pub(crate) const OS_RELEASE: u8 = b'O';
pub(crate) const DPKG: u8 = b'D';
pub(crate) const APK: u8 = b'A';
pub(crate) const PYTHON: u8 = b'P';
pub(crate) const NODE: u8 = b'N';
pub(crate) const SECRET: u8 = b'S';

const SMALL: u64 = 64 * 1024;
/// Private keys are looked for in every file up to this size.
const KEY_SNIFF_MAX: u64 = 16 * 1024;
const DB_MAX: u64 = 256 << 20;

pub(crate) struct XrayCapture;

fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn parent(path: &str) -> &str {
    path.rfind('/').map(|i| &path[..i]).unwrap_or("")
}

fn is_node_manifest(path: &str) -> bool {
    if name(path) != "package.json" {
        return false;
    }
    let dir = parent(path);
    let up = parent(dir);
    name(up) == "node_modules" || (name(up).starts_with('@') && name(parent(up)) == "node_modules")
}

fn is_dpkg_status(path: &str) -> bool {
    path == "var/lib/dpkg/status"
        || (parent(path) == "var/lib/dpkg/status.d" && !name(path).ends_with(".md5sums"))
}

/// A path that may hold credentials whatever its content (`None`) or when its content says so.
fn secret_candidate(path: &str) -> bool {
    let n = name(path);
    matches!(
        n,
        ".env"
            | ".npmrc"
            | ".pypirc"
            | ".netrc"
            | ".git-credentials"
            | ".htpasswd"
            | "id_rsa"
            | "id_dsa"
            | "id_ecdsa"
            | "id_ed25519"
    ) || n.starts_with(".env.")
        || (n == "credentials" && name(parent(path)) == ".aws")
        || (n == "config.json" && name(parent(path)) == ".docker")
        || n.ends_with(".pem")
        || n.ends_with(".key")
}

fn has_private_key(data: &[u8]) -> bool {
    let s = String::from_utf8_lossy(data);
    s.find("-----BEGIN ").is_some_and(|i| {
        s[i..]
            .lines()
            .next()
            .is_some_and(|l| l.contains("PRIVATE KEY-----"))
    })
}

/// Why the content of a secret candidate is a secret, if it is.
pub(crate) fn secret_reason(path: &str, data: &[u8]) -> Option<&'static str> {
    if has_private_key(data) {
        return Some("private key");
    }
    let text = String::from_utf8_lossy(data);
    let n = name(path);
    match n {
        ".npmrc"
            if text.contains("_authToken")
                || text.contains("_auth")
                || text.contains("_password") =>
        {
            Some("npm registry token")
        }
        ".pypirc" if text.lines().any(|l| l.trim_start().starts_with("password")) => {
            Some("PyPI password")
        }
        ".netrc" if text.contains("password") => Some("netrc password"),
        ".git-credentials" if text.contains('@') => Some("git credentials"),
        ".htpasswd" if text.contains(':') => Some("htpasswd hashes"),
        "credentials" if text.contains("aws_secret_access_key") => Some("AWS credentials"),
        "config.json" if text.contains("\"auths\"") && text.contains("\"auth\"") => {
            Some("docker registry auth")
        }
        "id_rsa" | "id_dsa" | "id_ecdsa" | "id_ed25519" if !data.is_empty() => {
            Some("SSH private key file")
        }
        _ if (n == ".env" || n.starts_with(".env."))
            && text
                .lines()
                .any(|l| l.contains('=') && !l.trim_start().starts_with('#')) =>
        {
            Some("dotenv file")
        }
        _ => None,
    }
}

fn tagged(tag: u8, body: &[u8]) -> Box<[u8]> {
    let mut v = Vec::with_capacity(body.len() + 1);
    v.push(tag);
    v.extend_from_slice(body);
    v.into_boxed_slice()
}

fn header_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

impl Capture for XrayCapture {
    fn want(&self, path: &str, size: u64) -> usize {
        let n = name(path);
        let limit = if path == "etc/os-release" || path == "usr/lib/os-release" {
            SMALL
        } else if is_dpkg_status(path) || path == "lib/apk/db/installed" {
            DB_MAX
        } else if (n == "METADATA" && parent(path).ends_with(".dist-info"))
            || (n == "PKG-INFO" && parent(path).ends_with(".egg-info"))
        {
            return 8 * 1024;
        } else if is_node_manifest(path) {
            1 << 20
        } else if secret_candidate(path) {
            SMALL
        } else if size <= KEY_SNIFF_MAX && size > 0 {
            return 256;
        } else {
            0
        };
        if size <= limit {
            usize::try_from(size).unwrap_or(0)
        } else {
            0
        }
    }

    fn take(&self, path: &str, data: &[u8]) -> Option<Box<[u8]>> {
        let n = name(path);
        if path == "etc/os-release" || path == "usr/lib/os-release" {
            return Some(tagged(OS_RELEASE, data));
        }
        if is_dpkg_status(path) {
            return Some(tagged(DPKG, data));
        }
        if path == "lib/apk/db/installed" {
            return Some(tagged(APK, data));
        }
        if (n == "METADATA" && parent(path).ends_with(".dist-info"))
            || (n == "PKG-INFO" && parent(path).ends_with(".egg-info"))
        {
            let text = String::from_utf8_lossy(data);
            let name = header_value(&text, "Name")?;
            let version = header_value(&text, "Version").unwrap_or("");
            return Some(tagged(PYTHON, format!("{name}\0{version}").as_bytes()));
        }
        if is_node_manifest(path) {
            let v: serde_json::Value = serde_json::from_slice(data).ok()?;
            let name = v.get("name")?.as_str()?;
            let version = v.get("version").and_then(|x| x.as_str()).unwrap_or("");
            return Some(tagged(NODE, format!("{name}\0{version}").as_bytes()));
        }
        let reason = if secret_candidate(path) {
            secret_reason(path, data)
        } else if has_private_key(data) {
            Some("private key")
        } else {
            None
        };
        reason.map(|r| tagged(SECRET, r.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_manifests_are_direct_package_dirs_only() {
        assert!(is_node_manifest("app/node_modules/express/package.json"));
        assert!(is_node_manifest(
            "app/node_modules/@types/node/package.json"
        ));
        assert!(!is_node_manifest(
            "app/node_modules/express/lib/package.json"
        ));
        assert!(!is_node_manifest("app/package.json"));
    }

    #[test]
    fn secrets_by_content() {
        assert_eq!(
            secret_reason("x/.npmrc", b"//registry.npmjs.org/:_authToken=abc"),
            Some("npm registry token")
        );
        assert_eq!(
            secret_reason("x/.npmrc", b"registry=https://example.invalid/"),
            None
        );
        assert_eq!(
            secret_reason("k.pem", b"-----BEGIN CERTIFICATE-----\n"),
            None
        );
        assert_eq!(
            secret_reason("k.pem", b"-----BEGIN EC PRIVATE KEY-----\n"),
            Some("private key")
        );
        assert_eq!(
            secret_reason(
                "root/.docker/config.json",
                br#"{"auths":{"r":{"auth":"eA=="}}}"#
            ),
            Some("docker registry auth")
        );
        assert_eq!(
            secret_reason("root/.docker/config.json", br#"{"auths":{}}"#),
            None
        );
    }
}
