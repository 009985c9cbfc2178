//! The plan of a run: the start order and the targets with what they need ([`Plan`]), then the
//! checks and set-up before anything starts ([`prepare`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pare_runtime::DockerRuntime;

use super::cleanup::RunCleanup;
use super::{ComposeOptions, RunError, file_err};
use crate::model::Project;
use crate::order;

/// The start order, the targets in it, and every service they involve.
pub(super) struct Plan {
    /// Every service, dependencies first.
    pub(super) order: Vec<String>,
    /// The services to slim (or profile), in start order, so that a slimmed dependency is
    /// verified before its users.
    pub(super) targets: Vec<String>,
    /// The targets and everything they depend on.
    pub(super) involved: BTreeSet<String>,
}

impl Plan {
    /// Orders `depends_on` (cycles are errors) and picks the targets (all when none named).
    pub(super) fn new(project: &Project, services: &[String]) -> Result<Plan, RunError> {
        let order = order::start_order(project)?;
        let targets = order::targets(project, services)?;
        let targets: Vec<String> = order
            .iter()
            .filter(|s| targets.contains(s))
            .cloned()
            .collect();
        let mut involved: BTreeSet<String> = targets.iter().cloned().collect();
        for t in &targets {
            involved.extend(order::dependencies(project, t, &order));
        }
        Ok(Plan {
            order,
            targets,
            involved,
        })
    }

    /// The verifications that share one fresh instance, each list in start order: a target
    /// that other targets depend on (`db` under `api`) is verified in the instance of the
    /// first target (in start order) among those that nothing else targeted depends on and
    /// that need it, just before what depends on it starts there; that target comes last.
    /// So every verification keeps its instance fresh where it matters (see `verify`), and a
    /// slimmed dependency is started (a database initialised) once, not once more per user.
    pub(super) fn verify_groups(&self, project: &Project) -> Vec<Vec<String>> {
        let needs: BTreeMap<&String, BTreeSet<String>> = self
            .targets
            .iter()
            .map(|t| (t, order::dependencies(project, t, &self.order)))
            .collect();
        let tops: Vec<&String> = self
            .targets
            .iter()
            .filter(|t| !needs.values().any(|n| n.contains(*t)))
            .collect();
        tops.iter()
            .map(|top| {
                let mut group: Vec<String> = self
                    .targets
                    .iter()
                    .filter(|m| {
                        // Its host: the first top that needs it (every non-top target is
                        // needed by one, following its users up).
                        tops.iter().find(|h| needs[**h].contains(*m)) == Some(top)
                    })
                    .cloned()
                    .collect();
                group.push((*top).clone());
                group
            })
            .collect()
    }

    /// The services that run untraced: involved, but not targets.
    pub(super) fn dependencies(&self) -> Vec<String> {
        self.involved
            .iter()
            .filter(|n| !self.targets.contains(n))
            .cloned()
            .collect()
    }
}

/// What a run needs before it starts anything.
pub(super) struct Prepared {
    pub(super) docker: Arc<DockerRuntime>,
    /// The run's ID (`pareHEX`, shared by its instances and labelling their containers) and
    /// what Ctrl-C removes.
    pub(super) run: RunCleanup,
    pub(super) sensor: PathBuf,
    /// Each service's own image.
    pub(super) originals: BTreeMap<String, String>,
}

/// Connects to the daemon, checks that every involved image is there and every published
/// host port free, registers the Ctrl-C clean-up and creates the artifacts directory.
pub(super) fn prepare(
    project: &Project,
    plan: &Plan,
    opts: &ComposeOptions,
) -> Result<Prepared, RunError> {
    let docker = Arc::new(DockerRuntime::connect(
        Duration::from_millis(1500),
        &opts.profile.cancel,
    )?);
    docker.remove_stale_networks_and_volumes();
    for name in &plan.involved {
        let image = &project.services[name].image;
        if !docker.image_exists(image)? {
            return Err(RunError::ImageNotFound {
                service: name.clone(),
                image: image.clone(),
            });
        }
    }
    check_host_ports(project, &plan.involved)?;
    let run = RunCleanup::register(&docker, format!("pare{}", &hex_id()), &opts.profile.cancel);
    std::fs::create_dir_all(&opts.artifacts).map_err(file_err(&opts.artifacts))?;
    let sensor = pare_profile::locate_sensor(opts.profile.sensor.as_deref())?;
    let originals: BTreeMap<String, String> = project
        .services
        .iter()
        .map(|(n, s)| (n.clone(), s.image.clone()))
        .collect();
    Ok(Prepared {
        docker,
        run,
        sensor,
        originals,
    })
}

/// Every published host port must be free (the project could not come up otherwise).
fn check_host_ports(project: &Project, services: &BTreeSet<String>) -> Result<(), RunError> {
    for name in services {
        for p in &project.services[name].published {
            let Some(port) = p.host_port else { continue };
            let ip = p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into());
            let address = if ip.contains(':') {
                format!("[{ip}]:{port}")
            } else {
                format!("{ip}:{port}")
            };
            if let Err(source) = std::net::TcpListener::bind(address.as_str()) {
                return Err(RunError::PortTaken {
                    service: name.clone(),
                    address,
                    source,
                });
            }
        }
    }
    Ok(())
}

fn hex_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:08x}", h.finish() as u32)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::Plan;
    use crate::interpolate::Vars;
    use crate::model::Project;

    fn project(text: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        Project::parse(
            text,
            Path::new("compose.yaml"),
            dir.path(),
            &Vars::new(),
            &[],
        )
        .unwrap()
    }

    const SHOP: &str = "
services:
  web:
    image: shop/web:1
    depends_on: [api]
  api:
    image: shop/api:1
    depends_on: [db, cache]
  db:
    image: postgres:16
  cache:
    image: redis:7
  admin:
    image: shop/admin:1
    depends_on: [db]
";

    #[test]
    fn targets_come_in_start_order_with_what_they_need() {
        let p = project(SHOP);
        let plan = Plan::new(&p, &["web".into(), "db".into()]).unwrap();
        // db starts before web, so a slimmed db is verified before the web that uses it.
        assert_eq!(plan.targets, ["db", "web"]);
        let pos = |s: &str| plan.order.iter().position(|o| o == s).unwrap();
        assert!(pos("db") < pos("api") && pos("cache") < pos("api") && pos("api") < pos("web"));
        // web needs api, which needs db and cache; admin is not involved.
        assert_eq!(
            plan.involved.iter().collect::<Vec<_>>(),
            ["api", "cache", "db", "web"]
        );
        assert_eq!(plan.dependencies(), ["api", "cache"]);
    }

    #[test]
    fn no_names_means_every_service_and_no_untraced_dependency() {
        let p = project(SHOP);
        let plan = Plan::new(&p, &[]).unwrap();
        assert_eq!(plan.targets.len(), 5);
        assert_eq!(plan.targets, plan.order);
        assert!(plan.dependencies().is_empty());
    }

    #[test]
    fn a_targeted_dependency_is_verified_in_the_instance_of_its_first_user() {
        let p = project(SHOP);
        let plan = Plan::new(
            &p,
            &["db".into(), "api".into(), "admin".into(), "web".into()],
        )
        .unwrap();
        // admin and web are needed by no other target; both need db (web through api), and
        // admin comes first in start order: db is verified in admin's instance, before admin;
        // api in web's, before web.
        let first = |s: &str| plan.order.iter().position(|o| o == s).unwrap();
        assert!(first("admin") < first("web"), "{:?}", plan.order);
        assert_eq!(
            plan.verify_groups(&p),
            [
                vec!["db".to_string(), "admin".into()],
                vec!["api".into(), "web".into()]
            ]
        );
        // A chain: all in the last one's instance, dependencies first.
        let plan = Plan::new(&p, &["web".into(), "db".into(), "api".into()]).unwrap();
        assert_eq!(plan.verify_groups(&p), [vec!["db", "api", "web"]]);
        // Targets nothing else targeted needs each get their own instance.
        let plan = Plan::new(&p, &["api".into(), "admin".into()]).unwrap();
        let mut groups = plan.verify_groups(&p);
        groups.sort();
        assert_eq!(groups, [vec!["admin".to_string()], vec!["api".into()]]);
        // Every target is verified exactly once.
        let plan = Plan::new(&p, &[]).unwrap();
        let mut all: Vec<String> = plan.verify_groups(&p).concat();
        all.sort();
        let mut targets = plan.targets.clone();
        targets.sort();
        assert_eq!(all, targets);
    }

    #[test]
    fn an_unknown_target_is_named() {
        let p = project(SHOP);
        let e = Plan::new(&p, &["shop".into()]).err().unwrap();
        assert!(e.to_string().contains("no service named \"shop\""), "{e}");
    }
}
