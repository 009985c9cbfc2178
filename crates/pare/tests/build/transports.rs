//! The same input gives the same digest, across builds and transports.

use super::*;

#[test]
fn cli_job_reproducible_across_builds_and_transports() {
    let image = "pare-example/cli-job";
    let tag = &test_image("cli-job.slim:build");
    let first = build_verified(image, Some(tag), &[]);
    // The job's stdout and exit code, checked outside pare too.
    assert_eq!(run_job(tag), run_job(image));
    // Building again (a new trace) gives the same image.
    let again = build_verified(image, Some(&test_image("cli-job.slim:again")), &[]);
    assert_eq!(
        first.slim_digest(),
        again.slim_digest(),
        "two builds of the same image"
    );
    assert_eq!(
        inspect(tag, "{{.Id}}"),
        first.slim_digest(),
        "the loaded image has the reported ID"
    );
    // Dated like the source (not 1970) by default, yet reproducible; an explicit epoch is
    // used as given and changes the digest.
    assert_eq!(
        first.report["epoch_from"],
        "the source image's creation time"
    );
    assert_ne!(first.report["epoch"], 0);
    let dated = build(
        image,
        None,
        &[
            "--from-profile",
            first.profile_json().to_str().unwrap(),
            "--epoch",
            "0",
            "--no-verify",
            "--output",
            &format!("oci:{}/epoch0", first.artifacts.path().display()),
        ],
    );
    assert_eq!(dated.code, Some(0), "{}", dated.stderr);
    assert_eq!(dated.report["created"], "1970-01-01T00:00:00Z");
    assert_ne!(dated.slim_digest(), first.slim_digest());

    // The same image as a docker-archive and as an OCI layout, daemonless (embedded runtime),
    // with the same recorded profile: the same digest.
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("cli-job.tar");
    let o = docker(&["save", "-o", archive.to_str().unwrap(), image]);
    assert!(
        o.status.success(),
        "docker save: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let profile = first.profile_json();
    // A daemonless build of `source` with the recorded profile into an OCI layout at `out`:
    // the first build's image.
    let same_daemonless = |source: String, out: &Path, what: &str| {
        let b = build_verified(
            &source,
            None,
            &[
                "--runtime",
                "embedded",
                "--from-profile",
                profile.to_str().unwrap(),
                "--output",
                &format!("oci:{}:slim", out.display()),
            ],
        );
        assert_eq!(b.slim_digest(), first.slim_digest(), "{what}");
        b
    };
    let a = same_daemonless(
        format!("docker-archive:{}", archive.display()),
        &work.path().join("out-archive"),
        "docker-daemon: and docker-archive: of the same image",
    );
    assert_eq!(a.report["runtime"], "embedded");
    let layout = work.path().join("layout");
    docker_save_to_oci(&archive, &layout);
    let out2 = work.path().join("out-oci");
    let o = same_daemonless(
        format!("oci:{}:latest", layout.display()),
        &out2,
        "docker-daemon: and oci: of the same image",
    );
    // Into the daemon the layer went as a plain tar and its gzip form was only measured; the
    // OCI layout holds the real gzip layer. Both reports name the same manifest and layer.
    assert_eq!(
        o.report["slim_manifest_digest"],
        first.report["slim_manifest_digest"]
    );
    assert_eq!(
        o.report["slim"]["compressed_size"],
        first.report["slim"]["compressed_size"]
    );
    // The written OCI layout holds that config blob.
    let blob = out2
        .join("blobs/sha256")
        .join(first.slim_digest().trim_start_matches("sha256:"));
    assert!(blob.is_file(), "{}", blob.display());

    // --output docker-archive: from a daemon image: nothing is loaded, the archive is verified
    // from its own files, and `docker load` gives the same image ID.
    let out_archive = work.path().join("slim.tar");
    let archive_tag = test_image("cli-job.slim:archive");
    let w = build_verified(
        image,
        None,
        &[
            "--from-profile",
            profile.to_str().unwrap(),
            "--output",
            &format!("docker-archive:{}:{archive_tag}", out_archive.display()),
        ],
    );
    assert_eq!(w.slim_digest(), first.slim_digest());
    assert!(
        !docker(&["image", "inspect", &archive_tag]).status.success(),
        "--output must not load"
    );
    let o = docker(&["load", "-i", out_archive.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "docker load: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(inspect(&archive_tag, "{{.Id}}"), first.slim_digest());
    let _ = docker(&["rmi", "-f", &archive_tag]);

    // A full daemonless build (trace with the embedded runtime) of the OCI layout is verified,
    // and the job's output matches.
    let out3 = work.path().join("out-embedded");
    let e = build_verified(
        &format!("oci:{}:latest", layout.display()),
        None,
        &["--output", &format!("oci:{}:slim", out3.display())],
    );
    assert_eq!(e.report["runtime"], "embedded");
    let keep = |b: &Built| -> BTreeSet<String> {
        b.report["selection"]["entries"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let (kd, ke) = (keep(&first), keep(&e));
    let only_docker: Vec<_> = kd.difference(&ke).collect();
    let only_embedded: Vec<_> = ke.difference(&kd).collect();
    // Both runtimes trace the same files for this job (same kernel, same sensor): the same
    // selection, so the same image.
    assert!(
        only_docker.is_empty() && only_embedded.is_empty(),
        "kept only with docker: {only_docker:?}; only embedded: {only_embedded:?}"
    );
    assert!(kd.contains("/usr/bin/jq"));
    assert_eq!(
        e.slim_digest(),
        first.slim_digest(),
        "a full daemonless build (embedded trace) of the same image"
    );
}
