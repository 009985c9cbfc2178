//! The static-closure rules beyond ELF: config, shells, scripts, NSS, certificates, time
//! zones, locales, gconv, Python and Node metadata.

use std::io::Read;

use globset::GlobBuilder;

use crate::Reason;
use crate::engine::Ctx;
use crate::root;

/// Whether a kept file name is a TLS library (or a runtime that embeds one).
pub fn is_tls_library(name: &str) -> bool {
    const PREFIXES: [&str; 8] = [
        "libssl.so",
        "libcrypto.so",
        "libgnutls.so",
        "libnss3.so",
        "libmbedtls.so",
        "libwolfssl.so",
        "libtls.so",
        "libboringssl",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
        || (name.starts_with("_ssl.") && name.ends_with(".so"))
        || name == "node"
        || name == "nodejs"
        || name == "libjava.so"
}

/// Image config facts and the files every image keeps.
pub fn image_config(cx: &mut Ctx<'_>) {
    let facts = cx.inputs.facts.clone();
    for f in [
        "/etc/passwd",
        "/etc/group",
        "/etc/nsswitch.conf",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/host.conf",
    ] {
        if cx.root.lstat(f).is_some() {
            cx.keep(
                f,
                Reason::Baseline {
                    what: "account and name-service configuration".into(),
                },
            );
        }
    }
    if cx.root.lstat("/tmp").is_some() {
        cx.keep(
            "/tmp",
            Reason::Baseline {
                what: "/tmp (mode 1777)".into(),
            },
        );
    } else {
        cx.created_dirs.insert("/tmp".into(), 0o1777);
    }
    if let Some(w) = &facts.workdir {
        cx.keep(
            w,
            Reason::ImageConfig {
                field: "WorkingDir".into(),
                detail: w.clone(),
            },
        );
    }
    for v in &facts.volumes {
        cx.keep(
            v,
            Reason::ImageConfig {
                field: "Volumes".into(),
                detail: v.clone(),
            },
        );
    }
    if let Some(user) = &facts.user
        && let Some(home) = home_of(cx, user)
    {
        cx.keep(
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
    command(cx, field, &argv);
    if let Some(test) = &facts.healthcheck {
        match test.first().map(String::as_str) {
            Some("CMD") => command(cx, "Healthcheck", &test[1..]),
            Some("CMD-SHELL") => {
                let script = test.get(1).cloned().unwrap_or_default();
                command(
                    cx,
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
fn command(cx: &mut Ctx<'_>, field: &str, argv: &[String]) {
    let Some(exe) = argv.first() else { return };
    let detail = argv.join(" ");
    if let Some(p) = cx.which(exe)
        && let Some(c) = cx.keep(
            &p,
            Reason::ImageConfig {
                field: field.into(),
                detail: detail.clone(),
            },
        )
    {
        script_commands(cx, field, &c);
    }
    let workdir = cx
        .inputs
        .facts
        .workdir
        .clone()
        .unwrap_or_else(|| "/".into());
    let mut args = argv[1..].iter();
    while let Some(a) = args.next() {
        if a == "-c" {
            if let Some(script) = args.next()
                && let Some(word) = script.split_whitespace().find(|w| !w.contains('='))
                && let Some(p) = cx.which(word)
            {
                cx.keep(
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
        if let Ok(res) = cx.root.resolve(&p, true)
            && res.exists
            && cx.root.lstat(&res.path).is_some_and(|m| m.is_file())
        {
            cx.keep(
                &p,
                Reason::ImageConfig {
                    field: field.into(),
                    detail: detail.clone(),
                },
            );
            script_commands(cx, field, &res.path);
        }
    }
}

/// Shell keywords and builtins that are not programs to look up.
const SHELL_WORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "in", "case",
    "esac", "function", "exec", "command", "time", "!", "{", "}", "[[", "]]", "[", "test", "echo",
    "printf", "set", "unset", "export", "local", "return", "exit", "shift", "cd", "eval", "trap",
    "wait", "read", "true", "false", ":", ".", "source", "break", "continue", "readonly", "umask",
    "ulimit", "alias", "type", "hash", "getopts", "let", "declare",
];

/// For a shell script named by the image config (an entrypoint script), keeps the programs
/// it may run in branches the profile did not exercise: the first word of each simple
/// command that is found in `PATH`. Conservative: plain words only, no expansion.
fn script_commands(cx: &mut Ctx<'_>, field: &str, script: &str) {
    let Some(meta) = cx.root.lstat(script) else {
        return;
    };
    if !meta.is_file() || meta.len() > 256 * 1024 {
        return;
    }
    let Ok(text) = std::fs::read(cx.root.host(script)) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(&text) else {
        return;
    };
    let first = text.lines().next().unwrap_or("");
    let shells = ["sh", "bash", "dash", "ash", "ksh", "zsh", "busybox"];
    let is_shell = first.strip_prefix("#!").is_some_and(|l| {
        let mut w = l.split_whitespace();
        let interp = w.next().map(root::file_name).unwrap_or("");
        shells.contains(&interp)
            || (interp == "env" && w.next().is_some_and(|p| shells.contains(&p)))
    });
    if !is_shell {
        return;
    }
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or("");
        if line.trim_start().starts_with('#') {
            continue;
        }
        for segment in line.split([';', '|', '&', '(', ')', '`']) {
            let mut words = segment.split_whitespace();
            let cmd = loop {
                match words.next() {
                    Some(w) if w.contains('=') && !w.starts_with('=') => continue,
                    Some(w) if SHELL_WORDS.contains(&w) => continue,
                    other => break other,
                }
            };
            let Some(cmd) = cmd else { continue };
            if cmd.is_empty()
                || !cmd
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+-/".contains(c))
                || cmd.starts_with('-')
                || found.iter().any(|f: &String| f == cmd)
            {
                continue;
            }
            found.push(cmd.to_string());
        }
    }
    for cmd in found {
        if (cmd.starts_with('/') || !cmd.contains('/'))
            && let Some(p) = cx.which(&cmd)
            && cx.root.resolve(&p, true).is_ok_and(|r| r.exists)
        {
            cx.keep(
                &p,
                Reason::ImageConfig {
                    field: field.into(),
                    detail: format!("command {cmd} in {script}"),
                },
            );
        }
    }
}

/// The home directory of `USER` from `/etc/passwd`.
fn home_of(cx: &Ctx<'_>, user: &str) -> Option<String> {
    let name = user.split(':').next()?;
    let res = cx.root.resolve("/etc/passwd", true).ok()?;
    let text = std::fs::read_to_string(cx.root.host(&res.path)).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && (f[0] == name || f[2] == name) && f[5].starts_with('/'))
            .then(|| f[5].to_string())
    })
}

/// Keeps whatever matches an `--include-path`/`--preserve-path` glob; directories whole.
pub fn include_glob(cx: &mut Ctx<'_>, pattern: &str, reason: Reason) {
    let pat = root::normalize(pattern);
    let meta = |c: char| matches!(c, '*' | '?' | '[' | '{');
    if !pat.contains(meta) {
        if cx.root.resolve(&pat, true).is_ok_and(|r| r.exists) {
            cx.keep_tree(&pat, reason);
        } else {
            cx.warnings
                .push(format!("{reason}: {pat} is not in the image"));
        }
        return;
    }
    let Ok(m) = GlobBuilder::new(&pat)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
    else {
        return;
    };
    // Walk from the longest literal prefix.
    let prefix: Vec<&str> = pat
        .split('/')
        .skip(1)
        .take_while(|c| !c.contains(meta))
        .collect();
    let typed_prefix = format!("/{}", prefix.join("/"));
    let Ok(res) = cx.root.resolve(&typed_prefix, true) else {
        return;
    };
    if !res.exists {
        return;
    }
    let host = cx.root.host(&res.path);
    let mut hits = Vec::new();
    let mut walker = walkdir::WalkDir::new(&host)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(Ok(entry)) = walker.next() {
        let Ok(rel) = entry.path().strip_prefix(&host) else {
            continue;
        };
        let Some(rel) = rel.to_str() else { continue };
        if rel.is_empty() {
            continue;
        }
        let typed = root::normalize(&format!("{typed_prefix}/{rel}"));
        let canonical = root::normalize(&format!("{}/{rel}", res.path));
        if m.is_match(&typed) || m.is_match(&canonical) {
            hits.push(typed);
            if entry.file_type().is_dir() {
                walker.skip_current_dir();
            }
        }
    }
    if hits.is_empty() {
        cx.warnings
            .push(format!("{reason}: nothing in the image matches"));
    }
    for h in hits {
        cx.keep_tree(&h, reason.clone());
    }
}

/// Rules for one newly kept non-ELF regular file.
pub fn per_file(cx: &mut Ctx<'_>, path: &str) {
    shebang(cx, path);
    python(cx, path);
    node(cx, path);
}

fn shebang(cx: &mut Ctx<'_>, path: &str) {
    let Ok(mut f) = crate::elf::open_nofollow(&cx.root, path) else {
        return;
    };
    let mut buf = [0u8; 256];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let head = &buf[..n];
    if !head.starts_with(b"#!") {
        return;
    }
    let line = head[2..].split(|&b| b == b'\n').next().unwrap_or(&[]);
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    let mut words = line.split_whitespace();
    let Some(interp) = words.next() else { return };
    let reason = Reason::Shebang {
        script: path.to_string(),
        interpreter: line.trim().to_string(),
    };
    cx.keep(interp, reason.clone());
    if root::file_name(interp) == "env" {
        // `#!/usr/bin/env [-S] [VAR=x] prog args`
        if let Some(prog) = words.find(|w| !w.starts_with('-') && !w.contains('='))
            && let Some(p) = cx.which(prog)
        {
            cx.keep(&p, reason);
        }
    }
}

fn python(cx: &mut Ctx<'_>, path: &str) {
    let name = root::file_name(path);
    let Some(dir) = root::parent(path) else {
        return;
    };
    if name.ends_with(".pyc") && root::file_name(dir) == "__pycache__" {
        let module = name.split('.').next().unwrap_or("");
        if let Some(pkg_dir) = root::parent(dir) {
            let src = format!("{}/{module}.py", pkg_dir.trim_end_matches('/'));
            if cx.root.lstat(&src).is_some() {
                cx.keep(
                    &src,
                    Reason::PythonSource {
                        pyc: path.to_string(),
                    },
                );
            }
        }
    } else if let Some(module) = name.strip_suffix(".py") {
        let cache = format!("{}/__pycache__", dir.trim_end_matches('/'));
        let prefix = format!("{module}.");
        for n in cx.list_dir(&cache) {
            if n.starts_with(&prefix)
                && n.ends_with(".pyc")
                && n[prefix.len()..].starts_with("cpython-")
            {
                cx.keep(
                    &format!("{cache}/{n}"),
                    Reason::PythonBytecode {
                        py: path.to_string(),
                    },
                );
            }
        }
    }
    distribution(cx, path);
}

/// One installed distribution's metadata directory and what it owns.
#[derive(Debug, Clone, Default)]
pub struct DistIndex {
    /// Directory name, e.g. `Flask-3.0.0.dist-info`.
    pub name: String,
    /// Top-level import names (`top_level.txt`, or derived from RECORD).
    pub tops: std::collections::HashSet<String>,
    /// Files it installed, relative to the site dir (`RECORD`, `installed-files.txt`).
    pub files: std::collections::HashSet<String>,
}

/// Reads every `*.dist-info` / `*.egg-info` of a site dir once.
fn index_site(cx: &mut Ctx<'_>, site: &str) -> Vec<DistIndex> {
    let mut out = Vec::new();
    for dist in cx.list_dir(site) {
        if !(dist.ends_with(".dist-info") || dist.ends_with(".egg-info")) {
            continue;
        }
        let dpath = format!("{site}/{dist}");
        let read = |f: &str| {
            std::fs::read_to_string(cx.root.host(&format!("{dpath}/{f}"))).unwrap_or_default()
        };
        let mut d = DistIndex {
            name: dist.clone(),
            ..Default::default()
        };
        d.tops.extend(
            read("top_level.txt")
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
        );
        for line in read("RECORD").lines() {
            let f = line.split(',').next().unwrap_or("").to_string();
            if let Some(top) = f
                .split('/')
                .next()
                .filter(|t| !t.ends_with(".dist-info") && !t.starts_with(".."))
            {
                let top = top.strip_suffix(".py").unwrap_or(top);
                if !top.contains('.') && !top.is_empty() && top != "__pycache__" {
                    d.tops.insert(top.to_string());
                }
            }
            d.files.insert(f);
        }
        for line in read("installed-files.txt").lines() {
            let rel = root::normalize(&format!("{dpath}/{}", line.trim()));
            if let Some(r) = rel.strip_prefix(site).and_then(|r| r.strip_prefix('/')) {
                d.files.insert(r.to_string());
            }
        }
        if d.tops.is_empty() && d.files.is_empty() {
            // Bare metadata (PKG-INFO only): guess the import name from the directory name.
            let n = dist
                .split(['-', '.'])
                .next()
                .unwrap_or("")
                .to_lowercase()
                .replace('-', "_");
            if !n.is_empty() {
                d.tops.insert(n);
            }
        }
        out.push(d);
    }
    out
}

/// Keeps the `*.dist-info` / `*.egg-info` of the distribution that owns `path`.
fn distribution(cx: &mut Ctx<'_>, path: &str) {
    let comps: Vec<&str> = path.split('/').collect();
    let Some(i) = comps
        .iter()
        .rposition(|c| *c == "site-packages" || *c == "dist-packages")
    else {
        return;
    };
    let Some(top) = comps.get(i + 1) else { return };
    if top.ends_with(".dist-info") || top.ends_with(".egg-info") || *top == "__pycache__" {
        return;
    }
    let site = comps[..=i].join("/");
    let top_name = top.split('.').next().unwrap_or(top).to_string();
    let rel = comps[i + 1..].join("/");
    if !cx.dist_cache.contains_key(&site) {
        let idx = index_site(cx, &site);
        cx.dist_cache.insert(site.clone(), idx);
    }
    let owners: Vec<String> = cx.dist_cache[&site]
        .iter()
        .filter(|d| {
            d.tops.contains(&top_name)
                || d.tops.contains(&top_name.to_lowercase())
                || d.files.contains(&rel)
        })
        .map(|d| d.name.clone())
        .collect();
    for dist in owners {
        let dpath = format!("{site}/{dist}");
        if !cx.entries.contains_key(&dpath) {
            cx.keep_tree(
                &dpath,
                Reason::PythonDistribution {
                    file: path.to_string(),
                    distribution: dist,
                },
            );
        }
    }
}

fn node(cx: &mut Ctx<'_>, path: &str) {
    let name = root::file_name(path);
    let is_js = [".js", ".mjs", ".cjs", ".node", ".json"]
        .iter()
        .any(|e| name.ends_with(e));
    if !is_js || name == "package.json" {
        return;
    }
    let reason = Reason::NodePackage {
        file: path.to_string(),
    };
    if let Some(idx) = path.rfind("/node_modules/") {
        // Package root: node_modules/NAME or node_modules/@scope/NAME.
        let rest = &path[idx + "/node_modules/".len()..];
        let mut parts = rest.split('/');
        let first = parts.next().unwrap_or("");
        let pkg_len = if first.starts_with('@') {
            first.len() + 1 + parts.next().unwrap_or("").len()
        } else {
            first.len()
        };
        let Some(pkg_root) = path.get(..idx + "/node_modules/".len() + pkg_len) else {
            return;
        };
        let mut dir = root::parent(path);
        while let Some(d) = dir {
            let pj = format!("{}/package.json", d.trim_end_matches('/'));
            if cx.root.lstat(&pj).is_some() {
                cx.keep(&pj, reason.clone());
            }
            if d.len() <= pkg_root.len() {
                break;
            }
            dir = root::parent(d);
        }
    } else if !name.ends_with(".json") {
        // The app's own package.json: the nearest one above.
        let mut dir = root::parent(path);
        while let Some(d) = dir {
            let pj = format!("{}/package.json", d.trim_end_matches('/'));
            if cx.root.lstat(&pj).is_some_and(|m| m.is_file()) {
                cx.keep(&pj, reason);
                break;
            }
            dir = root::parent(d);
        }
    }
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
pub fn global(cx: &mut Ctx<'_>, done: &mut GlobalDone) -> bool {
    let before = cx.entries.len();
    if !done.nss
        && let Some(libc) = cx.libc.clone()
    {
        done.nss = true;
        nss(cx, &libc);
    }
    if !done.certs
        && let Some(lib) = cx.tls.first().cloned()
    {
        done.certs = true;
        certificates(cx, &lib);
    }
    if !done.zoneinfo
        && let Some(t) = cx
            .entries
            .keys()
            .find(|p| p.starts_with("/usr/share/zoneinfo/"))
            .cloned()
    {
        done.zoneinfo = true;
        let r = Reason::Zoneinfo { touched: t };
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
            if cx.root.resolve(f, false).is_ok_and(|r| r.exists) {
                cx.keep(f, r.clone());
            }
        }
    }
    if !done.locale
        && let Some(t) = cx
            .entries
            .keys()
            .find(|p| p.starts_with("/usr/lib/locale/"))
            .cloned()
    {
        done.locale = true;
        let r = Reason::Locale { touched: t };
        let touched: Vec<String> = cx
            .entries
            .keys()
            .filter_map(|p| p.strip_prefix("/usr/lib/locale/"))
            .filter_map(|rest| rest.split('/').next())
            .filter(|n| *n != "locale-archive")
            .map(|n| format!("/usr/lib/locale/{n}"))
            .collect();
        for d in touched {
            cx.keep_tree(&d, r.clone());
        }
        // locale-archive can be hundreds of MB with all locales: kept only when traced.
        for f in [
            "/usr/share/locale/locale.alias",
            "/etc/locale.alias",
            "/etc/default/locale",
            "/etc/locale.conf",
        ] {
            if cx.root.lstat(f).is_some() {
                cx.keep(f, r.clone());
            }
        }
    }
    let gconv_dirs: Vec<(String, String)> = cx
        .entries
        .keys()
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
        let r = Reason::Gconv { touched };
        for f in ["gconv-modules", "gconv-modules.cache"] {
            let p = format!("{dir}/{f}");
            if cx.root.lstat(&p).is_some() {
                cx.keep(&p, r.clone());
            }
        }
        let d = format!("{dir}/gconv-modules.d");
        if cx.root.lstat(&d).is_some() {
            cx.keep_tree(&d, r);
        }
    }
    cx.entries.len() != before
}

/// NSS modules named in `nsswitch.conf` (glibc's defaults when there is none).
fn nss(cx: &mut Ctx<'_>, libc: &str) {
    if root::file_name(libc).starts_with("ld-musl")
        || root::file_name(libc).starts_with("libc.musl")
    {
        return; // musl has no NSS
    }
    let Some((is_64, machine)) = crate::elf::ident(&cx.root, libc) else {
        return;
    };
    let text = cx
        .root
        .resolve("/etc/nsswitch.conf", true)
        .ok()
        .and_then(|r| std::fs::read_to_string(cx.root.host(&r.path)).ok())
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
        if let Some(found) = cx
            .resolver
            .find(&cx.root, &soname, (is_64, machine), &[], &[])
        {
            cx.keep(
                &found.path,
                Reason::Nss {
                    service: svc,
                    databases: dbs,
                    libc: libc.to_string(),
                },
            );
        }
    }
}

fn certificates(cx: &mut Ctx<'_>, library: &str) {
    let r = Reason::Certificates {
        library: library.to_string(),
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
        if cx.root.resolve(p, false).is_ok_and(|r| r.exists) {
            cx.keep_tree(p, r.clone());
        }
    }
    // A JRE keeps its own trust store next to libjava.so.
    for lib in cx.tls.clone() {
        if let Some(home) = lib.strip_suffix("/lib/libjava.so") {
            for d in ["lib/security", "conf/security"] {
                let p = format!("{home}/{d}");
                if cx.root.lstat(&p).is_some() {
                    cx.keep_tree(
                        &p,
                        Reason::Certificates {
                            library: lib.clone(),
                        },
                    );
                }
            }
        }
    }
}
