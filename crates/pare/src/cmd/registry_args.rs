//! Flags for `docker://` references, shared by every command that reads or writes images
//! (`#[command(flatten)]`). They set the process-wide registry options once.

use std::path::PathBuf;
use std::time::Duration;

use pare_source::registry::{RegistryOptions, set_registry_options};

#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Credentials for docker:// registries as USER:PASS (default: $REGISTRY_AUTH_FILE,
    /// podman's auth.json, then ~/.docker/config.json with its credHelpers/credsStore).
    #[arg(
        long,
        value_name = "USER:PASS",
        env = "PARE_REGISTRY_CREDS",
        hide_env_values = true
    )]
    pub creds: Option<String>,
    /// Verify registry TLS certificates; `--tls-verify=false` also allows plain HTTP.
    #[arg(long = "tls-verify", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// Extra CA certificates (*.crt, *.pem) for registries, as skopeo's --cert-dir.
    #[arg(long = "cert-dir", value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Blob cache for docker:// images (default ~/.cache/pare/blobs).
    #[arg(long = "cache-dir", value_name = "DIR", env = "PARE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Seconds a registry may stay silent before a request fails.
    #[arg(long = "registry-timeout", value_name = "SECS", default_value_t = 60)]
    pub registry_timeout: u64,
}

impl RegistryArgs {
    /// Makes these the options of every docker:// access in this process.
    pub fn install(&self) {
        set_registry_options(RegistryOptions {
            creds: self.creds.clone(),
            tls_verify: self.tls_verify,
            cert_dir: self.cert_dir.clone(),
            cache_dir: self.cache_dir.clone(),
            timeout: Duration::from_secs(self.registry_timeout.max(1)),
            ..RegistryOptions::default()
        });
    }
}
