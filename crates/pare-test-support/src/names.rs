//! Names for what tests make on the shared Docker daemon and test registries.
//!
//! Every image a test tags is named `pare-test/<run>/<name>`, `<run>` being this run's id, so
//! two test runs on one daemon or registry never write the same name, and `scripts/test`
//! removes exactly the images of its own run (`pare-test/<run>/*`) when it ends.

use std::sync::OnceLock;

/// This run's id: `PARE_TEST_RUN` when set (`scripts/test` sets one per run), otherwise `p`
/// and the test process's id. Lowercase letters, digits and inner `-`, `.` or `_`, as a
/// Docker repository path component must be; panics on any other value of `PARE_TEST_RUN`.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| match std::env::var("PARE_TEST_RUN") {
        Ok(id) if !id.is_empty() => {
            assert!(
                valid_component(&id),
                "PARE_TEST_RUN={id:?}: use lowercase letters and digits, joined by - . or _"
            );
            id
        }
        _ => format!("p{}", std::process::id()),
    })
}

/// `pare-test/<run>/<name>`: `name` (a repository, with or without `:tag`) under this run's
/// prefix. Prefix it with a registry's address for a registry reference.
pub fn image(name: &str) -> String {
    format!("pare-test/{}/{name}", run_id())
}

/// Removes the image it names from the Docker daemon when dropped (`docker rmi -f`, errors
/// ignored), so a test run by hand leaves nothing under its own run's prefix.
#[derive(Debug)]
pub struct RemoveOnDrop(pub String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .output();
    }
}

fn valid_component(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.starts_with(ok) && s.ends_with(ok) && s.chars().all(|c| ok(c) || matches!(c, '-' | '.' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sit_under_the_run_prefix() {
        let n = image("tomcat.slim:build");
        assert!(n.starts_with("pare-test/"), "{n}");
        assert!(n.ends_with("/tomcat.slim:build"), "{n}");
        assert!(valid_component(run_id()), "{}", run_id());
        assert_eq!(
            n,
            image("tomcat.slim:build"),
            "one id for the whole process"
        );
    }

    #[test]
    fn run_ids_must_be_a_repository_component() {
        for good in ["r1733490000-4242", "p17", "a.b_c"] {
            assert!(valid_component(good), "{good}");
        }
        for bad in ["", "Run1", "-r1", "r1-", "r/1", "r 1", "r:1"] {
            assert!(!valid_component(bad), "{bad}");
        }
    }
}
