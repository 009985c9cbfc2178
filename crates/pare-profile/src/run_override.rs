//! How a service definition (Compose) changes the way an image runs: its own entrypoint,
//! command, environment, user, working dir and ports, over the image's config.

use crate::ImageRun;

/// Settings that replace or extend the image's config for a run (`None`/empty: keep the
/// image's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOverride {
    /// Replaces ENTRYPOINT; as with Docker, the image's CMD is then dropped unless `command`
    /// is given too.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces CMD.
    pub command: Option<Vec<String>>,
    /// `KEY=VALUE` set over the image's ENV (same key: replaced).
    pub env: Vec<String>,
    /// Replaces USER.
    pub user: Option<String>,
    /// Replaces WORKDIR.
    pub workdir: Option<String>,
    /// More container TCP ports the service offers (published or exposed).
    pub ports: Vec<u16>,
}

impl RunOverride {
    /// Applies the override to how an image runs.
    pub fn apply(&self, run: &mut ImageRun) {
        if let Some(e) = &self.entrypoint {
            run.entrypoint = e.clone();
            run.cmd = Vec::new();
        }
        if let Some(c) = &self.command {
            run.cmd = c.clone();
        }
        for kv in &self.env {
            let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
            run.env
                .retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
            run.env.push(kv.clone());
        }
        if let Some(u) = &self.user {
            run.user = u.clone();
        }
        if let Some(w) = &self.workdir {
            run.workdir = w.clone();
        }
        for p in &self.ports {
            if !run.tcp_ports.contains(p) {
                run.tcp_ports.push(*p);
                run.exposed.push(format!("{p}/tcp"));
            }
        }
        run.tcp_ports.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageRun {
        ImageRun {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["serve".into()],
            env: vec!["PATH=/bin".into(), "A=1".into()],
            user: "app".into(),
            workdir: "/srv".into(),
            exposed: vec!["8080/tcp".into()],
            tcp_ports: vec![8080],
        }
    }

    #[test]
    fn command_replaces_cmd_and_keeps_the_entrypoint() {
        let mut r = image();
        RunOverride {
            command: Some(vec!["worker".into()]),
            env: vec!["A=2".into(), "B=3".into()],
            ports: vec![9000, 8080],
            ..Default::default()
        }
        .apply(&mut r);
        assert_eq!(r.command(), ["/entry", "worker"]);
        assert_eq!(r.env, ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(r.tcp_ports, [8080, 9000]);
        assert_eq!((r.user.as_str(), r.workdir.as_str()), ("app", "/srv"));
    }

    #[test]
    fn entrypoint_drops_the_image_cmd() {
        let mut r = image();
        RunOverride {
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            user: Some("0".into()),
            workdir: Some("/".into()),
            ..Default::default()
        }
        .apply(&mut r);
        assert_eq!(r.command(), ["/bin/sh", "-c"]);
        assert_eq!((r.user.as_str(), r.workdir.as_str()), ("0", "/"));
        let mut r = image();
        RunOverride::default().apply(&mut r);
        assert_eq!(r, image());
    }
}
