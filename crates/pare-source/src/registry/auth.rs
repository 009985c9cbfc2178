//! Where registry credentials come from, in skopeo's and docker's order: `--creds USER:PASS`,
//! `$REGISTRY_AUTH_FILE` (podman's `auth.json`), `$XDG_RUNTIME_DIR/containers/auth.json`,
//! then the Docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, including
//! `credHelpers` and `credsStore`, through the `docker-credential-*` protocol that the
//! `docker_credential` crate speaks). Anonymous when none has an entry.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;

use super::RegistryError;

/// Where the credentials used for a registry came from (for messages, never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSource {
    /// No credentials found: requests go unauthenticated.
    Anonymous,
    /// `--creds USER:PASS`.
    Creds,
    /// An `auth.json` (`$REGISTRY_AUTH_FILE` or `$XDG_RUNTIME_DIR/containers/auth.json`):
    /// this one.
    AuthFile(PathBuf),
    /// Docker's `config.json`: its `auths`, `credHelpers` or `credsStore`.
    DockerConfig,
}

/// The keys a registry host may be stored under in an `auths` map.
fn keys_for(host: &str) -> Vec<String> {
    let mut keys = vec![
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
        format!("https://{host}/v1/"),
        format!("https://{host}/v2/"),
    ];
    if host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io" {
        keys.push("https://index.docker.io/v1/".into());
        keys.push("docker.io".into());
        keys.push("index.docker.io".into());
    }
    keys
}

/// Looks `host` up in an `auth.json`/`config.json` style `auths` map.
pub(crate) fn from_auth_file(
    path: &Path,
    host: &str,
) -> Result<Option<RegistryAuth>, RegistryError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(RegistryError::AuthFile {
                path: path.to_path_buf(),
                message: e.to_string(),
            });
        }
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::AuthFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let Some(auths) = value.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    for key in keys_for(host) {
        let Some(entry) = auths.get(&key) else {
            continue;
        };
        if let Some(token) = entry.get("identitytoken").and_then(|t| t.as_str()) {
            if !token.is_empty() {
                return Ok(Some(RegistryAuth::Bearer(token.to_string())));
            }
        }
        if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| RegistryError::AuthFile {
                    path: path.to_path_buf(),
                    message: format!("auths.{key}.auth: {e}"),
                })?;
            let text = String::from_utf8_lossy(&decoded);
            let Some((user, pass)) = text.split_once(':') else {
                return Err(RegistryError::AuthFile {
                    path: path.to_path_buf(),
                    message: format!("auths.{key}.auth is not base64 of USER:PASS"),
                });
            };
            return Ok(Some(RegistryAuth::Basic(
                user.to_string(),
                pass.to_string(),
            )));
        }
    }
    Ok(None)
}

/// Parses `USER:PASS` (`--creds`).
pub(crate) fn parse_creds(creds: &str) -> Result<RegistryAuth, RegistryError> {
    match creds.split_once(':') {
        Some((user, pass)) if !user.is_empty() => {
            Ok(RegistryAuth::Basic(user.to_string(), pass.to_string()))
        }
        _ => Err(RegistryError::BadCreds),
    }
}

/// Resolves the credentials for `host`.
pub(crate) fn resolve(
    host: &str,
    creds: Option<&str>,
) -> Result<(RegistryAuth, AuthSource), RegistryError> {
    if let Some(creds) = creds {
        return Ok((parse_creds(creds)?, AuthSource::Creds));
    }
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        files.push(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        files.push(Path::new(&d).join("containers/auth.json"));
    }
    for file in files {
        if let Some(auth) = from_auth_file(&file, host)? {
            return Ok((auth, AuthSource::AuthFile(file)));
        }
    }
    // The docker config: plain `auths`, `credHelpers` and `credsStore`.
    for key in keys_for(host) {
        match docker_credential::get_credential(&key) {
            Ok(docker_credential::DockerCredential::UsernamePassword(user, pass)) => {
                return Ok((RegistryAuth::Basic(user, pass), AuthSource::DockerConfig));
            }
            Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
                return Ok((RegistryAuth::Bearer(token), AuthSource::DockerConfig));
            }
            Err(docker_credential::CredentialRetrievalError::ConfigNotFound)
            | Err(docker_credential::CredentialRetrievalError::ConfigReadError)
            | Err(docker_credential::CredentialRetrievalError::NoCredentialConfigured) => {}
            // A helper (credsStore) that has nothing for this key says so on stdout.
            Err(docker_credential::CredentialRetrievalError::HelperFailure {
                stdout,
                stderr,
                ..
            }) if format!("{stdout}{stderr}")
                .to_ascii_lowercase()
                .contains("not found") => {}
            Err(e) => {
                return Err(RegistryError::CredentialHelper {
                    host: host.to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok((RegistryAuth::Anonymous, AuthSource::Anonymous))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_file_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &file,
            format!(r#"{{"auths":{{"reg.example:5000":{{"auth":"{b64}"}},"https://index.docker.io/v1/":{{"auth":"{b64}"}}}}}}"#),
        )
        .unwrap();
        assert_eq!(
            from_auth_file(&file, "reg.example:5000").unwrap(),
            Some(RegistryAuth::Basic("alice".into(), "s3cret".into()))
        );
        assert_eq!(
            from_auth_file(&file, "docker.io").unwrap(),
            Some(RegistryAuth::Basic("alice".into(), "s3cret".into()))
        );
        assert_eq!(from_auth_file(&file, "other:1").unwrap(), None);
        assert_eq!(
            from_auth_file(&dir.path().join("none.json"), "x").unwrap(),
            None
        );
        std::fs::write(&file, r#"{"auths":{"r":{"auth":"!!!"}}}"#).unwrap();
        assert!(from_auth_file(&file, "r").is_err());
    }

    #[test]
    fn creds() {
        assert_eq!(
            parse_creds("u:p:q").unwrap(),
            RegistryAuth::Basic("u".into(), "p:q".into())
        );
        assert!(parse_creds("nocolon").is_err());
        assert!(parse_creds(":p").is_err());
    }
}
