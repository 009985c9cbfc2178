//! Writer tests: determinism, layout validity (read back with oci-spec), archive format, and
//! `docker load` (ignored without a daemon), a registry push beside other work
//! (skipped without the testbed registry).

use std::collections::BTreeMap;

use std::fs;

use std::io::Read;

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

use std::path::{Path, PathBuf};

use std::time::{Duration, SystemTime};

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

use pare_select::{Kept, Reason, SelectInputs, Selection, select};

use pare_write::{ImageMeta, Output, WriteError, WrittenImage, write_image};

use sha2::{Digest, Sha256};

const SOURCE_CONFIG: &str = r#"{
  "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
  "config": {
    "User": "1000:1000", "Env": ["PATH=/usr/bin:/bin", "A=1"], "Entrypoint": ["/app/run"], "Cmd": ["--serve"],
    "WorkingDir": "/app", "ExposedPorts": {"8080/tcp": {}, "80/tcp": {}}, "Volumes": {"/data": {}},
    "Labels": {"z": "last", "a": "first", "maintainer": "me"}, "StopSignal": "SIGTERM",
    "Healthcheck": {"Test": ["CMD-SHELL", "wget -q -O- localhost:8080 || exit 1"], "Interval": 30000000000, "Retries": 3},
    "OnBuild": ["RUN echo dropped"]
  },
  "rootfs": {"type": "layers", "diff_ids": ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},
  "history": [{"created_by": "a"}, {"created_by": "b"}]
}"#;

fn meta() -> ImageMeta {
    ImageMeta::from_config_json(SOURCE_CONFIG.as_bytes(), "example/app:1.0").unwrap()
}

fn write(root: &Path, p: &str, content: &[u8], mode: u32) {
    let host = root.join(p.trim_start_matches('/'));
    fs::create_dir_all(host.parent().unwrap()).unwrap();
    fs::write(&host, content).unwrap();
    fs::set_permissions(&host, fs::Permissions::from_mode(mode)).unwrap();
}

/// A small rootfs with every entry kind the writer handles.
fn fixture(root: &Path) {
    write(root, "/app/run", b"#!/bin/sh\necho hi\n", 0o755);
    write(root, "/app/setuid", b"s", 0o4755);
    write(root, "/usr/bin/gzip", b"gzip-binary", 0o755);
    fs::hard_link(root.join("usr/bin/gzip"), root.join("usr/bin/gunzip")).unwrap();
    fs::hard_link(root.join("usr/bin/gzip"), root.join("usr/bin/uncompress")).unwrap();
    symlink("usr/bin", root.join("bin")).unwrap();
    symlink("gzip", root.join("usr/bin/zcat")).unwrap();
    let long_dir = format!("/usr/share/{}", "d".repeat(120));
    write(
        root,
        &format!("{long_dir}/{}", "f".repeat(90)),
        b"long",
        0o644,
    );
    write(
        root,
        &format!("/opt/{}", "x".repeat(230)),
        b"very long",
        0o600,
    );
    // Multi-byte names longer than a header field (PAX path, char-safe truncation).
    write(root, &format!("/opt/a{}", "é".repeat(60)), b"utf8", 0o644);
    symlink(
        format!("/opt/{}", "x".repeat(230)),
        root.join("opt/longlink"),
    )
    .unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    write(
        root,
        "/var/lib/dpkg/status",
        b"Package: original\n\n",
        0o644,
    );
    write(root, "/etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644);
    fs::create_dir_all(root.join("data")).unwrap();
}

fn selection_all(root: &Path) -> Selection {
    let mut sel = Selection::default();
    for e in walk(root) {
        sel.entries.insert(
            e.parse().unwrap(),
            Kept {
                reasons: vec![Reason::IncludeShell],
            },
        );
    }
    sel.generated.insert(
        "/var/lib/dpkg/status".parse().unwrap(),
        b"Package: trimmed\n\n".to_vec(),
    );
    sel.generated
        .insert("/etc/synthetic".parse().unwrap(), b"new\n".to_vec());
    sel.entries
        .insert("/etc/synthetic".parse().unwrap(), Kept::default());
    sel.created_dirs.insert("/run/made".parse().unwrap(), 0o700);
    sel.created_dirs.insert("/run".parse().unwrap(), 0o755);
    sel
}

/// The [`fixture`] rootfs at `<temp dir>/rootfs` and a [`selection_all`] of it, which most
/// tests write.
struct Setup {
    t: tempfile::TempDir,
    root: PathBuf,
    sel: Selection,
}

fn setup() -> Setup {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture(&root);
    let sel = selection_all(&root);
    Setup { t, root, sel }
}

impl Setup {
    /// `name` in the temp dir.
    fn path(&self, name: &str) -> PathBuf {
        self.t.path().join(name)
    }

    /// Writes the selection, with [`meta`], to `output` at `epoch`.
    fn write(&self, output: Output, epoch: Option<u64>) -> Result<WrittenImage, WriteError> {
        write_image(&self.root, &self.sel, &meta(), output, epoch)
    }
}

/// An OCI layout output into `dir`, tagged `tag`.
fn oci(dir: PathBuf, tag: Option<&str>) -> Output {
    Output::Oci {
        dir,
        tag: tag.map(str::to_string),
    }
}

/// A docker-archive output into `path`, tagged `tag`.
fn docker_archive(path: PathBuf, tag: Option<&str>) -> Output {
    Output::DockerArchive {
        path,
        tag: tag.map(str::to_string),
    }
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(format!("/{}", p.strip_prefix(root).unwrap().display()));
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

fn bookworm() -> Option<PathBuf> {
    let p = PathBuf::from(
        std::env::var("PARE_BOOKWORM_ROOTFS").unwrap_or_else(|_| "/var/cache/pare/bookworm".into()),
    );
    p.join("usr/bin/bash").exists().then_some(p)
}

mod digests;
mod formats;
mod staged;
