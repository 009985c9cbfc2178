#!/usr/bin/env python3
"""Image fixtures for pare's benchmarks (stdlib only).

  benchimg.py docker2oci ARCHIVE LAYOUT [--level N] [--jobs N]
      docker-archive (legacy `docker save`, or Docker 25+ OCI-in-tar) -> OCI image
      layout directory with gzip-compressed layers.
  benchimg.py gzip-speed LAYOUT
      single-core zlib decode speed of every gzip layer of an OCI layout, as JSON.
  benchimg.py synth ARCHIVE [--gb N] [--layers N]
      a synthetic docker-archive (legacy format) of about N GB uncompressed: small
      random files, big zero files, overwrites (waste) and whiteouts.

A test fixture writer, not a product: it trusts its input archive.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor

CHUNK = 1 << 20
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"


class HashWriter(io.RawIOBase):
    """Writes through to a file while hashing and counting the bytes."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def writable(self):
        return True

    def write(self, b):
        self.f.write(b)
        self.h.update(b)
        self.n += len(b)
        return len(b)


def _blob_path(layout, hexdigest):
    return os.path.join(layout, "blobs", "sha256", hexdigest)


def _write_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(_blob_path(layout, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)


def _compress_layer(args):
    archive, member_name, layout, level, index = args
    tmp = os.path.join(layout, "blobs", "sha256", f".tmp-{index}")
    with tarfile.open(archive, "r:") as outer:
        src = outer.extractfile(member_name)
        if src is None:
            raise SystemExit(f"{archive}: {member_name} is not a file")
        head = src.read(2)
        diff = hashlib.sha256()
        with open(tmp, "wb") as f:
            hw = HashWriter(f)
            if head == b"\x1f\x8b":  # already gzip: copy as is
                hw.write(head)
                while True:
                    b = src.read(CHUNK)
                    if not b:
                        break
                    hw.write(b)
                media, diff_id = MT_LAYER_GZ, None
            else:
                with gzip.GzipFile(fileobj=hw, mode="wb", compresslevel=level, mtime=0) as gz:
                    b = head
                    while b:
                        diff.update(b)
                        gz.write(b)
                        b = src.read(CHUNK)
                media, diff_id = MT_LAYER_GZ, "sha256:" + diff.hexdigest()
    digest = hw.h.hexdigest()
    os.replace(tmp, _blob_path(layout, digest))
    return {"mediaType": media, "digest": "sha256:" + digest, "size": hw.n, "diff_id": diff_id}


def docker2oci(archive, layout, level=6, jobs=None):
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with tarfile.open(archive, "r:") as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        if len(manifest) != 1:
            raise SystemExit(f"{archive}: expected one image in manifest.json, found {len(manifest)}")
        entry = manifest[0]
        config_bytes = outer.extractfile(entry["Config"]).read()
    config = json.loads(config_bytes)
    jobs = jobs or min(len(entry["Layers"]), os.cpu_count() or 1)
    work = [(archive, name, layout, level, i) for i, name in enumerate(entry["Layers"])]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        layers = list(pool.map(_compress_layer, work))
    want = config.get("rootfs", {}).get("diff_ids", [])
    got = [layer["diff_id"] for layer in layers]
    for i, (w, g) in enumerate(zip(want, got)):
        if g is not None and w != g:
            raise SystemExit(f"{archive}: layer {i} diff_id {g} != config {w}")
    cfg_digest, cfg_size = _write_blob(layout, config_bytes)
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": cfg_digest, "size": cfg_size},
        "layers": [{k: v for k, v in layer.items() if k != "diff_id"} for layer in layers],
    }
    m_bytes = json.dumps(manifest_doc, separators=(",", ":")).encode()
    m_digest, m_size = _write_blob(layout, m_bytes)
    ref = None
    tags = entry.get("RepoTags") or []
    if tags:
        ref = tags[0].rsplit(":", 1)[-1]
    desc = {"mediaType": MT_MANIFEST, "digest": m_digest, "size": m_size}
    if ref:
        desc["annotations"] = {"org.opencontainers.image.ref.name": ref}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": [desc]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print(json.dumps({"layout": layout, "manifest": m_digest, "layers": len(layers),
                      "compressed_bytes": sum(x["size"] for x in layers)}))


def gzip_speed(layout):
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    mdesc = index["manifests"][0]
    with open(_blob_path(layout, mdesc["digest"].split(":", 1)[1])) as f:
        manifest = json.load(f)
    per_layer = []
    for layer in manifest["layers"]:
        path = _blob_path(layout, layer["digest"].split(":", 1)[1])
        d = zlib.decompressobj(31)
        out = 0
        t0 = time.perf_counter()
        with open(path, "rb") as f:
            while True:
                b = f.read(CHUNK)
                if not b:
                    break
                out += len(d.decompress(b))
            out += len(d.flush())
        per_layer.append({"digest": layer["digest"], "compressed": layer["size"],
                          "uncompressed": out, "seconds": time.perf_counter() - t0})
    total_s = sum(x["seconds"] for x in per_layer)
    total_u = sum(x["uncompressed"] for x in per_layer)
    print(json.dumps({
        "layers": len(per_layer),
        "compressed_bytes": sum(x["compressed"] for x in per_layer),
        "uncompressed_bytes": total_u,
        "decode_seconds": total_s,
        "max_layer_seconds": max((x["seconds"] for x in per_layer), default=0.0),
        "decode_mb_per_s": (total_u / 1e6 / total_s) if total_s else 0.0,
        "per_layer": per_layer,
    }))


class Zeros(io.RawIOBase):
    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k


def _synth_layer(path, layer_no, target_bytes):
    """One layer tar: a tree of small random files plus big zero files to reach the target."""
    rnd = hashlib.sha256(f"pare-synth-{layer_no}".encode()).digest()
    written = 0
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK) as t:
        def add_dir(name):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
            t.addfile(ti)

        def add_file(name, data=None, size=0):
            ti = tarfile.TarInfo(name)
            ti.mode, ti.mtime = 0o644, 1700000000
            if data is not None:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                ti.size = size
                t.addfile(ti, Zeros(size))
            return ti.size

        base = f"data/l{layer_no}"
        add_dir("data")
        add_dir(base)
        # 4000 small files (4-16 KiB) of pseudo-random bytes in 40 directories.
        block = (rnd * 512)[:16384]
        for d in range(40):
            add_dir(f"{base}/d{d:02}")
            for i in range(100):
                n = 4096 + ((d * 100 + i) * 97) % 12288
                written += add_file(f"{base}/d{d:02}/f{i:03}.bin", block[:n])
        # A file every layer overwrites: lower copies are waste.
        written += add_file("data/shared.bin", size=64 << 20)
        if layer_no > 0:
            # Delete the previous layer's scratch file: it becomes waste too.
            add_file(f"data/l{layer_no - 1}/.wh.scratch.bin", b"")
        written += add_file(f"{base}/scratch.bin", size=32 << 20)
        # Big zero files up to the target size.
        i = 0
        while written < target_bytes:
            n = min(512 << 20, target_bytes - written)
            written += add_file(f"{base}/big{i}.bin", size=n)
            i += 1
    return written


def synth(archive, gb=5.0, layers=5):
    out_dir = os.path.dirname(os.path.abspath(archive))
    per_layer = int(gb * 1e9 / layers)
    diff_ids, layer_paths, history = [], [], []
    with tarfile.open(archive + ".tmp", "w", copybufsize=CHUNK) as outer:
        for n in range(layers):
            tmp = os.path.join(out_dir, f".synth-layer-{n}.tar")
            _synth_layer(tmp, n, per_layer)
            h = hashlib.sha256()
            with open(tmp, "rb") as f:
                while True:
                    b = f.read(CHUNK)
                    if not b:
                        break
                    h.update(b)
            digest = h.hexdigest()
            member = f"{digest}/layer.tar"
            outer.add(tmp, arcname=member)
            os.unlink(tmp)
            diff_ids.append("sha256:" + digest)
            layer_paths.append(member)
            history.append({"created": "2024-01-01T00:00:00Z",
                            "created_by": f"/bin/sh -c synth layer {n} # {per_layer} bytes"})
        config = {
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }
        cfg = json.dumps(config, separators=(",", ":")).encode()
        cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"

        def add_bytes(name, data):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1700000000
            outer.addfile(ti, io.BytesIO(data))

        add_bytes(cfg_name, cfg)
        add_bytes("manifest.json", json.dumps([{
            "Config": cfg_name, "RepoTags": ["pare-bench/synthetic:latest"], "Layers": layer_paths,
        }]).encode())
    os.replace(archive + ".tmp", archive)
    print(json.dumps({"archive": archive, "layers": layers, "bytes": os.path.getsize(archive)}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("docker2oci")
    a.add_argument("archive")
    a.add_argument("layout")
    a.add_argument("--level", type=int, default=6)
    a.add_argument("--jobs", type=int, default=None)
    g = sub.add_parser("gzip-speed")
    g.add_argument("layout")
    s = sub.add_parser("synth")
    s.add_argument("archive")
    s.add_argument("--gb", type=float, default=5.0)
    s.add_argument("--layers", type=int, default=5)
    args = p.parse_args()
    if args.cmd == "docker2oci":
        docker2oci(args.archive, args.layout, args.level, args.jobs)
    elif args.cmd == "gzip-speed":
        gzip_speed(args.layout)
    else:
        synth(args.archive, args.gb, args.layers)


if __name__ == "__main__":
    sys.exit(main())
