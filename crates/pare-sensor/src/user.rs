//! USER resolution from `/etc/passwd` and `/etc/group`, parsed by hand: the binary is static, so
//! no NSS. Follows runc's rules: `name`, `uid`, `uid:gid`, `name:group`; a numeric uid missing from
//! passwd gets gid 0 and home `/`; supplementary groups come from `/etc/group` membership (plus the
//! primary gid, like initgroups) only when no group was given explicitly.

use crate::error::SensorError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 6 || f[0].is_empty() || f[0].starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].trim().parse().ok()?,
            gid: f[3].trim().parse().ok()?,
            home: f[5],
        })
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 || f[0].is_empty() || f[0].starts_with('#') {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].trim().parse().ok()?,
            members: f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    })
}

/// Resolves a Docker USER spec against the given passwd and group file contents.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<Creds, SensorError> {
    let err = |reason: String| SensorError::User {
        spec: spec.to_string(),
        reason,
    };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let by_name = passwd_entries(passwd).find(|e| e.name == user_part);
    let (uid, mut gid, home, name) = match by_name {
        Some(e) => (e.uid, e.gid, e.home.to_string(), Some(e.name.to_string())),
        None => {
            let uid: u32 = user_part
                .parse()
                .map_err(|_| err(format!("no user {user_part:?} in /etc/passwd")))?;
            match passwd_entries(passwd).find(|e| e.uid == uid) {
                Some(e) => (uid, e.gid, e.home.to_string(), Some(e.name.to_string())),
                None => (uid, 0, "/".to_string(), None),
            }
        }
    };
    let mut groups = Vec::new();
    if let Some(g) = group_part {
        gid = match group_entries(group).find(|e| e.name == g) {
            Some(e) => e.gid,
            None => g
                .parse()
                .map_err(|_| err(format!("no group {g:?} in /etc/group")))?,
        };
        groups.push(gid);
    } else {
        groups.push(gid);
        if let Some(name) = &name {
            for e in group_entries(group) {
                if e.members.iter().any(|m| m == name) && !groups.contains(&e.gid) {
                    groups.push(e.gid);
                }
            }
        }
    }
    let home = if home.is_empty() {
        "/".to_string()
    } else {
        home
    };
    Ok(Creds {
        uid,
        gid,
        groups,
        home,
    })
}

/// The home directory of `uid` from passwd, for HOME when the image leaves it unset.
pub fn home_of(uid: u32, passwd: &str) -> Option<String> {
    passwd_entries(passwd)
        .find(|e| e.uid == uid)
        .map(|e| e.home.to_string())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        # comment\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
        app:x:1000:1000::/home/app:/bin/sh\n\
        broken:x:notanumber:1::/:/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nadm:x:4:app,other\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50: app \n";

    #[test]
    fn by_name_with_supplementary() {
        let c = resolve("app", PASSWD, GROUP).unwrap();
        assert_eq!(
            c,
            Creds {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 4, 50],
                home: "/home/app".into()
            }
        );
    }

    #[test]
    fn numeric_forms() {
        let c = resolve("65534", PASSWD, GROUP).unwrap();
        assert_eq!(
            (c.uid, c.gid, c.home.as_str()),
            (65534, 65534, "/nonexistent")
        );
        let c = resolve("4242", PASSWD, GROUP).unwrap();
        assert_eq!(
            (c.uid, c.gid, c.groups.clone(), c.home.as_str()),
            (4242, 0, vec![0], "/")
        );
        let c = resolve("4242:77", PASSWD, GROUP).unwrap();
        assert_eq!((c.uid, c.gid, c.groups), (4242, 77, vec![77]));
    }

    #[test]
    fn name_and_group() {
        let c = resolve("app:nogroup", PASSWD, GROUP).unwrap();
        assert_eq!((c.uid, c.gid, c.groups), (1000, 65534, vec![65534]));
        let c = resolve("app:", PASSWD, GROUP).unwrap();
        assert_eq!(c.gid, 1000);
    }

    #[test]
    fn unknown() {
        assert!(resolve("ghost", PASSWD, GROUP).is_err());
        assert!(resolve("app:ghosts", PASSWD, GROUP).is_err());
        assert!(resolve("broken", PASSWD, GROUP).is_err());
        assert_eq!(home_of(0, PASSWD).as_deref(), Some("/root"));
        assert_eq!(home_of(9, PASSWD), None);
    }
}
