//! Build layer tars in memory, hostile ones included, and serve them as an [`ImageSource`] without any I/O.

use std::io::Cursor;

use pare_image::{Compression, ImageConfiguration, LayerDescriptor, ResolvedImage};

use pare_source::{ImageSource, LayerContent, SourceError};

/// Builds one uncompressed layer tar.
pub struct LayerBuilder {
    b: tar::Builder<Vec<u8>>,
    mtime: u64,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// The mtime of the entries of [`LayerBuilder::new`].
const MTIME: u64 = 1_700_000_000;

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h
}

impl LayerBuilder {
    pub fn new() -> Self {
        Self::with_mtime(MTIME)
    }

    /// A builder whose entries all have modification time `mtime` (seconds since the epoch).
    pub fn with_mtime(mtime: u64) -> Self {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Deterministic);
        LayerBuilder { b, mtime }
    }

    fn append(mut self, mut h: tar::Header, path: &str, data: &[u8]) -> Self {
        self.b
            .append_data(&mut h, path, data)
            .expect("append to in-memory tar");
        self
    }

    pub fn dir(self, path: &str) -> Self {
        self.dir_mode(path, 0o755)
    }

    pub fn dir_mode(self, path: &str, mode: u32) -> Self {
        let h = header(tar::EntryType::Directory, mode, 0, self.mtime);
        self.append(h, path, &[])
    }

    pub fn file(self, path: &str, data: &[u8]) -> Self {
        self.file_mode(path, data, 0o644)
    }

    pub fn file_mode(self, path: &str, data: &[u8], mode: u32) -> Self {
        let h = header(tar::EntryType::Regular, mode, data.len() as u64, self.mtime);
        self.append(h, path, data)
    }

    /// A regular file of `size` bytes of `fill`.
    pub fn sized(self, path: &str, size: usize, fill: u8) -> Self {
        self.file(path, &vec![fill; size])
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0, self.mtime);
        self.b
            .append_link(&mut h, path, target)
            .expect("append symlink");
        self
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Link, 0o644, 0, self.mtime);
        self.b
            .append_link(&mut h, path, target)
            .expect("append hardlink");
        self
    }

    /// `.wh.NAME` next to `path`.
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path
            .rsplit_once('/')
            .map(|(d, n)| (format!("{d}/"), n))
            .unwrap_or((String::new(), path));
        self.file(&format!("{dir}.wh.{name}"), &[])
    }

    /// `DIR/.wh..wh..opq`.
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{}/.wh..wh..opq", dir.trim_end_matches('/')), &[])
    }

    /// A file with PAX `SCHILY.xattr.KEY` records.
    pub fn file_xattr(mut self, path: &str, data: &[u8], key: &str, value: &[u8]) -> Self {
        let k = format!("SCHILY.xattr.{key}");
        self.b
            .append_pax_extensions([(k.as_str(), value)])
            .expect("pax");
        self.file(path, data)
    }

    /// An entry whose name (and link name) bytes are written verbatim, bypassing the tar
    /// crate's checks: for hostile names such as `../x` or `/etc/x`.
    pub fn raw(mut self, kind: tar::EntryType, name: &[u8], link: &[u8], data: &[u8]) -> Self {
        let mut h = header(kind, 0o644, data.len() as u64, self.mtime);
        {
            let old = h.as_old_mut();
            let n = name.len().min(100);
            old.name = [0; 100];
            old.name[..n].copy_from_slice(&name[..n]);
            let l = link.len().min(100);
            old.linkname = [0; 100];
            old.linkname[..l].copy_from_slice(&link[..l]);
        }
        h.set_cksum();
        self.b.append(&h, data).expect("append raw");
        self
    }

    /// A GNU sparse file whose apparent size is `real_size` with only `data` stored at offset 0.
    pub fn sparse(mut self, path: &str, data: &[u8], real_size: u64) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::GNUSparse);
        h.set_mode(0o644);
        h.set_mtime(self.mtime);
        h.set_size(data.len() as u64);
        h.set_path(path).expect("sparse path");
        set_sparse_map(&mut h, data.len() as u64, real_size);
        h.set_cksum();
        self.b.append(&h, data).expect("append sparse");
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().expect("finish tar")
    }
}

/// Makes a GNU header's sparse map say: `stored` bytes of data at offset 0, then holes up to
/// `real_size`. No-op on a non-GNU header.
pub fn set_sparse_map(h: &mut tar::Header, stored: u64, real_size: u64) {
    let Some(g) = h.as_gnu_mut() else { return };
    let oct = |v: u64, dst: &mut [u8; 12]| {
        let s = format!("{v:011o}");
        *dst = [0; 12];
        let n = s.len().min(12);
        dst[..n].copy_from_slice(&s.as_bytes()[..n]);
    };
    oct(0, &mut g.sparse[0].offset);
    oct(stored, &mut g.sparse[0].numbytes);
    // A final zero-length chunk at the end marks the real size.
    oct(real_size, &mut g.sparse[1].offset);
    oct(0, &mut g.sparse[1].numbytes);
    oct(real_size, &mut g.realsize);
}

/// An image served from memory. Layer `digest` and `diff_id` are fake but distinct
/// (`sha256:000…N`); the tar bytes are not verified.
pub struct MemSource {
    image: ResolvedImage,
    layers: Vec<Vec<u8>>,
    raw_config: Vec<u8>,
}

impl MemSource {
    /// `config` is an image config JSON; its `history` should have one non-empty step per layer.
    pub fn new(layers: Vec<Vec<u8>>, config: serde_json::Value) -> Self {
        let descs = layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerDescriptor {
                digest: format!("sha256:{i:064x}"),
                diff_id: Some(format!("sha256:{:064x}", i + 1000)),
                compressed_size: Some(l.len() as u64),
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                compression: Compression::None,
            })
            .collect();
        let raw_config = serde_json::to_vec(&config).unwrap_or_default();
        let config: ImageConfiguration =
            serde_json::from_value(config).expect("valid image config");
        let image = ResolvedImage {
            name: "mem:test".into(),
            manifest_digest: None,
            config_digest: pare_image::digest::sha256_from_hex(&format!("{:064x}", 4242))
                .expect("64 hex digits"),
            config,
            layers: descs,
        };
        MemSource {
            image,
            layers,
            raw_config,
        }
    }

    /// A minimal config with one `created_by` per layer.
    pub fn with_history(layers: Vec<Vec<u8>>, created_by: &[&str]) -> Self {
        let history: Vec<serde_json::Value> = created_by
            .iter()
            .map(|c| serde_json::json!({"created_by": c}))
            .collect();
        let cfg = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": history,
        });
        Self::new(layers, cfg)
    }
}

impl ImageSource for MemSource {
    fn image(&self) -> &ResolvedImage {
        &self.image
    }

    fn open_layer(&self, index: usize) -> Result<LayerContent, SourceError> {
        match self.layers.get(index) {
            Some(l) => Ok(LayerContent::Tar(Box::new(Cursor::new(l.clone())))),
            None => Err(SourceError::MissingBlob {
                path: "mem".into(),
                digest: format!("layer {index}"),
            }),
        }
    }

    fn kind(&self) -> &'static str {
        "memory"
    }

    fn raw_config(&self) -> Option<&[u8]> {
        Some(&self.raw_config)
    }
}
