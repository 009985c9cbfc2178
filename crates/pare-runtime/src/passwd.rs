//! Resolving an image's `USER` against the image's own `/etc/passwd` and `/etc/group`.
//!
//! This never calls NSS: the files are those of the container, not of the host. Malformed lines
//! are skipped, never a panic.

/// A resolved user: what `setgroups`/`setgid`/`setuid` need, plus HOME for the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (always includes `gid`).
    pub groups: Vec<u32>,
    /// Home directory from passwd, `/` when unknown.
    pub home: String,
}

/// Why a `USER` could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user {0:?} not found in /etc/passwd")]
    UnknownUser(String),
    #[error("group {0:?} not found in /etc/group")]
    UnknownGroup(String),
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group.lines().filter_map(|line| {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f[3]
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .collect(),
        })
    })
}

/// Resolves a Docker `USER` value (`name`, `uid`, `name:group`, `uid:gid`, empty = root) the way
/// Docker does: a numeric uid needs no passwd entry; a name must exist. Supplementary groups
/// come from `/etc/group` membership, unless an explicit group was given.
pub fn resolve_user(user: &str, passwd: &str, group: &str) -> Result<ResolvedUser, UserError> {
    let user = user.trim();
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = match u.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd)
            .find(|e| e.uid == uid)
            .map(|e| (e.name, e.uid, e.gid, e.home))
            .or(Some(("", uid, 0, "/"))),
        Err(_) => passwd_entries(passwd)
            .find(|e| e.name == u)
            .map(|e| (e.name, e.uid, e.gid, e.home)),
    };
    let Some((name, uid, mut gid, home)) = entry else {
        return Err(UserError::UnknownUser(u.to_string()));
    };
    let mut groups = Vec::new();
    match g {
        Some(g) if !g.is_empty() => {
            gid = match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => group_entries(group)
                    .find(|e| e.name == g)
                    .map(|e| e.gid)
                    .ok_or_else(|| UserError::UnknownGroup(g.to_string()))?,
            };
            groups.push(gid);
        }
        _ => {
            groups.push(gid);
            if !name.is_empty() {
                for e in group_entries(group) {
                    if e.members.contains(&name) && !groups.contains(&e.gid) {
                        groups.push(e.gid);
                    }
                }
            }
        }
    }
    let home = if home.is_empty() {
        "/".to_string()
    } else {
        home.to_string()
    };
    Ok(ResolvedUser {
        uid,
        gid,
        groups,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        # comment\n\
        broken line\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        app:x:1000:1000::/home/app:/bin/sh\n\
        bad:x:notanumber:1::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nadm:x:4:app,other\nstaff:x:50:\napp:x:1000:\nweb:x:33:app\n";

    #[test]
    fn empty_user_is_root() {
        let u = resolve_user("", PASSWD, GROUP).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.groups.clone(), u.home.as_str()),
            (0, 0, vec![0], "/root")
        );
    }

    #[test]
    fn name_resolves_with_supplementary_groups() {
        let u = resolve_user("app", PASSWD, GROUP).unwrap();
        assert_eq!(u.uid, 1000);
        assert_eq!(u.gid, 1000);
        assert_eq!(u.groups, vec![1000, 4, 33]);
        assert_eq!(u.home, "/home/app");
    }

    #[test]
    fn numeric_uid_without_entry_gets_gid_zero() {
        let u = resolve_user("4242", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        let u = resolve_user("1", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1, 1, "/usr/sbin"));
    }

    #[test]
    fn explicit_group_by_name_and_number() {
        let u = resolve_user("app:staff", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.groups.clone()), (1000, 50, vec![50]));
        let u = resolve_user("1000:7", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 7));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve_user("nobody", PASSWD, GROUP),
            Err(UserError::UnknownUser("nobody".into()))
        );
        assert_eq!(
            resolve_user("app:nogroup", PASSWD, GROUP),
            Err(UserError::UnknownGroup("nogroup".into()))
        );
        // A malformed uid field never matches by name lookup either.
        assert!(resolve_user("bad", PASSWD, GROUP).is_err());
    }
}
