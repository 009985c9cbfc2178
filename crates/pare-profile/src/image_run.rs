//! How the image runs (its config, or a Compose service's override) and which probes the
//! user asked for.

use pare_image::ImageConfiguration;
use pare_trace::ProbeSpec;

use crate::{ProfileError, ProfileOptions, io_err};

/// How the image runs, from its config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRun {
    /// The config's ENTRYPOINT, in exec form; empty when the image sets none.
    pub entrypoint: Vec<String>,
    /// The config's CMD: the arguments after the entrypoint, or the whole command when there
    /// is no entrypoint.
    pub cmd: Vec<String>,
    /// The config's ENV, as `KEY=VALUE` strings in config order.
    pub env: Vec<String>,
    /// The config's USER (`name`, `uid`, `uid:gid`, ...); empty means the runtime's default
    /// (root).
    pub user: String,
    /// The config's WORKDIR; empty means `/`.
    pub workdir: String,
    /// As written in the config (`8080/tcp`).
    pub exposed: Vec<String>,
    /// TCP ports, sorted.
    pub tcp_ports: Vec<u16>,
}

impl ImageRun {
    /// Reads how the image runs from its config. An image config without a `config` section
    /// gives the empty run (no command, no ports); non-TCP exposed ports are kept in `exposed`
    /// but not in `tcp_ports`.
    pub fn from_config(cfg: &ImageConfiguration) -> Self {
        let Some(c) = cfg.config() else {
            return ImageRun::default();
        };
        let mut exposed: Vec<String> = c.exposed_ports().clone().unwrap_or_default();
        exposed.sort();
        let mut tcp_ports: Vec<u16> = exposed
            .iter()
            .filter_map(|p| {
                let (n, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
                if proto.eq_ignore_ascii_case("tcp") {
                    n.trim().parse().ok()
                } else {
                    None
                }
            })
            .collect();
        tcp_ports.sort_unstable();
        tcp_ports.dedup();
        ImageRun {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().clone().unwrap_or_default(),
            user: c.user().clone().unwrap_or_default(),
            workdir: c.working_dir().clone().unwrap_or_default(),
            exposed,
            tcp_ports,
        }
    }

    /// The ports a run must publish: the exposed TCP ports, then any other port a probe uses.
    pub fn ports_for<'a>(&self, probes: impl IntoIterator<Item = &'a ProbeSpec>) -> Vec<u16> {
        let mut ports = self.tcp_ports.clone();
        for port in probes.into_iter().filter_map(ProbeSpec::port) {
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        ports
    }

    /// ENTRYPOINT + CMD.
    pub fn command(&self) -> Vec<String> {
        self.entrypoint
            .iter()
            .chain(self.cmd.iter())
            .cloned()
            .collect()
    }
}

/// What the runtime starts from: the runtime's own [`RunSource`](pare_runtime::RunSource).
pub use pare_runtime::RunSource as Target;

/// The probes to run, from the options; `None` when the user gave none (use the defaults).
pub(crate) fn explicit_probes(
    opts: &ProfileOptions,
    run: &ImageRun,
) -> Result<Option<Vec<ProbeSpec>>, ProfileError> {
    let default_port = run.tcp_ports.first().copied();
    let mut specs = Vec::new();
    for f in &opts.http_probes {
        specs.push(f.to_spec(default_port)?);
    }
    if let Some(file) = &opts.probe_file {
        let text = std::fs::read_to_string(file).map_err(io_err(file))?;
        specs.extend(pare_probe::parse_probes(&text, file, default_port)?);
    }
    for c in &opts.exec {
        specs.push(ProbeSpec::Exec {
            argv: pare_probe::exec_argv(c),
        });
    }
    for c in &opts.host_exec {
        specs.push(ProbeSpec::HostExec { command: c.clone() });
    }
    Ok(if specs.is_empty() { None } else { Some(specs) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_run_from_config() {
        let cfg: ImageConfiguration = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
            "config":{"Entrypoint":["/bin/sh","-c"],"Cmd":["exec app"],"Env":["A=1"],"User":"app","WorkingDir":"/srv",
            "ExposedPorts":{"8080/tcp":{},"53/udp":{},"443/tcp":{}}}}"#,
        )
        .unwrap();
        let r = ImageRun::from_config(&cfg);
        assert_eq!(r.command(), vec!["/bin/sh", "-c", "exec app"]);
        assert_eq!(r.tcp_ports, vec![443, 8080]);
        assert_eq!((r.user.as_str(), r.workdir.as_str()), ("app", "/srv"));
        assert_eq!(r.exposed.len(), 3);
        let probes = [
            ProbeSpec::Tcp { port: 8080 },
            ProbeSpec::Tcp { port: 9000 },
            ProbeSpec::Job,
        ];
        assert_eq!(r.ports_for(&probes), vec![443, 8080, 9000]);
    }
}
