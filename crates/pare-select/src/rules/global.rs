//! Rules that run once, when something kept triggers them: NSS modules (libc), CA
//! certificates (a TLS library), time zones, locales and gconv.

use pare_image::ImagePath;

use crate::Reason;
use crate::elf::LibResolver;
use crate::keep::KeepSet;
use crate::root;

/// What the engine has seen that triggers the global rules.
pub struct Triggers<'a> {
    /// The kept libc (NSS modules).
    pub libc: Option<&'a str>,
    /// Kept TLS libraries, in the order they were found (certificates).
    pub tls: &'a [String],
    /// Finds NSS modules the way `ld.so` would.
    pub resolver: &'a LibResolver,
}

/// Which global rules have run.
#[derive(Default)]
pub struct GlobalDone {
    nss: bool,
    certs: bool,
    zoneinfo: bool,
    locale: bool,
    gconv: Vec<String>,
}

/// Runs the rules whose trigger holds; true when something new was kept.
pub fn global(set: &mut KeepSet, triggers: &Triggers<'_>, done: &mut GlobalDone) -> bool {
    let before = set.len();
    if !done.nss
        && let Some(libc) = triggers.libc
    {
        done.nss = true;
        nss(set, triggers.resolver, libc);
    }
    if !done.certs
        && let Some(lib) = triggers.tls.first()
    {
        done.certs = true;
        certificates(set, triggers.tls, lib);
    }
    if !done.zoneinfo
        && let Some(t) = set.first_path(|p| p.starts_with("/usr/share/zoneinfo/"))
    {
        done.zoneinfo = true;
        let r = Reason::Zoneinfo {
            touched: ImagePath::clamped(&t),
        };
        for f in [
            "/etc/localtime",
            "/etc/timezone",
            "/usr/share/zoneinfo/UTC",
            "/usr/share/zoneinfo/Etc/UTC",
            "/usr/share/zoneinfo/posixrules",
            "/usr/share/zoneinfo/zone.tab",
            "/usr/share/zoneinfo/zone1970.tab",
            "/usr/share/zoneinfo/iso3166.tab",
        ] {
            if set.root().resolve(f, false).is_ok_and(|r| r.exists) {
                set.keep(f, r.clone());
            }
        }
    }
    if !done.locale
        && let Some(t) = set.first_path(|p| p.starts_with("/usr/lib/locale/"))
    {
        done.locale = true;
        let r = Reason::Locale {
            touched: ImagePath::clamped(&t),
        };
        let touched: Vec<String> = set
            .paths()
            .filter_map(|p| p.strip_prefix("/usr/lib/locale/"))
            .filter_map(|rest| rest.split('/').next())
            .filter(|n| *n != "locale-archive")
            .map(|n| format!("/usr/lib/locale/{n}"))
            .collect();
        for d in touched {
            set.keep_tree(&d, r.clone());
        }
        // locale-archive can be hundreds of MB with all locales: kept only when traced.
        for f in [
            "/usr/share/locale/locale.alias",
            "/etc/locale.alias",
            "/etc/default/locale",
            "/etc/locale.conf",
        ] {
            if set.root().lstat(f).is_some() {
                set.keep(f, r.clone());
            }
        }
    }
    let gconv_dirs: Vec<(String, String)> = set
        .paths()
        .filter_map(|p| {
            p.find("/gconv/")
                .map(|i| (p[..i + "/gconv".len()].to_string(), p.clone()))
        })
        .filter(|(d, _)| !done.gconv.contains(d))
        .collect();
    for (dir, touched) in gconv_dirs {
        if done.gconv.contains(&dir) {
            continue;
        }
        done.gconv.push(dir.clone());
        let r = Reason::Gconv {
            touched: ImagePath::clamped(&touched),
        };
        for f in ["gconv-modules", "gconv-modules.cache"] {
            let p = format!("{dir}/{f}");
            if set.root().lstat(&p).is_some() {
                set.keep(&p, r.clone());
            }
        }
        let d = format!("{dir}/gconv-modules.d");
        if set.root().lstat(&d).is_some() {
            set.keep_tree(&d, r);
        }
    }
    set.len() != before
}

/// NSS modules named in `nsswitch.conf` (glibc's defaults when there is none).
fn nss(set: &mut KeepSet, resolver: &LibResolver, libc: &str) {
    if root::file_name(libc).starts_with("ld-musl")
        || root::file_name(libc).starts_with("libc.musl")
    {
        return; // musl has no NSS
    }
    let Some((is_64, machine)) = crate::elf::ident(set.root(), libc) else {
        return;
    };
    let text = set
        .root()
        .resolve("/etc/nsswitch.conf", true)
        .ok()
        .and_then(|r| std::fs::read_to_string(set.root().host(&r.path)).ok())
        .unwrap_or_else(|| "passwd: files\ngroup: files\nhosts: files dns\n".to_string());
    let mut services: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let Some((db, rest)) = line.split_once(':') else {
            continue;
        };
        let mut in_action = false;
        for w in rest.split_whitespace() {
            if w.starts_with('[') {
                in_action = !w.ends_with(']');
                continue;
            }
            if in_action {
                in_action = !w.ends_with(']');
                continue;
            }
            services
                .entry(w.to_string())
                .or_default()
                .push(db.trim().to_string());
        }
    }
    for (svc, dbs) in services {
        if !svc
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            continue;
        }
        let soname = format!("libnss_{svc}.so.2");
        if let Some(found) = resolver.find(set.root(), &soname, (is_64, machine), &[], &[]) {
            set.keep(
                &found.path,
                Reason::Nss {
                    service: svc,
                    databases: dbs,
                    libc: ImagePath::clamped(libc),
                },
            );
        }
    }
}

fn certificates(set: &mut KeepSet, tls: &[String], library: &str) {
    let r = Reason::Certificates {
        library: ImagePath::clamped(library),
    };
    for p in [
        "/etc/ssl/certs",
        "/etc/ssl/cert.pem",
        "/etc/ssl/openssl.cnf",
        // Not all of /usr/lib/ssl: its misc/ holds Perl scripts (CA.pl, tsget.pl) whose #!
        // would pull in perl.
        "/usr/lib/ssl/certs",
        "/usr/lib/ssl/cert.pem",
        "/usr/lib/ssl/openssl.cnf",
        "/usr/share/ca-certificates",
        "/usr/local/share/ca-certificates",
        "/etc/pki/tls/certs",
        "/etc/pki/tls/cert.pem",
        "/etc/pki/ca-trust/extracted",
        "/etc/ca-certificates.conf",
    ] {
        if set.root().resolve(p, false).is_ok_and(|r| r.exists) {
            set.keep_tree(p, r.clone());
        }
    }
    // A JRE keeps its own trust store next to libjava.so.
    for lib in tls {
        if let Some(home) = lib.strip_suffix("/lib/libjava.so") {
            for d in ["lib/security", "conf/security"] {
                let p = format!("{home}/{d}");
                if set.root().lstat(&p).is_some() {
                    set.keep_tree(
                        &p,
                        Reason::Certificates {
                            library: ImagePath::clamped(lib),
                        },
                    );
                }
            }
        }
    }
}
