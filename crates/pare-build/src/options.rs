//! What `pare build` is asked to do, and the default tag of the slim image.

use std::path::PathBuf;

use pare_profile::ProfileOptions;
use pare_reference::ImageRef;

/// What `pare build` was asked to do.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The probe, runtime and sensor options, shared with `pare profile`. `profile.output` is
    /// the artifacts directory (profile.json, seccomp.json, apparmor.profile, report.json).
    pub profile: ProfileOptions,
    /// Use this recorded `profile.json` instead of tracing again.
    pub reuse_profile: Option<PathBuf>,
    /// `--include-path`: paths (globs) kept whatever the trace says.
    pub include_paths: Vec<String>,
    /// `--include-bin`: binaries kept with their shared libraries.
    pub include_bins: Vec<String>,
    /// `--include-exe`: executables found on `PATH`, kept with their libraries.
    pub include_exes: Vec<String>,
    /// `--include-shell`: keep a shell (`/bin/sh` and what it needs).
    pub include_shell: bool,
    /// `--exclude`: globs removed from the selection, even when traced.
    pub excludes: Vec<String>,
    /// `--preserve-path`: paths kept as they are in the source, whole directories included.
    pub preserve_paths: Vec<String>,
    /// Tag for the slim image in the daemon (default `NAME.slim:TAG`).
    pub tag: Option<String>,
    /// `oci:DIR[:TAG]` or `docker-archive:PATH[:REF]`; default: load into the daemon when the
    /// docker runtime is used, else `oci:ARTIFACTS/image:TAG`.
    pub output: Option<String>,
    /// Run the slim image and replay the probes (on by default).
    pub verify: bool,
    /// Timestamp for every entry (else `SOURCE_DATE_EPOCH`, else the source image's
    /// creation time, else 0).
    pub epoch: Option<u64>,
    /// Analyze both images for the report (sizes, attack surface).
    pub analyze: bool,
    /// Run on this runtime instead of detecting one (pare-compose: containers joined to a
    /// project's network).
    pub runtime: Option<GivenRuntime>,
    /// Called once the slim image is loaded into the daemon, with its reference, while the
    /// build goes on (analysis, gzip measurement): pare-compose starts verifying it then.
    pub on_loaded: Option<OnLoaded>,
}

/// A callback for [`BuildOptions::on_loaded`].
#[derive(Clone)]
pub struct OnLoaded(pub std::sync::Arc<dyn Fn(&ImageRef) + Send + Sync>);

impl std::fmt::Debug for OnLoaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnLoaded")
    }
}

/// A runtime handed to [`build`](crate::build) by the caller.
#[derive(Clone)]
pub struct GivenRuntime(pub pare_runtime::SharedRuntime);

impl std::fmt::Debug for GivenRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GivenRuntime({})", self.0.name())
    }
}

impl BuildOptions {
    /// The defaults of `pare build` around these profile options: verify and analyze, nothing included or excluded, the default tag and output.
    pub fn new(profile: ProfileOptions) -> Self {
        BuildOptions {
            profile,
            reuse_profile: None,
            include_paths: Vec::new(),
            include_bins: Vec::new(),
            include_exes: Vec::new(),
            include_shell: false,
            excludes: Vec::new(),
            preserve_paths: Vec::new(),
            tag: None,
            output: None,
            verify: true,
            epoch: None,
            analyze: true,
            runtime: None,
            on_loaded: None,
        }
    }
}

/// `NAME.slim:TAG` for a reference: the repository gets `.slim`, the tag is kept.
pub fn default_tag(reference: &ImageRef) -> String {
    let name = match reference {
        ImageRef::DockerDaemon { name } | ImageRef::Registry { name } => name.clone(),
        ImageRef::Oci { dir, tag } | ImageRef::OciArchive { path: dir, tag } => {
            let base = dir
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            format!(
                "{}:{}",
                base.to_ascii_lowercase(),
                tag.clone().unwrap_or_else(|| "latest".into())
            )
        }
        ImageRef::DockerArchive { path, reference } => match reference {
            Some(r) => r.clone(),
            None => {
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "image".into());
                format!("{}:latest", stem.to_ascii_lowercase())
            }
        },
    };
    // Digest references (`name@sha256:…`) keep only the name.
    let name = name.split('@').next().unwrap_or(&name).to_string();
    let (repo, tag) = pare_reference::split_tag(&name);
    format!("{repo}.slim:{}", tag.unwrap_or("latest"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tags() {
        let t = |s: &str| default_tag(&ImageRef::parse(s).unwrap());
        assert_eq!(
            t("pare-example/python-web"),
            "pare-example/python-web.slim:latest"
        );
        assert_eq!(t("nginx:1.25"), "nginx.slim:1.25");
        assert_eq!(t("localhost:5000/app:v2"), "localhost:5000/app.slim:v2");
        assert_eq!(t("localhost:5000/app"), "localhost:5000/app.slim:latest");
        assert_eq!(t("oci:/tmp/Layout:v1"), "layout.slim:v1");
        assert_eq!(t("docker-archive:/tmp/app.tar"), "app.slim:latest");
        assert_eq!(
            t(&format!("app@sha256:{}", "ab".repeat(32))),
            "app.slim:latest"
        );
    }
}
