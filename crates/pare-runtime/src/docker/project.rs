//! What a multi-container project (pare-compose) needs from the daemon beyond one container:
//! user-defined networks whose members resolve each other by DNS alias, volumes, bind mounts,
//! tmpfs, a healthcheck and a container name — given to [`DockerRuntime::start_attached`] as an
//! [`Attach`] — and the network, volume, image and health calls around them.

use std::collections::HashMap;
use std::time::Duration;

use pare_docker::bollard;
use pare_docker::bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HealthStatusEnum, NetworkConnectRequest,
    NetworkCreateRequest, NetworkingConfig,
};
use pare_docker::bollard::query_parameters::RemoveVolumeOptionsBuilder;

use super::{DockerContainer, DockerRuntime, OWNER_LABEL, RUN_LABEL, derr};
use crate::RuntimeError;
use pare_docker::is_not_found;

/// How a container joins a project, on top of its [`RunSpec`](crate::RunSpec).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attach {
    /// The container's name (default `pare-RANDOM`).
    pub name: Option<String>,
    /// Networks to join, each with the DNS aliases the container answers to there. The first
    /// is joined at creation, the others before the start (API 1.41 takes one at creation).
    pub networks: Vec<(String, Vec<String>)>,
    /// `SOURCE:TARGET[:ro]` mounts: SOURCE is an absolute host path or a volume name.
    pub binds: Vec<String>,
    /// Container paths mounted as tmpfs.
    pub tmpfs: Vec<String>,
    /// The container's healthcheck (Docker's `HEALTHCHECK`).
    pub healthcheck: Option<Healthcheck>,
    /// Extra labels.
    pub labels: Vec<(String, String)>,
}

/// A healthcheck as the daemon runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", argv…]`, `["CMD-SHELL", command]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Time between checks; `None` leaves the daemon's default (30 s).
    pub interval: Option<Duration>,
    /// How long one check may run before it counts as failed; `None`: the default (30 s).
    pub timeout: Option<Duration>,
    /// Consecutive failures before the container is unhealthy; `None`: the default (3).
    pub retries: Option<u32>,
    /// Grace period after start during which failures do not count; `None`: the default (0).
    pub start_period: Option<Duration>,
}

/// A container's health as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// No healthcheck configured.
    None,
    /// Checks are running but none has passed yet (within the start period or the retries).
    Starting,
    /// The last check passed.
    Healthy,
    /// `retries` consecutive checks failed.
    Unhealthy,
}

fn nanos(d: Option<Duration>) -> Option<i64> {
    d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Adds `attach` to a container configuration (pure: unit-tested).
pub(crate) fn apply(body: &mut ContainerCreateBody, attach: &Attach) {
    let host = body.host_config.get_or_insert_with(Default::default);
    if !attach.binds.is_empty() {
        host.binds
            .get_or_insert_with(Vec::new)
            .extend(attach.binds.iter().cloned());
    }
    if !attach.tmpfs.is_empty() {
        let t = host.tmpfs.get_or_insert_with(HashMap::new);
        for p in &attach.tmpfs {
            t.insert(p.clone(), String::new());
        }
    }
    if let Some((net, aliases)) = attach.networks.first() {
        host.network_mode = Some(net.clone());
        let mut endpoints = HashMap::new();
        endpoints.insert(
            net.clone(),
            EndpointSettings {
                aliases: Some(aliases.clone()),
                ..Default::default()
            },
        );
        body.networking_config = Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        });
    }
    if let Some(h) = &attach.healthcheck {
        body.healthcheck = Some(HealthConfig {
            test: Some(h.test.clone()),
            interval: nanos(h.interval),
            timeout: nanos(h.timeout),
            retries: h.retries.map(i64::from),
            start_period: nanos(h.start_period),
            start_interval: None,
        });
    }
    if !attach.labels.is_empty() {
        let l = body.labels.get_or_insert_with(HashMap::new);
        for (k, v) in &attach.labels {
            l.insert(k.clone(), v.clone());
        }
    }
}

/// `io.pare.run=1` and this process's owner token.
fn owner_labels() -> HashMap<String, String> {
    let mut labels = HashMap::new();
    labels.insert(RUN_LABEL.to_string(), "1".to_string());
    labels.insert(OWNER_LABEL.to_string(), crate::owner_token());
    labels
}

impl DockerRuntime {
    /// Creates a bridge network labelled as pare's (so a sweep can find it).
    pub fn create_network(&self, name: &str) -> Result<(), RuntimeError> {
        let c = &self.client;
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(owner_labels()),
            ..Default::default()
        };
        c.block_on(c.call(c.api().create_network(req)))
            .map(drop)
            .map_err(|e| derr(c, &format!("create network {name}"), e))
    }

    /// Creates a volume labelled as pare's (so a sweep can find it).
    pub fn create_volume(&self, name: &str) -> Result<(), RuntimeError> {
        let c = &self.client;
        let req = bollard::models::VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(owner_labels()),
            ..Default::default()
        };
        c.block_on(c.call(c.api().create_volume(req)))
            .map(drop)
            .map_err(|e| derr(c, &format!("create volume {name}"), e))
    }

    /// Removes the networks and volumes that pare processes now dead (a SIGKILL) left
    /// behind, as [`remove_stale`](Self::remove_stale) does for containers. Best effort:
    /// returns how many went.
    pub fn remove_stale_networks_and_volumes(&self) -> usize {
        let c = &self.client;
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), vec![format!("{RUN_LABEL}=1")]);
        let dead = |labels: Option<&HashMap<String, String>>| {
            let owner = labels
                .and_then(|l| l.get(OWNER_LABEL))
                .map_or("", String::as_str);
            crate::owner_alive(owner) == Some(false)
        };
        let mut n = 0;
        let nets = c.block_on(c.call(c.api().list_networks(Some(
            bollard::query_parameters::ListNetworksOptions {
                filters: Some(filters.clone()),
            },
        ))));
        for net in nets.unwrap_or_default() {
            if dead(net.labels.as_ref()) {
                if let Some(name) = net.name {
                    n += usize::from(self.remove_network(&name).is_ok());
                }
            }
        }
        let vols = c.block_on(c.call(c.api().list_volumes(Some(
            bollard::query_parameters::ListVolumesOptions {
                filters: Some(filters),
            },
        ))));
        for v in vols.ok().and_then(|r| r.volumes).unwrap_or_default() {
            if dead(Some(&v.labels)) {
                n += usize::from(self.remove_volume(&v.name).is_ok());
            }
        }
        n
    }

    /// Removes a network; a missing one is not an error.
    pub fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        let c = &self.client;
        match c.block_on(c.call(c.api().remove_network(name))) {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(derr(c, &format!("remove network {name}"), e)),
        }
    }

    /// Removes a volume (forced); a missing one is not an error.
    pub fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        let c = &self.client;
        let opts = RemoveVolumeOptionsBuilder::new().force(true).build();
        match c.block_on(c.call(c.api().remove_volume(name, Some(opts)))) {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(derr(c, &format!("remove volume {name}"), e)),
        }
    }

    /// Force-removes every container (running or not) labelled `label=value`, with its
    /// anonymous volumes: what a project instance started, whoever holds the handles.
    pub fn remove_labelled(&self, label: &str, value: &str) -> Result<usize, RuntimeError> {
        let mut n = 0;
        for id in self
            .labelled(label, value)?
            .into_iter()
            .filter_map(|c| c.id)
        {
            n += usize::from(self.force_remove(&id)?);
        }
        Ok(n)
    }

    /// Whether the daemon has this image (name, name:tag or ID).
    pub fn image_exists(&self, image: &str) -> Result<bool, RuntimeError> {
        let c = &self.client;
        match c.block_on(c.call(c.api().inspect_image(image))) {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(derr(c, &format!("inspect image {image}"), e)),
        }
    }

    /// Connects a created container to a further network under `aliases`.
    pub(crate) fn connect_network(
        &self,
        id: &str,
        network: &str,
        aliases: &[String],
    ) -> Result<(), RuntimeError> {
        let c = &self.client;
        let req = NetworkConnectRequest {
            container: id.to_string(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(aliases.to_vec()),
                ..Default::default()
            }),
        };
        c.block_on(c.call(c.api().connect_network(network, req)))
            .map_err(|e| derr(c, &format!("connect {id} to network {network}"), e))
    }
}

impl DockerContainer {
    /// The container's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The daemon's view of the container's health.
    pub fn health(&self) -> Result<Health, RuntimeError> {
        let inner = &self.inner;
        let c = &inner.client;
        let info = c
            .block_on(c.call(c.api().inspect_container(&inner.id, None)))
            .map_err(|e| derr(c, &format!("inspect container {}", inner.name), e))?;
        Ok(
            match info
                .state
                .and_then(|s| s.health)
                .and_then(|h| h.status)
                .unwrap_or(HealthStatusEnum::NONE)
            {
                HealthStatusEnum::HEALTHY => Health::Healthy,
                HealthStatusEnum::UNHEALTHY => Health::Unhealthy,
                HealthStatusEnum::STARTING => Health::Starting,
                HealthStatusEnum::NONE | HealthStatusEnum::EMPTY => Health::None,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_adds_networks_mounts_and_healthcheck() {
        let mut body = ContainerCreateBody {
            host_config: Some(bollard::models::HostConfig {
                binds: Some(vec!["/s:/.pare/sensor:ro".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let a = Attach {
            name: Some("x".into()),
            networks: vec![
                ("net1".into(), vec!["db".into(), "database".into()]),
                ("net2".into(), vec!["db".into()]),
            ],
            binds: vec!["vol:/data".into(), "/host/conf:/etc/conf:ro".into()],
            tmpfs: vec!["/run/x".into()],
            healthcheck: Some(Healthcheck {
                test: vec!["CMD".into(), "true".into()],
                interval: Some(Duration::from_secs(2)),
                timeout: None,
                retries: Some(3),
                start_period: None,
            }),
            labels: vec![("io.pare.service".into(), "db".into())],
        };
        apply(&mut body, &a);
        let h = body.host_config.as_ref().unwrap();
        assert_eq!(
            h.binds.as_ref().unwrap(),
            &[
                "/s:/.pare/sensor:ro",
                "vol:/data",
                "/host/conf:/etc/conf:ro"
            ]
        );
        assert!(h.tmpfs.as_ref().unwrap().contains_key("/run/x"));
        assert_eq!(h.network_mode.as_deref(), Some("net1"));
        let eps = body
            .networking_config
            .as_ref()
            .unwrap()
            .endpoints_config
            .as_ref()
            .unwrap();
        assert_eq!(eps.len(), 1, "API 1.41 takes one network at creation");
        assert_eq!(
            eps["net1"].aliases.as_deref().unwrap(),
            &["db".to_string(), "database".to_string()]
        );
        let hc = body.healthcheck.as_ref().unwrap();
        assert_eq!(hc.interval, Some(2_000_000_000));
        assert_eq!(hc.retries, Some(3));
        assert_eq!(hc.timeout, None);
        assert_eq!(body.labels.as_ref().unwrap()["io.pare.service"], "db");
    }

    #[test]
    fn empty_attach_changes_nothing() {
        let mut body = ContainerCreateBody::default();
        apply(&mut body, &Attach::default());
        let h = body.host_config.unwrap();
        assert!(h.binds.is_none() && h.tmpfs.is_none() && h.network_mode.is_none());
        assert!(body.networking_config.is_none() && body.healthcheck.is_none());
    }
}
