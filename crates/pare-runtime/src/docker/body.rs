//! The container configuration for a [`RunSpec`] (pure, unit-tested): labels, the sensor's
//! mounts, capabilities and command line, or the image's own command and user; and reading the
//! host ports the daemon bound.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use pare_docker::bollard::models::{ContainerCreateBody, HostConfig, PortBinding, PortMap};

use super::{OWNER_LABEL, RUN_LABEL};
use crate::{OUTPUT_DIR, RunSpec, RuntimeError, SENSOR_PATH};

/// The container configuration for `spec` (pure: unit-tested).
pub(crate) fn create_body(
    spec: &RunSpec,
    image: &str,
) -> Result<ContainerCreateBody, RuntimeError> {
    let mut labels = HashMap::new();
    labels.insert(RUN_LABEL.to_string(), "1".to_string());
    labels.insert(OWNER_LABEL.to_string(), crate::owner_token());
    let mut host = HostConfig {
        privileged: Some(false),
        ..Default::default()
    };
    let mut body = ContainerCreateBody {
        image: Some(image.to_string()),
        labels: Some(labels),
        env: if spec.env.is_empty() {
            None
        } else {
            Some(spec.env.clone())
        },
        tty: Some(false),
        attach_stdin: Some(false),
        open_stdin: Some(false),
        ..Default::default()
    };
    if !spec.hostname.is_empty() {
        body.hostname = Some(spec.hostname.clone());
    }
    match &spec.sensor {
        Some(sensor) => {
            let bin = absolute(&sensor.binary)?;
            let out = absolute(&sensor.output_dir)?;
            host.binds = Some(vec![
                format!("{bin}:{SENSOR_PATH}:ro"),
                format!("{out}:{OUTPUT_DIR}:rw"),
            ]);
            let mut caps = vec!["SYS_PTRACE".to_string()];
            if sensor.fanotify {
                caps.push("SYS_ADMIN".to_string());
            }
            host.cap_add = Some(caps);
            host.security_opt = Some(vec![
                "seccomp=unconfined".into(),
                "apparmor=unconfined".into(),
            ]);
            body.user = Some("0".to_string());
            // The sensor enters WORKDIR itself; setting it here too makes `exec` start there.
            if !spec.workdir.is_empty() {
                body.working_dir = Some(spec.workdir.clone());
            }
            body.entrypoint = Some(sensor_argv(spec));
            body.cmd = Some(Vec::new());
        }
        None => {
            if let Some((first, rest)) = spec.command.split_first() {
                body.entrypoint = Some(vec![first.clone()]);
                body.cmd = Some(rest.to_vec());
            }
            if !spec.user.is_empty() {
                body.user = Some(spec.user.clone());
            }
            if !spec.workdir.is_empty() {
                body.working_dir = Some(spec.workdir.clone());
            }
        }
    }
    if !spec.ports.is_empty() {
        let mut bindings: PortMap = HashMap::new();
        let mut exposed = Vec::new();
        for p in &spec.ports {
            let key = format!("{p}/tcp");
            exposed.push(key.clone());
            bindings.insert(
                key,
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            );
        }
        body.exposed_ports = Some(exposed);
        host.port_bindings = Some(bindings);
    }
    body.host_config = Some(host);
    Ok(body)
}

/// The sensor's command line for a run: see [`crate::sensor_command`].
pub(crate) fn sensor_argv(spec: &RunSpec) -> Vec<String> {
    crate::sensor_command(
        OUTPUT_DIR,
        &spec.user,
        &spec.workdir,
        spec.sensor.as_ref().is_none_or(|s| s.fanotify),
        &spec.env,
        &spec.command,
    )
}

fn absolute(p: &Path) -> Result<String, RuntimeError> {
    let abs = std::fs::canonicalize(p).map_err(|source| RuntimeError::Io {
        path: p.to_path_buf(),
        source,
    })?;
    abs.into_os_string()
        .into_string()
        .map_err(|p| RuntimeError::Docker {
            message: format!(
                "{}: path is not UTF-8, cannot bind-mount it",
                Path::new(&p).display()
            ),
        })
}

/// Reads the host address of container port `port` from an inspect `NetworkSettings.Ports`.
/// An unspecified host IP (`0.0.0.0`, `::`, empty) becomes 127.0.0.1.
pub(crate) fn parse_port_binding(ports: &PortMap, port: u16) -> Option<SocketAddr> {
    let list = ports.get(&format!("{port}/tcp"))?.as_ref()?;
    // Prefer an explicit IPv4 address, then an unspecified one (reachable on loopback), then v6.
    list.iter()
        .filter_map(|b| {
            let hp = b
                .host_port
                .as_deref()?
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)?;
            let (rank, ip) = match b.host_ip.as_deref().map(str::parse::<IpAddr>) {
                Some(Ok(ip)) if ip.is_unspecified() => (1, IpAddr::V4(Ipv4Addr::LOCALHOST)),
                Some(Ok(ip)) if ip.is_ipv4() => (0, ip),
                Some(Ok(ip)) => (2, ip),
                _ => (1, IpAddr::V4(Ipv4Addr::LOCALHOST)),
            };
            Some((rank, SocketAddr::new(ip, hp)))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, addr)| addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SensorSpec;

    fn spec() -> RunSpec {
        RunSpec {
            source: crate::RunSource::Daemon("img".into()),
            command: vec!["python3".into(), "-m".into(), "http.server".into()],
            env: vec!["A=1".into()],
            user: "app".into(),
            workdir: "/srv".into(),
            ports: vec![8000],
            sensor: None,
            hostname: "h".into(),
        }
    }

    #[test]
    fn port_binding_parsing() {
        let mut m: PortMap = HashMap::new();
        m.insert(
            "8000/tcp".into(),
            Some(vec![
                PortBinding {
                    host_ip: Some("::".into()),
                    host_port: Some("49154".into()),
                },
                PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some("49153".into()),
                },
            ]),
        );
        m.insert("9000/tcp".into(), None);
        m.insert(
            "9001/tcp".into(),
            Some(vec![PortBinding {
                host_ip: Some("0.0.0.0".into()),
                host_port: Some("4000".into()),
            }]),
        );
        m.insert(
            "9002/tcp".into(),
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some("garbage".into()),
            }]),
        );
        assert_eq!(
            parse_port_binding(&m, 8000),
            Some("127.0.0.1:49153".parse().unwrap())
        );
        assert_eq!(parse_port_binding(&m, 9000), None);
        assert_eq!(
            parse_port_binding(&m, 9001),
            Some("127.0.0.1:4000".parse().unwrap())
        );
        assert_eq!(parse_port_binding(&m, 9002), None);
        assert_eq!(parse_port_binding(&m, 1), None);
    }

    #[test]
    fn plain_run_keeps_image_user_and_default_security() {
        let b = create_body(&spec(), "img").unwrap();
        assert_eq!(b.entrypoint, Some(vec!["python3".to_string()]));
        assert_eq!(
            b.cmd,
            Some(vec!["-m".to_string(), "http.server".to_string()])
        );
        assert_eq!(b.user.as_deref(), Some("app"));
        assert_eq!(b.working_dir.as_deref(), Some("/srv"));
        assert_eq!(
            b.labels
                .as_ref()
                .unwrap()
                .get(RUN_LABEL)
                .map(String::as_str),
            Some("1")
        );
        let owner = b.labels.as_ref().unwrap().get(OWNER_LABEL).unwrap();
        assert_eq!(crate::owner_alive(owner), Some(true));
        let h = b.host_config.unwrap();
        assert_eq!(h.privileged, Some(false));
        assert!(h.cap_add.is_none() && h.security_opt.is_none() && h.binds.is_none());
        let pb = h.port_bindings.unwrap();
        let b8000 = pb.get("8000/tcp").unwrap().as_ref().unwrap();
        assert_eq!(b8000[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(b8000[0].host_port.as_deref(), Some(""));
    }

    #[test]
    fn sensor_run_is_root_with_explicit_caps_never_privileged() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("sensor");
        std::fs::write(&bin, b"x").unwrap();
        let mut s = spec();
        s.sensor = Some(SensorSpec {
            binary: bin.clone(),
            output_dir: dir.path().to_path_buf(),
            fanotify: false,
        });
        let b = create_body(&s, "img").unwrap();
        assert_eq!(b.user.as_deref(), Some("0"));
        assert_eq!(
            b.entrypoint.unwrap(),
            [
                SENSOR_PATH,
                "--output",
                OUTPUT_DIR,
                "--user",
                "app",
                "--workdir",
                "/srv",
                "--no-fanotify",
                // The image's ENV sets no HOME: the app gets its user's (issue 8).
                "--home-from-user",
                "--",
                "python3",
                "-m",
                "http.server"
            ]
        );
        assert_eq!(b.cmd, Some(vec![]));
        let h = b.host_config.unwrap();
        assert_eq!(h.privileged, Some(false));
        assert_eq!(h.cap_add, Some(vec!["SYS_PTRACE".to_string()]));
        assert_eq!(
            h.security_opt.unwrap(),
            ["seccomp=unconfined", "apparmor=unconfined"]
        );
        let binds = h.binds.unwrap();
        assert!(
            binds[0].ends_with(&format!("/sensor:{SENSOR_PATH}:ro")),
            "{binds:?}"
        );

        s.sensor.as_mut().unwrap().fanotify = true;
        let b = create_body(&s, "img").unwrap();
        assert!(!b.entrypoint.unwrap().contains(&"--no-fanotify".to_string()));
        assert_eq!(
            b.host_config.unwrap().cap_add.unwrap(),
            ["SYS_PTRACE", "SYS_ADMIN"]
        );
    }

    #[test]
    fn missing_sensor_binary_names_the_path() {
        let mut s = spec();
        s.sensor = Some(SensorSpec {
            binary: "/nonexistent/sensor".into(),
            output_dir: "/tmp".into(),
            fanotify: true,
        });
        let err = create_body(&s, "img").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/sensor"), "{err}");
    }
}
