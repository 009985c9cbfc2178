//! pare-xray's attack surface flattened into comparable findings.

use pare_xray::{ModeFinding, Surface, ToolFinding};

use crate::Finding;

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
            out.push(f(cat, &t.path, detail));
        }
    }
    let modes: [(&'static str, &Vec<ModeFinding>); 3] = [
        ("setuid", &s.setuid),
        ("setgid", &s.setgid),
        ("world_writable", &s.world_writable),
    ];
    for (cat, list) in modes {
        for m in list {
            out.push(f(cat, &m.path, format!("{} {}:{}", m.mode, m.uid, m.gid)));
        }
    }
    for p in &s.capabilities {
        out.push(f("capability", p, String::new()));
    }
    for p in &s.secret_files {
        out.push(f("secret_file", &p.path, p.reason.clone()));
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
