//! Dependency order: which services a target needs, started dependencies first.

use std::collections::{BTreeMap, BTreeSet};

use crate::{ComposeError, Project};

/// The services in start order (every service after all it depends on), or the first
/// `depends_on` cycle found. A depth-first walk with its own stack: a chain of thousands of
/// services is an order, not a stack overflow.
pub fn start_order(project: &Project) -> Result<Vec<String>, ComposeError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    let mut out = Vec::new();
    for root in project.services.keys() {
        // The services being visited, each with the index of its next dependency.
        let mut path: Vec<(&str, usize)> = Vec::new();
        let mut next = Some(root.as_str());
        loop {
            if let Some(name) = next.take() {
                match marks.get(name) {
                    Some(Mark::Done) => {}
                    Some(Mark::Visiting) => {
                        let from = path.iter().position(|(s, _)| *s == name).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            path[from..].iter().map(|(s, _)| s.to_string()).collect();
                        cycle.push(name.to_string());
                        return Err(ComposeError::Cycle { cycle });
                    }
                    None => {
                        marks.insert(name, Mark::Visiting);
                        path.push((name, 0));
                    }
                }
            }
            let Some((name, i)) = path.last_mut() else {
                break;
            };
            let deps = project
                .services
                .get(*name)
                .map(|s| s.depends_on.as_slice())
                .unwrap_or(&[]);
            match deps.get(*i) {
                Some((dep, _)) => {
                    *i += 1;
                    next = Some(dep.as_str());
                }
                None => {
                    let name = *name;
                    marks.insert(name, Mark::Done);
                    out.push(name.to_string());
                    path.pop();
                }
            }
        }
    }
    Ok(out)
}

/// The targets the user named (all services when none), checked against the project.
pub fn targets(project: &Project, named: &[String]) -> Result<Vec<String>, ComposeError> {
    if named.is_empty() {
        return Ok(project.services.keys().cloned().collect());
    }
    for n in named {
        if !project.services.contains_key(n) {
            return Err(ComposeError::UnknownService {
                name: n.clone(),
                known: project
                    .services
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(named.to_vec())
}

/// Everything `service` needs running first (transitively), in start order, without itself.
pub fn dependencies(project: &Project, service: &str, order: &[String]) -> BTreeSet<String> {
    let mut need = BTreeSet::new();
    let mut todo = vec![service.to_string()];
    while let Some(s) = todo.pop() {
        for (dep, _) in project
            .services
            .get(&s)
            .map(|s| s.depends_on.as_slice())
            .unwrap_or(&[])
        {
            if need.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    // A set, not `order.contains`: that made each call quadratic in the services.
    let known: BTreeSet<&str> = order.iter().map(String::as_str).collect();
    need.retain(|n| known.contains(n.as_str()));
    need
}

/// `dependencies` as a list in start order.
pub fn dependencies_in_order(project: &Project, service: &str, order: &[String]) -> Vec<String> {
    let need = dependencies(project, service, order);
    order
        .iter()
        .filter(|n| need.contains(*n))
        .cloned()
        .collect()
}
