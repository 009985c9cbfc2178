//! A registry push beside other work (`PlainLayer::push_staged`): the plain tar is there at
//! once, the layout staged where the caller asks is the image the registry got, byte for
//! byte, and what is pushed is what `write_image` pushes.

use pare_source::registry::{RegistryOptions, set_registry_options};

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
fn a_push_beside_other_work_pushes_what_write_image_pushes() {
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
    let name = format!("{addr}/{}", pare_test_support::names::image("pushing:1"));
    let output = Output::parse(&format!("docker://{name}")).unwrap();
    let direct = write_image(&root, &sel, &meta(), output.clone(), Some(7)).unwrap();

    let plain = pare_write::write_plain_layer(&root, &sel, Some(7), t.path()).unwrap();
    let stage = t.path().join("stage");
    let pushing = plain.push_staged(&meta(), output.clone(), &stage).unwrap();
    assert_eq!(pushing.destination(), name);
    // The plain tar is there at once, and it is the layer's uncompressed form.
    let tar = fs::read(pushing.plain_tar()).unwrap();
    assert_eq!(sha(&tar), direct.layer.diff_id.to_string());
    assert_eq!(pushing.info().diff_id, direct.layer.diff_id);
    assert!(pushing.wait_staged());
    let index = ImageIndex::from_file(stage.join("index.json")).unwrap();
    assert_eq!(
        index.manifests()[0].digest().to_string(),
        direct.manifest_digest.to_string()
    );
    let open = |r: &str| {
        let r = pare_source::ImageRef::parse(r).unwrap();
        pare_source::open(&r, &Default::default()).unwrap()
    };
    let staged = open(&format!("oci:{}:1", stage.display()));
    let plain_path = pushing.plain_tar().to_path_buf();
    let pushed = pushing.finish().unwrap();
    assert_eq!(pushed, direct);
    assert!(!plain_path.exists(), "the plain tar goes with the push");
    // The staged layout opens as the image the registry serves.
    let served = open(&format!("docker://{name}"));
    assert_eq!(
        served
            .image()
            .manifest_digest
            .as_ref()
            .map(ToString::to_string),
        Some(direct.manifest_digest.to_string())
    );
    assert_eq!(
        staged.image().manifest_digest,
        served.image().manifest_digest
    );
    assert_eq!(staged.image().config_digest, served.image().config_digest);
    assert_eq!(staged.image().layers, served.image().layers);
    assert_eq!(staged.raw_config(), served.raw_config());

    // Only a registry output is pushed.
    let plain = pare_write::write_plain_layer(&root, &sel, Some(7), t.path()).unwrap();
    let oci = Output::parse(&format!("oci:{}:x", t.path().join("o").display())).unwrap();
    assert!(matches!(
        plain.push_staged(&meta(), oci, &t.path().join("s2")),
        Err(WriteError::Output { .. })
    ));
}
