//! Dependency order: which services a target needs, started dependencies first.

use std::collections::{BTreeMap, BTreeSet};

use crate::{ComposeError, Project};

/// The services in start order (every service after all it depends on), or the first
/// `depends_on` cycle found.
pub fn start_order(project: &Project) -> Result<Vec<String>, ComposeError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        p: &Project,
        name: &str,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), ComposeError> {
        match marks.get(name) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let from = stack.iter().position(|s| s == name).unwrap_or(0);
                let mut cycle = stack[from..].to_vec();
                cycle.push(name.to_string());
                return Err(ComposeError::Cycle { cycle });
            }
            None => {}
        }
        marks.insert(name.to_string(), Mark::Visiting);
        stack.push(name.to_string());
        if let Some(s) = p.services.get(name) {
            for (dep, _) in &s.depends_on {
                visit(p, dep, marks, stack, out)?;
            }
        }
        stack.pop();
        marks.insert(name.to_string(), Mark::Done);
        out.push(name.to_string());
        Ok(())
    }
    let mut marks = BTreeMap::new();
    let mut out = Vec::new();
    for name in project.services.keys() {
        visit(project, name, &mut marks, &mut Vec::new(), &mut out)?;
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
    need.retain(|n| order.contains(n));
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
