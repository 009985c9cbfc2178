//! pare-xray's attack surface flattened into comparable findings.

use pare_image::ImagePath;
use pare_xray::{ModeFinding, Surface, ToolFinding};

use crate::{Finding, SurfaceDiff};

fn f(category: &'static str, subject: &str, detail: String) -> Finding {
    Finding {
        category,
        subject: subject.to_string(),
        detail,
    }
}

/// Every finding of a surface, sorted (so two lists compare with a binary search).
pub fn findings(s: &Surface) -> Vec<Finding> {
    let mut out = Vec::new();
    let tools: [(&'static str, &Vec<ToolFinding>); 4] = [
        ("shell", &s.shells),
        ("package_manager", &s.package_managers),
        ("build_tool", &s.build_tools),
        ("network_tool", &s.network_tools),
    ];
    for (cat, list) in tools {
        for t in list {
            let detail = t
                .link
                .as_ref()
                .map(|l| format!("-> {l}"))
                .unwrap_or_default();
            out.push(f(cat, t.path.as_str(), detail));
        }
    }
    let modes: [(&'static str, &Vec<ModeFinding>); 3] = [
        ("setuid", &s.setuid),
        ("setgid", &s.setgid),
        ("world_writable", &s.world_writable),
    ];
    for (cat, list) in modes {
        for m in list {
            out.push(f(
                cat,
                m.path.as_str(),
                format!("{} {}:{}", m.mode, m.uid, m.gid),
            ));
        }
    }
    for p in &s.capabilities {
        out.push(f("capability", p.as_str(), String::new()));
    }
    for p in &s.secret_files {
        out.push(f("secret_file", p.path.as_str(), p.reason.clone()));
    }
    for e in &s.secret_env {
        out.push(f("secret_env", &e.name, e.reason.clone()));
    }
    if s.runs_as_root {
        out.push(f(
            "runs_as_root",
            s.user.as_deref().unwrap_or("(unset)"),
            String::new(),
        ));
    }
    for p in &s.exposed_ports {
        out.push(f("exposed_port", p, String::new()));
    }
    if s.healthcheck == Some(false) {
        out.push(f("no_healthcheck", "", String::new()));
    }
    out.sort();
    out.dedup();
    out
}

/// The findings `b` gained over `a`, and the ones of `a` it lost: the attack-surface part of
/// `pare diff A B`, and of `pare build`'s summary (original → slim).
pub fn surface_changes(a: &Surface, b: &Surface) -> SurfaceDiff {
    let (fa, fb) = (findings(a), findings(b));
    SurfaceDiff {
        gained: minus(&fb, &fa),
        lost: minus(&fa, &fb),
    }
}

/// The findings of `x` not in `y` (both sorted).
fn minus(x: &[Finding], y: &[Finding]) -> Vec<Finding> {
    x.iter()
        .filter(|f| y.binary_search(f).is_err())
        .cloned()
        .collect()
}

impl Finding {
    /// The file the finding is about, for the categories that name one (tools, setuid,
    /// setgid, world-writable, capability, secret file); `None` for a secret variable, the
    /// user, a port or the healthcheck.
    pub fn path(&self) -> Option<ImagePath> {
        match self.category {
            "shell" | "package_manager" | "build_tool" | "network_tool" | "setuid" | "setgid"
            | "world_writable" | "capability" | "secret_file" => ImagePath::new(&self.subject).ok(),
            _ => None,
        }
    }
}
