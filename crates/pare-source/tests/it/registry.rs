//! `docker://` sources and pushes: faults from an in-process fake registry, and round trips
//! through the real testbed registry (`scripts/testbed registry`) when it runs.

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::fake_registry::{FakeRegistry, Fault};
use pare_source::registry::{PushOptions, RegistryOptions, push_layout, set_registry_options};
use pare_source::{Compression, ImageRef, LayerContent, OpenOptions, Platform, SourceError};
use pare_test_support::fixture::{self, Image};

/// One cache for this test binary (the options are process-wide); every test uses content of
/// its own, so no test finds another's blobs in it.
fn setup() -> PathBuf {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    let cache = CACHE
        .get_or_init(|| tempfile::tempdir().unwrap().keep().join("blobs"))
        .clone();
    set_registry_options(RegistryOptions {
        creds: None,
        tls_verify: true,
        cert_dir: None,
        cache_dir: Some(cache.clone()),
        timeout: Duration::from_secs(2),
        attempts: 3,
        backoff: Duration::from_millis(20),
    });
    cache
}

/// A one-layer image whose content is unique to `name`, written as an OCI layout.
fn layout(name: &str) -> (tempfile::TempDir, fixture::Written) {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..200_000u32)
        .flat_map(|i| (i ^ name.len() as u32).to_le_bytes())
        .collect();
    let image = Image::new(vec![fixture::tar(&[
        ("etc/", b""),
        ("etc/name", name.as_bytes()),
        ("data.bin", &big),
    ])])
    .tagged("app:1");
    let w = fixture::write_oci_layout(dir.path(), &image, Compression::Gzip).unwrap();
    (dir, w)
}

fn open(reference: &str) -> Result<Box<dyn pare_source::ImageSource>, SourceError> {
    pare_source::open(
        &ImageRef::parse(reference).unwrap(),
        &OpenOptions::default(),
    )
}

/// Reads every layer to its end, verifying digests.
fn read_all(src: &dyn pare_source::ImageSource) -> Result<u64, String> {
    let mut total = 0;
    for i in 0..src.image().layers.len() {
        let LayerContent::Tar(mut r) = src.open_layer(i).map_err(|e| chain(&e))? else {
            panic!("registry layers are tars");
        };
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).map_err(|e| chain(&e))?;
        total += buf.len() as u64;
    }
    Ok(total)
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn err_of(r: Result<Box<dyn pare_source::ImageSource>, SourceError>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => chain(&e),
    }
}

#[test]
fn reads_an_image_and_caches_its_blobs() {
    let cache = setup();
    let (dir, w) = layout("reads_an_image");
    let reg = FakeRegistry::start(dir.path(), Fault::None);
    let reference = format!("docker://{}/test/app:1", reg.addr);
    let src = open(&reference).unwrap();
    assert_eq!(src.kind(), "registry");
    assert_eq!(
        src.image().manifest_digest.as_ref().map(AsRef::as_ref),
        Some(w.manifest_digest.as_str())
    );
    assert_eq!(src.image().config_digest.to_string(), w.config_digest);
    assert!(read_all(&*src).unwrap() > 800_000);
    let hex = w.layer_digests[0].strip_prefix("sha256:").unwrap();
    assert!(cache.join("sha256").join(hex).is_file(), "layer cached");
    // A second run downloads no blob.
    let before = reg.requests.lock().unwrap().len();
    let src = open(&reference).unwrap();
    read_all(&*src).unwrap();
    let after: Vec<String> = reg.requests.lock().unwrap()[before..].to_vec();
    assert!(
        after
            .iter()
            .all(|r| !r.starts_with("GET /v2/test/app/blobs/")),
        "no blob GET on a warm cache: {after:?}"
    );
    // By digest too.
    let by_digest = format!("docker://{}/test/app@{}", reg.addr, w.manifest_digest);
    assert_eq!(
        open(&by_digest).unwrap().image().config_digest.to_string(),
        w.config_digest
    );
}

#[test]
fn picks_the_platform_from_an_index() {
    setup();
    let dir = tempfile::tempdir().unwrap();
    let amd = Image::new(vec![fixture::tar(&[("amd", b"x86 picks_the_platform")])])
        .for_platform(&Platform::parse("linux/amd64").unwrap())
        .tagged("multi:1");
    let arm = Image::new(vec![fixture::tar(&[("arm", b"arm picks_the_platform")])])
        .for_platform(&Platform::parse("linux/arm64/v8").unwrap());
    let (_, written) =
        fixture::write_oci_layout_multi(dir.path(), &[&amd, &arm], Compression::Gzip).unwrap();
    let reg = FakeRegistry::start(dir.path(), Fault::None);
    let reference = ImageRef::parse(&format!("docker://{}/test/multi:1", reg.addr)).unwrap();
    let pick = |p: &str| {
        pare_source::open(
            &reference,
            &OpenOptions {
                platform: Some(Platform::parse(p).unwrap()),
                ..Default::default()
            },
        )
    };
    assert_eq!(
        pick("linux/arm64")
            .unwrap()
            .image()
            .config_digest
            .to_string(),
        written[1].config_digest
    );
    assert_eq!(
        pick("linux/amd64")
            .unwrap()
            .image()
            .config_digest
            .to_string(),
        written[0].config_digest
    );
    let e = err_of(pick("linux/s390x"));
    assert!(e.contains("no image for platform linux/s390x"), "{e}");
    assert!(e.contains("linux/arm64"), "lists what is there: {e}");
}

fn fault_error(name: &str, fault: Fault) -> String {
    setup();
    let (dir, _) = layout(name);
    let reg = FakeRegistry::start(dir.path(), fault);
    let reference = format!("docker://{}/test/app:1", reg.addr);
    match open(&reference) {
        Err(e) => chain(&e),
        Ok(src) => read_all(&*src).expect_err("expected the read to fail"),
    }
}

#[test]
fn unauthorized_and_denied() {
    let e = fault_error("unauthorized", Fault::All(401));
    assert!(e.contains("401") && e.contains("docker://"), "{e}");
    let e = fault_error("denied", Fault::All(403));
    assert!(e.contains("denied (403)"), "{e}");
}

#[test]
fn missing_manifest_and_blob() {
    let e = fault_error("no_manifest", Fault::ManifestStatus(404));
    assert!(e.contains("manifest not found (404)"), "{e}");
    let e = fault_error("no_blob", Fault::BlobStatus(404));
    assert!(
        e.contains("not found (404)") && e.contains("sha256:"),
        "{e}"
    );
}

#[test]
fn retries_429_and_5xx_a_bounded_number_of_times() {
    // Two failures, then the blob: three attempts are enough.
    setup();
    let (dir, _) = layout("flaky_503");
    let reg = FakeRegistry::start(dir.path(), Fault::FlakyBlob { code: 503, n: 2 });
    let src = open(&format!("docker://{}/test/app:1", reg.addr)).unwrap();
    read_all(&*src).unwrap();
    // Always failing: gives up after the bounded attempts and says so.
    let e = fault_error("always_503", Fault::BlobStatus(503));
    assert!(e.contains("HTTP 503 (after 3 attempts)"), "{e}");
    let e = fault_error("always_429", Fault::BlobStatus(429));
    assert!(e.contains("429") && e.contains("after 3 attempts"), "{e}");
}

#[test]
fn digest_mismatch_and_truncation() {
    let cache = setup();
    for (name, fault) in [
        ("corrupt", Fault::CorruptBlob),
        ("truncated", Fault::TruncateBlob),
    ] {
        let (dir, w) = layout(name);
        let reg = FakeRegistry::start(dir.path(), fault);
        let src = open(&format!("docker://{}/test/app:1", reg.addr)).unwrap();
        let e = read_all(&*src).expect_err("a bad blob must fail the read");
        assert!(
            e.contains(&w.layer_digests[0]),
            "{name}: names the blob: {e}"
        );
        // The download task finishes on its own; the bad blob never enters the cache.
        std::thread::sleep(Duration::from_millis(300));
        let hex = w.layer_digests[0].strip_prefix("sha256:").unwrap();
        assert!(
            !cache.join("sha256").join(hex).exists(),
            "{name}: not cached"
        );
    }
}

#[test]
fn refuses_big_and_unknown_manifests() {
    let mut big = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 4 * 1024 * 1024 + 10));
    big.extend(br#""},"config":{},"layers":[]}"#);
    let e = fault_error("big", Fault::Manifest(big));
    assert!(e.contains("4194304-byte limit"), "{e}");
    let odd = br#"{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json"}"#.to_vec();
    let e = fault_error("odd", Fault::Manifest(odd));
    assert!(
        e.contains("unsupported manifest media type `application/vnd.example.thing+json`"),
        "{e}"
    );
    let v1 = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#.to_vec();
    let e = fault_error("v1", Fault::Manifest(v1));
    assert!(e.contains("schema 1"), "{e}");
}

/// A manifest that never ends is refused after reading at most the 4 MiB limit (plus what
/// socket buffers hold), whether its `Content-Length` announces the size or not.
#[test]
fn an_endless_manifest_is_cut_at_the_limit() {
    setup();
    for announce in [false, true] {
        let (dir, _) = layout(&format!("endless-{announce}"));
        let reg = FakeRegistry::start(dir.path(), Fault::EndlessManifest { announce });
        let reference = format!("docker://{}/test/app:1", reg.addr);
        let e = err_of(open(&reference));
        assert!(e.contains("more than the 4194304-byte limit"), "{e}");
        assert_eq!(announce, e.contains("1073741824 bytes"), "{e}");
        // The server stops when the client hangs up; let it notice.
        std::thread::sleep(Duration::from_millis(300));
        let sent = reg
            .manifest_bytes_sent
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(sent < 64 << 20, "read {sent} bytes of an endless manifest");
    }
}

#[test]
fn redirect_loop_and_stalled_blob() {
    let e = fault_error("redirects", Fault::RedirectLoop);
    assert!(e.contains("redirect"), "{e}");
    let t0 = std::time::Instant::now();
    let e = fault_error("stall", Fault::StallBlob);
    assert!(e.contains("timed out") || e.contains("timeout"), "{e}");
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "bounded by the timeout"
    );
}

#[test]
fn push_uploads_blobs_then_the_manifest() {
    setup();
    let (dir, w) = layout("push_ok");
    let empty = tempfile::tempdir().unwrap();
    fixture::write_oci_layout(empty.path(), &Image::new(vec![]), Compression::Gzip).unwrap();
    let reg = FakeRegistry::start(empty.path(), Fault::None);
    let pushed = push_layout(
        dir.path(),
        Some("app:1"),
        &format!("{}/dest/app:2", reg.addr),
        &PushOptions::default(),
    )
    .unwrap();
    assert_eq!(pushed.manifest_digest, w.manifest_digest);
    assert_eq!(pushed.uploaded, 2, "config and layer");
    let reqs = reg.requests.lock().unwrap().clone();
    let last_put = reqs
        .iter()
        .rposition(|r| r.starts_with("PUT /v2/dest/app/manifests/"))
        .unwrap();
    let last_blob = reqs
        .iter()
        .rposition(|r| r.contains("/blobs/uploads"))
        .unwrap();
    assert!(last_blob < last_put, "manifest last: {reqs:?}");
    let manifest = reg
        .pushed_manifests
        .lock()
        .unwrap()
        .get("2")
        .cloned()
        .unwrap();
    assert_eq!(
        pare_source::sha256_digest(&manifest),
        w.manifest_digest,
        "bytes unchanged"
    );
}

#[test]
fn failed_push_leaves_the_tag_alone() {
    setup();
    let (dir, _) = layout("push_fail");
    let empty = tempfile::tempdir().unwrap();
    fixture::write_oci_layout(empty.path(), &Image::new(vec![]), Compression::Gzip).unwrap();
    let reg = FakeRegistry::start(empty.path(), Fault::FailUpload);
    let e = push_layout(
        dir.path(),
        Some("app:1"),
        &format!("{}/dest/app:2", reg.addr),
        &PushOptions::default(),
    )
    .map(|_| ())
    .unwrap_err();
    let e = chain(&e);
    assert!(e.contains("500") && e.contains("docker://"), "{e}");
    assert!(
        reg.pushed_manifests.lock().unwrap().is_empty(),
        "no manifest pushed"
    );
    assert!(
        !reg.requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains("/manifests/") && r.starts_with("PUT")),
        "no manifest PUT"
    );
}

// ---- the real registry (distribution 2.8) from `scripts/testbed registry`.

fn answers(url: &str) -> bool {
    std::process::Command::new("curl")
        .args(["-fsS", "--max-time", "2", "-o", "/dev/null", url])
        .status()
        .is_ok_and(|s| s.success())
}

/// `host:port` of the plain testbed registry, or `None` (with a message) when it is not up.
/// `PARE_TEST_REGISTRY` set but not answering is a failure, not a skip.
pub fn real_registry() -> Option<String> {
    let explicit = std::env::var("PARE_TEST_REGISTRY")
        .ok()
        .filter(|s| !s.is_empty());
    let addr = explicit.clone().unwrap_or_else(|| "127.0.0.1:5555".into());
    if answers(&format!("http://{addr}/v2/")) {
        return Some(addr);
    }
    assert!(
        explicit.is_none(),
        "PARE_TEST_REGISTRY={addr} does not answer"
    );
    eprintln!("skipping: no registry at {addr} (run `scripts/testbed registry`)");
    None
}

fn skopeo() -> bool {
    std::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
#[ignore = "needs the testbed registry (scripts/testbed registry)"]
fn real_registry_round_trip_with_skopeo() {
    let Some(addr) = real_registry() else { return };
    setup();
    let (dir, w) = layout(&format!("real_round_trip_{}", std::process::id()));
    let dest = format!("{addr}/pare-test/roundtrip:{}", std::process::id());
    let pushed = push_layout(dir.path(), Some("app:1"), &dest, &PushOptions::default()).unwrap();
    assert_eq!(pushed.manifest_digest, w.manifest_digest);
    // Pushing again uploads nothing.
    let again = push_layout(dir.path(), Some("app:1"), &dest, &PushOptions::default()).unwrap();
    assert_eq!((again.uploaded, again.present), (0, 2));
    // Cross-repository mount on the same registry.
    let other = format!("{addr}/pare-test/mounted:{}", std::process::id());
    let mounted = push_layout(
        dir.path(),
        Some("app:1"),
        &other,
        &PushOptions {
            mount_from: vec![dest.clone()],
        },
    )
    .unwrap();
    assert_eq!((mounted.uploaded, mounted.mounted), (0, 2), "{mounted:?}");
    // pare reads it back.
    let src = open(&format!("docker://{dest}")).unwrap();
    assert_eq!(src.image().config_digest.to_string(), w.config_digest);
    read_all(&*src).unwrap();
    if !skopeo() {
        eprintln!("skopeo missing: interop part skipped");
        return;
    }
    // skopeo reads what pare pushed, with the same digest …
    let out = tempfile::tempdir().unwrap();
    let oci = out.path().join("oci");
    let st = std::process::Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            &format!("docker://{dest}"),
            &format!("oci:{}:x", oci.display()),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let index = std::fs::read_to_string(oci.join("index.json")).unwrap();
    assert!(index.contains(&w.manifest_digest), "{index}");
    // … and pare reads what skopeo pushed (skopeo converts nothing here: same digest).
    let back = format!("{addr}/pare-test/from-skopeo:{}", std::process::id());
    let st = std::process::Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci:{}:x", oci.display()),
            &format!("docker://{back}"),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let src = open(&format!("docker://{back}")).unwrap();
    assert_eq!(src.image().config_digest.to_string(), w.config_digest);
    read_all(&*src).unwrap();
}
