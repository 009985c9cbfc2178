//! Resolving a Docker `USER` value against the image's own `/etc/passwd` and `/etc/group`.
//!
//! Used by the static sensor (PID 1 inside the container, which has no NSS to ask) and by the
//! embedded runtime (which must not ask the host's NSS either): one implementation, so the two
//! can never disagree on who the app runs as. The rules follow runc's: `name`, `uid`,
//! `name:group`, `uid:gid`, empty = root; a name is looked up before a number; a numeric uid
//! missing from passwd runs with gid 0 and home `/`; supplementary groups come from
//! `/etc/group` membership (plus the primary gid, like `initgroups`) only when no group was
//! given. Malformed lines are skipped, never a panic.

#![deny(missing_docs)]

/// A resolved user: what `setgroups`/`setgid`/`setuid` need, plus HOME for the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The user id to `setuid` to.
    pub uid: u32,
    /// The primary group id to `setgid` to.
    pub gid: u32,
    /// Supplementary groups; the first is always `gid`.
    pub groups: Vec<u32>,
    /// Home directory from passwd, `/` when unknown or empty.
    pub home: String,
}

/// Why a `USER` could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// A user name that is neither in passwd nor a number (the name as given).
    #[error("user {0:?} not found in /etc/passwd")]
    UnknownUser(String),
    /// A group name that is neither in group nor a number (the name as given).
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

/// `name:password:uid:gid:gecos:home[:shell]`; comments, blank and short lines and
/// non-numeric ids are skipped.
fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.trim_end_matches('\r').split(':').collect();
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

/// `name:password:gid[:member,member…]`.
fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group.lines().filter_map(|line| {
        let f: Vec<&str> = line.trim_end_matches('\r').split(':').collect();
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

/// The passwd entry of a user given by name or, when no name matches, by numeric uid.
fn passwd_entry<'a>(user: &str, passwd: &'a str) -> Option<PasswdEntry<'a>> {
    passwd_entries(passwd).find(|e| e.name == user).or_else(|| {
        let uid: u32 = user.parse().ok()?;
        passwd_entries(passwd).find(|e| e.uid == uid)
    })
}

/// Resolves a Docker `USER` value given the contents of the image's passwd and group files.
pub fn resolve(user: &str, passwd: &str, group: &str) -> Result<ResolvedUser, UserError> {
    let user = user.trim();
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let (uid, mut gid, home, name) = match passwd_entry(user_part, passwd) {
        Some(e) => (e.uid, e.gid, e.home, Some(e.name)),
        None => {
            let uid: u32 = user_part
                .parse()
                .map_err(|_| UserError::UnknownUser(user_part.to_string()))?;
            (uid, 0, "/", None)
        }
    };
    let mut groups = Vec::new();
    match group_part {
        Some(g) => {
            gid = match group_entries(group).find(|e| e.name == g) {
                Some(e) => e.gid,
                None => g
                    .parse()
                    .map_err(|_| UserError::UnknownGroup(g.to_string()))?,
            };
            groups.push(gid);
        }
        None => {
            groups.push(gid);
            if let Some(name) = name {
                for e in group_entries(group) {
                    if e.members.contains(&name) && !groups.contains(&e.gid) {
                        groups.push(e.gid);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        groups,
        home: if home.is_empty() { "/" } else { home }.to_string(),
    })
}

/// The home directory of `uid` from passwd (for HOME when the image leaves it unset).
pub fn home_of(uid: u32, passwd: &str) -> Option<String> {
    passwd_entries(passwd)
        .find(|e| e.uid == uid)
        .map(|e| e.home.to_string())
        .filter(|h| !h.is_empty())
}

/// The home directory passwd gives the user of a Docker `USER` value (`name`, `uid`, either
/// with `:group`), looked up as [`resolve`] does; `None` when the user is not in passwd or
/// its home field is empty. Used to keep the image user's home in a slim image.
pub fn home_of_user(user: &str, passwd: &str) -> Option<String> {
    let user_part = user.trim().split(':').next().unwrap_or("");
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    passwd_entry(user_part, passwd)
        .map(|e| e.home.to_string())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        # comment\n\
        broken line\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
        app:x:1000:1000::/home/app:/bin/sh\r\n\
        nohome:x:1001:1001::\n\
        bad:x:notanumber:1::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nadm:x:4:app,other\nstaff:x:50: app \nnogroup:x:65534:\n\
        app:x:1000:\nweb:x:33:app\nshort:x:60\n";

    fn r(user: &str) -> ResolvedUser {
        resolve(user, PASSWD, GROUP).unwrap()
    }

    #[test]
    fn empty_user_is_root() {
        assert_eq!(
            r(""),
            ResolvedUser {
                uid: 0,
                gid: 0,
                groups: vec![0],
                home: "/root".into()
            }
        );
        assert_eq!(r(":").uid, 0);
    }

    #[test]
    fn name_resolves_with_supplementary_groups() {
        // CRLF line endings and spaces around members are tolerated.
        assert_eq!(
            r("app"),
            ResolvedUser {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 4, 50, 33],
                home: "/home/app".into()
            }
        );
        assert_eq!(r(" app ").uid, 1000);
    }

    #[test]
    fn numeric_forms() {
        assert_eq!((r("1").gid, r("1").home.as_str()), (1, "/usr/sbin"));
        let u = r("65534");
        assert_eq!(
            (u.uid, u.gid, u.home.as_str()),
            (65534, 65534, "/nonexistent")
        );
        // A uid missing from passwd: gid 0, home /, no supplementary groups.
        assert_eq!(
            r("4242"),
            ResolvedUser {
                uid: 4242,
                gid: 0,
                groups: vec![0],
                home: "/".into()
            }
        );
        let u = r("4242:77");
        assert_eq!((u.uid, u.gid, u.groups), (4242, 77, vec![77]));
        // A passwd line without a shell field still counts; an empty home becomes /.
        assert_eq!(r("nohome").home, "/");
    }

    #[test]
    fn explicit_group_by_name_and_number() {
        let u = r("app:staff");
        assert_eq!((u.uid, u.gid, u.groups), (1000, 50, vec![50]));
        let u = r("app:nogroup");
        assert_eq!((u.gid, u.groups), (65534, vec![65534]));
        assert_eq!(r("1000:7").gid, 7);
        assert_eq!(r("app:").gid, 1000);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve("ghost", PASSWD, GROUP),
            Err(UserError::UnknownUser("ghost".into()))
        );
        assert_eq!(
            resolve("app:ghosts", PASSWD, GROUP),
            Err(UserError::UnknownGroup("ghosts".into()))
        );
        // A malformed uid field never matches, by name or number.
        assert!(resolve("bad", PASSWD, GROUP).is_err());
        // A group line without a member field is still a group.
        assert_eq!(r("app:short").gid, 60);
    }

    #[test]
    fn home_lookup() {
        assert_eq!(home_of(0, PASSWD).as_deref(), Some("/root"));
        assert_eq!(home_of(1001, PASSWD), None);
        assert_eq!(home_of(9, PASSWD), None);
    }

    #[test]
    fn home_of_a_user_value() {
        assert_eq!(home_of_user("app", PASSWD).as_deref(), Some("/home/app"));
        assert_eq!(
            home_of_user("1000:staff", PASSWD).as_deref(),
            Some("/home/app")
        );
        assert_eq!(
            home_of_user("daemon:", PASSWD).as_deref(),
            Some("/usr/sbin")
        );
        assert_eq!(home_of_user("", PASSWD).as_deref(), Some("/root"));
        // The home agrees with what `resolve` gives the process.
        assert_eq!(home_of_user("65534", PASSWD), Some(r("65534").home));
        assert_eq!(home_of_user("nohome", PASSWD), None);
        assert_eq!(home_of_user("ghost", PASSWD), None);
        assert_eq!(home_of_user("4242", PASSWD), None);
    }

    #[test]
    fn never_panics_on_garbage() {
        for junk in [
            "",
            ":",
            "::::::",
            "\u{0}:x:1:1::/",
            "a:b:c:d:e:f:g:h:i",
            "é:x:-1:-1::",
        ] {
            let _ = resolve(junk, junk, junk);
            let _ = resolve("0", junk, junk);
            let _ = home_of(0, junk);
            let _ = home_of_user(junk, junk);
        }
    }
}
