//! A registry output staged where the caller asks (`write_image_staged`): the layout left
//! there is the image the registry got, byte for byte, so reading it back needs no registry.

use pare_source::registry::{RegistryOptions, set_registry_options};
use pare_write::write_image_staged;

use super::*;

/// The plain testbed registry (`scripts/testbed registry`), when it is up; a
/// `PARE_TEST_REGISTRY` that does not answer fails the test.
fn registry() -> Option<String> {
    let explicit = std::env::var("PARE_TEST_REGISTRY")
        .ok()
        .filter(|s| !s.is_empty());
    let addr = explicit.clone().unwrap_or_else(|| "127.0.0.1:5555".into());
    let up = addr
        .parse::<std::net::SocketAddr>()
        .ok()
        .and_then(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
        .is_some();
    assert!(
        up || explicit.is_none(),
        "PARE_TEST_REGISTRY={addr} does not answer"
    );
    if !up {
        eprintln!("skipping: no registry at {addr} (run `scripts/testbed registry`)");
    }
    up.then_some(addr)
}

#[test]
fn a_registry_push_is_staged_where_asked_and_reads_back_as_the_pushed_image() {
    let Some(addr) = registry() else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture(&root);
    let sel = selection_all(&root);
    set_registry_options(RegistryOptions {
        cache_dir: Some(t.path().join("cache")),
        ..Default::default()
    });
    let name = format!("{addr}/pare-test/staged:{}", std::process::id());
    let stage = t.path().join("stage");
    let output = Output::parse(&format!("docker://{name}")).unwrap();
    let w = write_image_staged(&root, &sel, &meta(), output, Some(7), &stage).unwrap();
    assert!(matches!(w.output, Output::Registry { .. }));

    let index = ImageIndex::from_file(stage.join("index.json")).unwrap();
    assert_eq!(
        index.manifests()[0].digest().to_string(),
        w.manifest_digest.to_string()
    );
    let open = |r: &str| {
        let r = pare_source::ImageRef::parse(r).unwrap();
        pare_source::open(&r, &Default::default()).unwrap()
    };
    let staged = open(&format!("oci:{}:{}", stage.display(), std::process::id()));
    let pushed = open(&format!("docker://{name}"));
    assert_eq!(
        staged.image().manifest_digest,
        pushed.image().manifest_digest
    );
    assert_eq!(staged.image().config_digest, pushed.image().config_digest);
    assert_eq!(staged.image().layers, pushed.image().layers);
    assert_eq!(staged.raw_config(), pushed.raw_config());
    assert_eq!(
        pushed
            .image()
            .manifest_digest
            .as_ref()
            .map(ToString::to_string),
        Some(w.manifest_digest.to_string())
    );

    // Any other output is written as write_image writes it; the staging dir is not made.
    let elsewhere = t.path().join("unused-stage");
    let dir = t.path().join("oci");
    let o = Output::Oci {
        dir: dir.clone(),
        tag: Some("x".into()),
    };
    let w2 = write_image_staged(&root, &sel, &meta(), o, Some(7), &elsewhere).unwrap();
    assert_eq!(w2.manifest_digest, w.manifest_digest);
    assert!(dir.join("index.json").is_file());
    assert!(!elsewhere.exists());
}
