//! Attack surface: tools an attacker would love, risky modes, capabilities, secrets, config.

use pare_image::ImagePath;
use pare_layerfs::{Kind, MergedFs};
use pare_source::ImageSource;
use serde::Serialize;

use crate::capture::SECRET;

/// A tool found in a standard binary directory.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ToolFinding {
    /// The path of the tool (`/usr/bin/curl`).
    pub path: ImagePath,
    /// The file name that matched the tool list (`curl`, `pip3.11`).
    pub name: String,
    /// Symlink target when the path is a symlink.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// A file with a risky permission bit (setuid, setgid or world-writable).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ModeFinding {
    /// The path.
    pub path: ImagePath,
    /// Octal permission bits, e.g. `4755`.
    pub mode: String,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// File kind (world-writable findings include directories).
    pub kind: Kind,
}

/// A file that looks like it holds a secret (private key, token, credentials file).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PathSecret {
    /// The path.
    pub path: ImagePath,
    /// What was recognized (`private key`, `npm registry token`, …); the secret itself is never reported.
    pub reason: String,
}

/// An environment variable that looks secret. The value is never reported.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EnvSecret {
    /// The variable's name from the image config.
    pub name: String,
    /// Why it looks secret (its name or the shape of its value).
    pub reason: String,
}

/// Attack-surface findings of the final filesystem and the run configuration.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Surface {
    /// Shells (`sh`, `bash`, `busybox`, …) in the standard binary directories.
    pub shells: Vec<ToolFinding>,
    /// Package managers (`apt`, `apk`, `pip`, `npm`, …) in the standard binary directories.
    pub package_managers: Vec<ToolFinding>,
    /// Compilers and build tools (`gcc`, `make`, `go`, …) in the standard binary directories.
    pub build_tools: Vec<ToolFinding>,
    /// Network clients (`curl`, `wget`, `nc`, `ssh`, …) in the standard binary directories.
    pub network_tools: Vec<ToolFinding>,
    /// Files with the setuid bit (`mode & 0o4000`).
    pub setuid: Vec<ModeFinding>,
    /// Files with the setgid bit (`mode & 0o2000`).
    pub setgid: Vec<ModeFinding>,
    /// World-writable files and directories without the sticky bit.
    pub world_writable: Vec<ModeFinding>,
    /// Files with a `security.capability` xattr.
    pub capabilities: Vec<ImagePath>,
    /// Files whose content looks like a secret.
    pub secret_files: Vec<PathSecret>,
    /// Environment variables from the config that look like secrets (values withheld).
    pub secret_env: Vec<EnvSecret>,
    /// The configured user (`None` when unset).
    pub user: Option<String>,
    /// The container runs as root (user unset, `root` or uid 0).
    pub runs_as_root: bool,
    /// `ExposedPorts` from the config (`8080/tcp`), sorted.
    pub exposed_ports: Vec<String>,
    /// A HEALTHCHECK is configured (`None` when the source cannot tell).
    pub healthcheck: Option<bool>,
}

impl Surface {
    /// Number of findings that count against the image (for summaries).
    pub fn findings(&self) -> usize {
        self.shells.len()
            + self.package_managers.len()
            + self.build_tools.len()
            + self.network_tools.len()
            + self.setuid.len()
            + self.setgid.len()
            + self.world_writable.len()
            + self.capabilities.len()
            + self.secret_files.len()
            + self.secret_env.len()
            + usize::from(self.runs_as_root)
    }
}

const BIN_DIRS: &[&str] = &[
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "usr/local/bin",
    "usr/local/sbin",
];
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox",
];
const PACKAGE_MANAGERS: &[&str] = &[
    "apt",
    "apt-get",
    "aptitude",
    "dpkg",
    "apk",
    "yum",
    "dnf",
    "microdnf",
    "rpm",
    "zypper",
    "pacman",
    "pip",
    "pip3",
    "pip2",
    "pipx",
    "easy_install",
    "npm",
    "npx",
    "yarn",
    "pnpm",
    "gem",
    "bundle",
    "composer",
    "conda",
    "mamba",
    "uv",
    "poetry",
];
const BUILD_TOOLS: &[&str] = &[
    "gcc", "g++", "cc", "c++", "clang", "clang++", "tcc", "make", "gmake", "cmake", "ninja",
    "meson", "go", "rustc", "cargo", "javac", "mvn", "gradle", "ld", "as", "gdb", "autoconf",
    "automake", "libtool", "dotnet",
];
const NETWORK_TOOLS: &[&str] = &[
    "curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ftp", "ssh", "scp", "sftp",
    "rsync", "tftp",
];

/// `gcc-12`, `pip3.11`, `python3-config`… → the family name used for matching.
fn family(name: &str) -> &str {
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let base = base.strip_suffix('-').unwrap_or(base);
    if base.is_empty() { name } else { base }
}

fn tool_class(name: &str) -> Option<usize> {
    let cands = [name, family(name)];
    for (i, list) in [SHELLS, PACKAGE_MANAGERS, BUILD_TOOLS, NETWORK_TOOLS]
        .iter()
        .enumerate()
    {
        if cands.iter().any(|c| list.contains(c)) {
            return Some(i);
        }
    }
    None
}

fn mode_finding(path: &str, node: &pare_layerfs::Node) -> ModeFinding {
    ModeFinding {
        path: ImagePath::from_rel(path),
        mode: format!("{:04o}", node.mode),
        uid: node.uid,
        gid: node.gid,
        kind: node.kind,
    }
}

/// Why an environment variable looks secret, judging by its name or value.
pub fn env_secret_reason(name: &str, value: &str) -> Option<&'static str> {
    if value.is_empty() {
        return None;
    }
    let v = value.trim();
    let value_reason = if v.starts_with("AKIA")
        && v.len() == 20
        && v.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        Some("value looks like an AWS access key id")
    } else if ["ghp_", "gho_", "ghs_", "ghu_", "github_pat_"]
        .iter()
        .any(|p| v.starts_with(p))
    {
        Some("value looks like a GitHub token")
    } else if ["xoxb-", "xoxp-", "xoxa-"].iter().any(|p| v.starts_with(p)) {
        Some("value looks like a Slack token")
    } else if v.starts_with("sk_live_") || v.starts_with("rk_live_") {
        Some("value looks like a Stripe key")
    } else if v.starts_with("glpat-") {
        Some("value looks like a GitLab token")
    } else if v.starts_with("AIza") && v.len() == 39 {
        Some("value looks like a Google API key")
    } else if v.contains("-----BEGIN") && v.contains("PRIVATE KEY") {
        Some("value holds a private key")
    } else if let Some(i) = v.find("://") {
        // scheme://user:password@host
        let rest = &v[i + 3..];
        let auth = rest.split('/').next().unwrap_or("");
        if auth.contains('@') && auth.split('@').next().is_some_and(|u| u.contains(':')) {
            Some("value is a URL with a password")
        } else {
            None
        }
    } else {
        None
    };
    if value_reason.is_some() {
        return value_reason;
    }
    let n = name.to_ascii_uppercase();
    if n.ends_with("_FILE")
        || n.ends_with("_PATH")
        || n.ends_with("_DIR")
        || n == "PWD"
        || n == "OLDPWD"
    {
        return None;
    }
    // A file path or an obvious placeholder is not a secret.
    if v.starts_with('/') || v.starts_with("${") {
        return None;
    }
    let words = [
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "ACCESS_KEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
        "AUTH_KEY",
    ];
    if words.iter().any(|w| n.contains(w))
        || n == "PASS"
        || n.ends_with("_PASS")
        || n.ends_with("_PWD")
    {
        return Some("name looks secret");
    }
    None
}

fn is_root_user(user: Option<&str>) -> bool {
    match user.map(str::trim) {
        None | Some("") => true,
        Some(u) => {
            let who = u.split(':').next().unwrap_or(u);
            who == "root" || who == "0"
        }
    }
}

pub(crate) fn scan(source: &dyn ImageSource, fs: &MergedFs) -> Surface {
    let mut s = Surface::default();
    for (path, node) in fs.iter() {
        let kind = node.kind;
        let dir = path.rfind('/').map(|i| &path[..i]).unwrap_or("");
        let name = path.rsplit('/').next().unwrap_or(path);
        if kind != Kind::Dir && BIN_DIRS.contains(&dir) {
            if let Some(class) = tool_class(name) {
                let f = ToolFinding {
                    path: ImagePath::from_rel(path),
                    name: name.to_string(),
                    link: if kind == Kind::Symlink {
                        node.link.as_deref().map(str::to_string)
                    } else {
                        None
                    },
                };
                match class {
                    0 => s.shells.push(f),
                    1 => s.package_managers.push(f),
                    2 => s.build_tools.push(f),
                    _ => s.network_tools.push(f),
                }
            }
        }
        let mode = node.mode;
        if matches!(kind, Kind::File | Kind::Hardlink) {
            if mode & 0o4000 != 0 {
                s.setuid.push(mode_finding(path, node));
            }
            if mode & 0o2000 != 0 {
                s.setgid.push(mode_finding(path, node));
            }
        }
        if matches!(kind, Kind::File | Kind::Hardlink | Kind::Dir)
            && mode & 0o002 != 0
            && mode & 0o1000 == 0
        {
            s.world_writable.push(mode_finding(path, node));
        }
        if node.capability {
            s.capabilities.push(ImagePath::from_rel(path));
        }
    }
    for (path, data) in fs.captured_files() {
        if let Some((&SECRET, reason)) = data.split_first() {
            s.secret_files.push(PathSecret {
                path: ImagePath::from_rel(path),
                reason: String::from_utf8_lossy(reason).into_owned(),
            });
        }
    }
    s.secret_files.sort_by(|a, b| a.path.cmp(&b.path));

    let img = source.image();
    let cfg = img.config.config().as_ref();
    for kv in cfg.and_then(|c| c.env().as_ref()).into_iter().flatten() {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        if let Some(r) = env_secret_reason(k, v) {
            s.secret_env.push(EnvSecret {
                name: k.to_string(),
                reason: r.to_string(),
            });
        }
    }
    s.user = cfg.and_then(|c| c.user().clone()).filter(|u| !u.is_empty());
    s.runs_as_root = is_root_user(s.user.as_deref());
    s.exposed_ports = cfg
        .and_then(|c| c.exposed_ports().clone())
        .unwrap_or_default();
    s.exposed_ports.sort();
    s.healthcheck = healthcheck(source);
    s
}

fn healthcheck(source: &dyn ImageSource) -> Option<bool> {
    if let Some(raw) = source.raw_config() {
        let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
        let test = v
            .get("config")
            .and_then(|c| c.get("Healthcheck"))
            .and_then(|h| h.get("Test"))
            .and_then(|t| t.as_array());
        return Some(match test {
            Some(t) => t
                .first()
                .and_then(|x| x.as_str())
                .is_some_and(|x| x != "NONE"),
            None => false,
        });
    }
    // Without the raw config, the history still shows a HEALTHCHECK instruction.
    let steps = source.image().history_steps();
    steps
        .iter()
        .any(|s| s.created_by.contains("HEALTHCHECK"))
        .then_some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_families() {
        assert_eq!(tool_class("gcc-12"), Some(2));
        assert_eq!(tool_class("pip3.11"), Some(1));
        assert_eq!(tool_class("bash"), Some(0));
        assert_eq!(tool_class("python3"), None);
        assert_eq!(tool_class("ls"), None);
    }

    #[test]
    fn env_secrets() {
        assert!(env_secret_reason("DB_PASSWORD", "hunter2").is_some());
        assert!(env_secret_reason("DB_PASSWORD_FILE", "/run/secrets/db").is_none());
        assert!(env_secret_reason("PATH", "/usr/bin").is_none());
        assert!(env_secret_reason("X", "AKIAABCDEFGHIJKLMNOP").is_some());
        assert!(env_secret_reason("DATABASE_URL", "postgres://u:p@db/x").is_some());
        assert!(env_secret_reason("DATABASE_URL", "postgres://db/x").is_none());
        assert!(env_secret_reason("API_TOKEN", "").is_none());
        assert!(is_root_user(None) && is_root_user(Some("0:0")) && !is_root_user(Some("app")));
    }
}
