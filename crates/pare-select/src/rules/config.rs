//! The image config's rules: baseline files, `WorkingDir`, `Volumes`, the `USER`'s home,
//! and the commands of `Entrypoint`/`Cmd`/`Healthcheck`.

use crate::keep::KeepSet;
use crate::root;
use crate::{ImageFacts, Reason};

use super::script::script_commands;

/// Image config facts and the files every image keeps.
pub fn image_config(set: &mut KeepSet, facts: &ImageFacts) {
    for f in [
        "/etc/passwd",
        "/etc/group",
        "/etc/nsswitch.conf",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/host.conf",
    ] {
        if set.root().lstat(f).is_some() {
            set.keep(
                f,
                Reason::Baseline {
                    what: "account and name-service configuration".into(),
                },
            );
        }
    }
    if set.root().lstat("/tmp").is_some() {
        set.keep(
            "/tmp",
            Reason::Baseline {
                what: "/tmp (mode 1777)".into(),
            },
        );
    } else {
        set.create_dir("/tmp", 0o1777);
    }
    if let Some(w) = &facts.workdir {
        set.keep(
            w,
            Reason::ImageConfig {
                field: "WorkingDir".into(),
                detail: w.clone(),
            },
        );
    }
    for v in &facts.volumes {
        set.keep(
            v,
            Reason::ImageConfig {
                field: "Volumes".into(),
                detail: v.clone(),
            },
        );
    }
    if let Some(user) = &facts.user
        && let Some(home) = home_of(set, user)
    {
        set.keep(
            &home,
            Reason::ImageConfig {
                field: "User".into(),
                detail: format!("home of {user}"),
            },
        );
    }
    let (field, argv) = if facts.entrypoint.is_empty() {
        ("Cmd", facts.cmd.clone())
    } else {
        (
            "Entrypoint",
            facts
                .entrypoint
                .iter()
                .chain(facts.cmd.iter())
                .cloned()
                .collect(),
        )
    };
    command(set, facts, field, &argv);
    if let Some(test) = &facts.healthcheck {
        match test.first().map(String::as_str) {
            Some("CMD") => command(set, facts, "Healthcheck", &test[1..]),
            Some("CMD-SHELL") => {
                let script = test.get(1).cloned().unwrap_or_default();
                command(
                    set,
                    facts,
                    "Healthcheck",
                    &["/bin/sh".to_string(), "-c".to_string(), script],
                );
            }
            _ => {}
        }
    }
}

/// Keeps a command's executable, and the arguments that are files of the image (scripts
/// given to interpreters). `sh -c "…"` also keeps the first word of the script.
fn command(set: &mut KeepSet, facts: &ImageFacts, field: &str, argv: &[String]) {
    let Some(exe) = argv.first() else { return };
    let detail = argv.join(" ");
    if let Some(p) = set.which(exe)
        && let Some(c) = set.keep(
            &p,
            Reason::ImageConfig {
                field: field.into(),
                detail: detail.clone(),
            },
        )
    {
        script_commands(set, field, &c);
    }
    let workdir = facts.workdir.clone().unwrap_or_else(|| "/".into());
    let mut args = argv[1..].iter();
    while let Some(a) = args.next() {
        if a == "-c" {
            if let Some(script) = args.next()
                && let Some(word) = script.split_whitespace().find(|w| !w.contains('='))
                && let Some(p) = set.which(word)
            {
                set.keep(
                    &p,
                    Reason::ImageConfig {
                        field: field.into(),
                        detail: detail.clone(),
                    },
                );
            }
            continue;
        }
        if a.starts_with('-') || a.is_empty() || a.len() > 4096 {
            continue;
        }
        let p = if a.starts_with('/') {
            a.clone()
        } else {
            format!("{workdir}/{a}")
        };
        let p = root::normalize(&p);
        if let Ok(res) = set.root().resolve(&p, true)
            && res.exists
            && set.root().lstat(&res.path).is_some_and(|m| m.is_file())
        {
            set.keep(
                &p,
                Reason::ImageConfig {
                    field: field.into(),
                    detail: detail.clone(),
                },
            );
            script_commands(set, field, &res.path);
        }
    }
}

/// The home directory of `USER` from the image's `/etc/passwd`, by pare-user's rules (the
/// ones the sensor and the embedded runtime run the app with); only an absolute one is kept.
fn home_of(set: &KeepSet, user: &str) -> Option<String> {
    let res = set.root().resolve("/etc/passwd", true).ok()?;
    let text = std::fs::read_to_string(set.root().host(&res.path)).ok()?;
    pare_user::home_of_user(user, &text).filter(|h| h.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::Rootfs;

    fn set_with_passwd(passwd: &str) -> (tempfile::TempDir, KeepSet) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(t.path().join("etc/passwd"), passwd).unwrap();
        let set = KeepSet::new(Rootfs::new(t.path()).unwrap(), vec![], None, &[], &[]).unwrap();
        (t, set)
    }

    #[test]
    fn home_of_uses_the_runtime_rules() {
        let (_t, set) = set_with_passwd(
            "root:x:0:0:root:/root:/bin/sh\n\
             1000:x:1001:1001::/home/named-1000:/bin/sh\n\
             app:x:1000:1000::/home/app:/bin/sh\r\n\
             rel:x:1002:1002::relative:/bin/sh\n",
        );
        assert_eq!(home_of(&set, "app").as_deref(), Some("/home/app"));
        assert_eq!(home_of(&set, "app:staff").as_deref(), Some("/home/app"));
        // A name is looked up before a number, as the sensor and the runtime do.
        assert_eq!(home_of(&set, "1000").as_deref(), Some("/home/named-1000"));
        assert_eq!(home_of(&set, "1002"), None, "a relative home is not kept");
        assert_eq!(home_of(&set, "ghost"), None);
    }
}
