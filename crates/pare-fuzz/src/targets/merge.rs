//! Layers built from structured input (names from a small alphabet so that paths collide,
//! whiteouts, opaque directories, links, sparse files, capabilities) merged and analyzed as
//! `pare xray` does, then rendered as JSON and a table and checked against dive's CI rules.

use arbitrary::{Arbitrary, Unstructured};
use tar::EntryType;

use crate::tarw;

/// Path components: common image paths, whiteout markers, `.`/`..`, and the captured files.
const PARTS: &[&str] = &[
    "a", "b", "bin", "etc", "usr", "lib", "var", "", ".", "..", ".wh.a", ".wh..wh..opq", ".wh.b",
    "os-release", "passwd", "dpkg", "status", "apk", "db", "installed", "id_rsa", ".env", "sh",
];

#[derive(Debug, Arbitrary)]
struct Name {
    lead_slash: bool,
    parts: Vec<u8>,
}

impl Name {
    fn bytes(&self) -> Vec<u8> {
        let mut s = String::new();
        if self.lead_slash {
            s.push('/');
        }
        let parts: Vec<&str> = self
            .parts
            .iter()
            .take(24)
            .map(|&b| PARTS[usize::from(b) % PARTS.len()])
            .collect();
        s.push_str(&parts.join("/"));
        s.into_bytes()
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Dir(Name, u16),
    File(Name, u16, Vec<u8>),
    Symlink(Name, Name),
    SymlinkRaw(Name, String),
    Hardlink(Name, Name),
    Whiteout(Name),
    Opaque(Name),
    Sparse(Name, u64),
    Capability(Name),
    Device(Name),
}

#[derive(Debug, Arbitrary)]
struct Input {
    layers: Vec<Vec<Op>>,
    history: Vec<(String, bool)>,
    env: Vec<String>,
    user: Option<String>,
}

fn layer(ops: &[Op]) -> Vec<u8> {
    let mut t = Vec::new();
    for op in ops.iter().take(64) {
        match op {
            Op::Dir(n, mode) => {
                tarw::entry(&mut t, EntryType::Directory, &n.bytes(), b"", u32::from(*mode), b"")
            }
            Op::File(n, mode, data) => {
                let data = &data[..data.len().min(4096)];
                tarw::entry(&mut t, EntryType::Regular, &n.bytes(), b"", u32::from(*mode), data)
            }
            Op::Symlink(n, to) => {
                tarw::entry(&mut t, EntryType::Symlink, &n.bytes(), &to.bytes(), 0o777, b"")
            }
            Op::SymlinkRaw(n, to) => {
                tarw::entry(&mut t, EntryType::Symlink, &n.bytes(), to.as_bytes(), 0o777, b"")
            }
            Op::Hardlink(n, to) => {
                tarw::entry(&mut t, EntryType::Link, &n.bytes(), &to.bytes(), 0o644, b"")
            }
            Op::Whiteout(n) => {
                let mut b = n.bytes();
                let at = b.iter().rposition(|&c| c == b'/').map(|i| i + 1).unwrap_or(0);
                b.splice(at..at, b".wh.".iter().copied());
                tarw::entry(&mut t, EntryType::Regular, &b, b"", 0o644, b"")
            }
            Op::Opaque(n) => {
                let mut b = n.bytes();
                b.extend_from_slice(b"/.wh..wh..opq");
                tarw::entry(&mut t, EntryType::Regular, &b, b"", 0o644, b"")
            }
            Op::Sparse(n, size) => tarw::sparse(&mut t, &n.bytes(), b"data", *size),
            Op::Capability(n) => {
                tarw::pax(&mut t, &[("SCHILY.xattr.security.capability", b"\x01\0\0\x02")]);
                tarw::entry(&mut t, EntryType::Regular, &n.bytes(), b"", 0o755, b"\x7fELF")
            }
            Op::Device(n) => tarw::entry(&mut t, EntryType::Char, &n.bytes(), b"", 0o600, b""),
        }
    }
    tarw::finish(&mut t);
    t
}

/// The body: up to 8 layers and 16 history steps built from the structured input, merged and
/// analyzed as `pare xray` does, rendered as JSON and tables (width from the input's length)
/// and checked against dive's default CI rules. Inputs that do not decode are skipped.
pub fn run(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let layers: Vec<Vec<u8>> = input.layers.iter().take(8).map(|l| layer(l)).collect();
    let history: Vec<serde_json::Value> = input
        .history
        .iter()
        .take(16)
        .map(|(c, empty)| serde_json::json!({"created_by": c, "empty_layer": empty}))
        .collect();
    let mut config = serde_json::json!({"Env": input.env});
    if let Some(u) = &input.user {
        config["User"] = serde_json::json!(u);
    }
    let cfg = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": history,
    });
    let src = pare_test_support::layer::MemSource::new(layers, cfg);
    let opts = pare_xray::Options {
        top: 5,
        hash: true,
        threads: 1,
    };
    if let Ok(report) = pare_xray::analyze(&src, &opts) {
        let _ = pare_xray::render::json(&report);
        // Any terminal width, the narrowest included.
        let width = data.len() % 200;
        let _ = pare_xray::render::table(&report, false, width);
        let outcomes = pare_xray::ci::evaluate(&report, &pare_xray::CiRules::default());
        let _ = pare_xray::render::ci_table(&outcomes, false, width);
    }
}

