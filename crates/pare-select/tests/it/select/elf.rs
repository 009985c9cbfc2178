//! ELF closures: bash on bookworm, a working sh, ld.so.cache, $ORIGIN/RUNPATH/RPATH.

use super::*;

#[test]
fn bash_elf_closure_on_bookworm() {
    let Some(root) = bookworm() else { return };
    let inputs = SelectInputs {
        include_bins: vec!["/usr/bin/bash".into()],
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let sel = select(&root, &inputs).unwrap();
    eprintln!(
        "closure of bash: {} entries in {:?}",
        sel.entries.len(),
        t.elapsed()
    );
    for p in [
        "/usr/bin/bash",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libtinfo.so.6",
        "/usr/lib/x86_64-linux-gnu/libtinfo.so.6.4",
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "/lib64",
        "/usr/lib64/ld-linux-x86-64.so.2",
        "/lib",
        "/usr",
        "/usr/lib",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/bin",
        "/etc/passwd",
        "/etc/group",
        "/tmp",
    ] {
        assert!(has(&sel, p), "missing {p}");
    }
    // Not part of bash's closure.
    assert!(!has(&sel, "/usr/bin/perl"));
    assert!(!has(&sel, "/usr/lib/x86_64-linux-gnu/libz.so.1"));
    // The edges are recorded.
    let tinfo = &sel.entries["/usr/lib/x86_64-linux-gnu/libtinfo.so.6.4"].reasons;
    assert!(tinfo.iter().any(|r| matches!(r, Reason::Needed { by, soname, .. } if by == "/usr/bin/bash" && soname == "libtinfo.so.6")), "{tinfo:?}");
    assert!(
        sel.entries["/lib"]
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::SymlinkChain { .. }))
    );
    assert!(
        sel.entries["/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"]
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::Interpreter { by } if by == "/usr/bin/bash"))
    );
    // `why` walks back to the flag, also for a path as the loader opens it (through /lib).
    let chain = sel.explain("/lib/x86_64-linux-gnu/libc.so.6");
    assert_eq!(
        chain.first().map(|c| c.0.as_str()),
        Some("/usr/lib/x86_64-linux-gnu/libc.so.6"),
        "{chain:?}"
    );
    assert!(sel.get("/lib/x86_64-linux-gnu/libc.so.6").is_some());
    assert!(sel.get("/lib/x86_64-linux-gnu/libz.so.1").is_none());
    // `why` walks back to the flag.
    let chain = sel.explain("/usr/lib/x86_64-linux-gnu/libtinfo.so.6.4");
    assert!(
        matches!(chain.last().unwrap().1, Reason::IncludeBin { .. }),
        "{chain:?}"
    );
    // NSS modules come with libc.
    assert!(has(&sel, "/usr/lib/x86_64-linux-gnu/libnss_files.so.2"));
    assert!(has(&sel, "/usr/lib/x86_64-linux-gnu/libnss_dns.so.2"));
    assert!(has(&sel, "/etc/nsswitch.conf"));
    // No TLS library → no certificates; no dangling warnings for bash.
    assert!(
        !sel.entries
            .keys()
            .any(|p| p.starts_with("/usr/share/ca-certificates"))
    );
    assert!(sel.warnings.is_empty(), "{:?}", sel.warnings);
    // Serializable for report.json.
    let json = serde_json::to_string(&sel).unwrap();
    assert!(
        json.contains("Package: bash"),
        "generated status is readable text in JSON"
    );
    let back: Selection = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sel);
    let mut binary = sel.clone();
    binary
        .generated
        .insert("/bin.dat".parse().unwrap(), vec![0xff, 0, 1]);
    let back: Selection = serde_json::from_str(&serde_json::to_string(&binary).unwrap()).unwrap();
    assert_eq!(back, binary);

    // And it runs with only the selected files.
    let dest = tempfile::tempdir().unwrap();
    materialize(&root, &sel, dest.path());
    let out = run_in(dest.path(), "/usr/bin/bash", &["-c", "echo closure-ok"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "closure-ok",
        "{out:?}"
    );
}

#[test]
fn include_shell_gives_a_working_sh() {
    let Some(root) = bookworm() else { return };
    let sel = select(
        &root,
        &SelectInputs {
            include_shell: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(has(&sel, "/bin"), "the /bin → usr/bin link");
    assert!(has(&sel, "/usr/bin/sh"));
    assert!(has(&sel, "/usr/bin/dash"));
    assert!(matches!(
        sel.entries["/usr/bin/dash"].reasons[0],
        Reason::IncludeShell
    ));
    let dest = tempfile::tempdir().unwrap();
    materialize(&root, &sel, dest.path());
    // /bin/sh through the kept symlinks.
    let out = run_in(dest.path(), "/bin/sh", &["-c", "x=$((6*7)); echo $x"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42", "{out:?}");
}

#[test]
fn ld_so_cache_parses_real_files() {
    for cache in [
        "/etc/ld.so.cache".to_string(),
        bookworm()
            .map(|r| r.join("etc/ld.so.cache").display().to_string())
            .unwrap_or_default(),
    ] {
        let Ok(bytes) = fs::read(&cache) else {
            continue;
        };
        let entries = pare_select::ldcache::parse(&bytes, Path::new(&cache)).unwrap();
        assert!(entries.len() > 10, "{cache}");
        let libc = entries
            .iter()
            .find(|e| e.name == "libc.so.6")
            .expect("libc.so.6 in the cache");
        assert!(libc.path.ends_with("/libc.so.6"));
        assert_eq!(libc.flags & 0xff, pare_select::ldcache::FLAG_ELF_LIBC6);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(libc.flags & 0xff00, pare_select::ldcache::FLAG_X8664_LIB64);
        }
        // Cross-check against ldconfig -p when the host has it.
        if cache == "/etc/ld.so.cache"
            && let Ok(out) = Command::new("ldconfig").arg("-p").output()
        {
            let text = String::from_utf8_lossy(&out.stdout);
            let n = text.lines().filter(|l| l.contains(" => ")).count();
            assert_eq!(n, entries.len(), "ldconfig -p disagrees");
        }
    }
}

#[test]
fn origin_runpath_and_rpath() {
    if !has_cc() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(
        src.join("foo.c"),
        "int bar(void); int foo(void){return 41 + bar();}",
    )
    .unwrap();
    fs::write(src.join("bar.c"), "int bar(void){return 1;}").unwrap();
    fs::write(
        src.join("main.c"),
        "int foo(void); int main(void){return foo();}",
    )
    .unwrap();
    let root = t.path().join("root");
    let lib = root.join("opt/app/lib");
    let priv_ = root.join("opt/app/lib/private");
    let bin = root.join("opt/app/bin");
    for d in [&lib, &priv_, &bin] {
        fs::create_dir_all(d).unwrap();
    }
    let s = |p: &Path| p.display().to_string();
    // libbar lives in a private dir that only libfoo's own RUNPATH names.
    cc(&[
        "-shared",
        "-fPIC",
        "-o",
        &s(&priv_.join("libbar.so.1")),
        &s(&src.join("bar.c")),
        "-Wl,-soname,libbar.so.1",
    ]);
    cc(&[
        "-shared",
        "-fPIC",
        "-o",
        &s(&lib.join("libfoo.so.1")),
        &s(&src.join("foo.c")),
        "-Wl,-soname,libfoo.so.1",
        &format!("-L{}", s(&priv_)),
        "-l:libbar.so.1",
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/private",
    ]);
    // RUNPATH flavour.
    cc(&[
        "-o",
        &s(&bin.join("app")),
        &s(&src.join("main.c")),
        &format!("-L{}", s(&lib)),
        "-l:libfoo.so.1",
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib",
    ]);
    // RPATH flavour, reached through a symlink in /usr/bin ($ORIGIN is the real directory).
    cc(&[
        "-o",
        &s(&bin.join("app-rpath")),
        &s(&src.join("main.c")),
        &format!("-L{}", s(&lib)),
        "-l:libfoo.so.1",
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib",
    ]);
    link(&root, "/usr/bin/app", "/opt/app/bin/app-rpath");

    for (exe, via) in [("/opt/app/bin/app", "RUNPATH"), ("/usr/bin/app", "RPATH")] {
        let sel = select_bin(&root, exe);
        let foo = &sel
            .entries
            .get("/opt/app/lib/libfoo.so.1")
            .unwrap_or_else(|| panic!("{exe}: {:?}", sel.entries.keys()))
            .reasons;
        assert!(
            foo.iter()
                .any(|r| matches!(r, Reason::Needed { via: v, .. } if v == via)),
            "{exe}: {foo:?}"
        );
        assert!(
            has(&sel, "/opt/app/lib/private/libbar.so.1"),
            "{exe}: transitive RUNPATH of libfoo"
        );
        // libc is not in this synthetic root: a warning, not an error.
        assert!(
            sel.warnings.iter().any(|w| w.contains("libc.so.6")),
            "{:?}",
            sel.warnings
        );
    }
}
