//! The HTML reports in a real browser: headless Chromium loads each one, takes a screenshot and
//! dumps the DOM after the inline script ran. The test asserts that the script finished
//! (`data-pare-rendered="ok"`, set as its last statement), that no script error happened
//! (`data-pare-error`, set by an error listener), that the main elements exist, and that hostile
//! file names show as text.
//!
//! Skipped, with a message, when no Chromium is installed (`apt-get install chromium`;
//! scripts/testbed installs it, so CI runs it). `PARE_CHROMIUM` names another binary.
//! `PARE_SCREENSHOTS=DIR` keeps the screenshots (docs/img/ holds the committed ones).

use std::path::{Path, PathBuf};
use std::process::Command;

use pare_diff::Options;
use pare_report::TreeBuilder;
use pare_test_support::layer::{LayerBuilder, MemSource};

const HOSTILE: &str = "usr/share/<script>alert(1)</script>";
const ANSI: &str = "usr/share/evil\x1b[31mred";

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PARE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Runs headless Chromium on `html`: (the DOM after scripts ran, the screenshot path).
fn load(browser: &Path, html: &Path, out: &Path) -> (String, PathBuf) {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", html.display());
    let base = |c: &mut Command| {
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let shot = out.join(format!(
        "{}.png",
        html.file_stem().unwrap().to_string_lossy()
    ));
    let mut c = Command::new(browser);
    base(&mut c);
    let st = c
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut c = Command::new(browser);
    base(&mut c);
    let dom = c.arg("--dump-dom").arg(&url).output().unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    (String::from_utf8_lossy(&dom.stdout).into_owned(), shot)
}

fn check(dom: &str, shot: &Path, ids: &[&str]) {
    assert!(
        dom.contains("data-pare-rendered=\"ok\""),
        "the report's script did not finish"
    );
    assert!(!dom.contains("data-pare-error=\""), "script error: {dom}");
    for id in ids {
        assert!(dom.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    let png = std::fs::read(shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot"
    );
}

fn image(extra: &[(&str, usize)], config_user: &str) -> MemSource {
    let mut l = LayerBuilder::new()
        .dir("usr/bin")
        .dir("usr/lib")
        .dir("usr/share");
    for (i, size) in [300_000usize, 120_000, 80_000].iter().enumerate() {
        l = l.sized(&format!("usr/lib/lib{i}.so"), *size, b'a' + i as u8);
    }
    l = l
        .file("bin/sh", b"ELF")
        .sized(HOSTILE, 5_000, b'x')
        .sized(ANSI, 4_000, b'y');
    let mut top = LayerBuilder::new().dir("app");
    for (p, size) in extra {
        top = top.sized(p, *size, b'z');
    }
    let cfg = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"User": config_user, "Cmd": ["/app/run"]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created_by": "ADD rootfs /"}, {"created_by": "COPY app /app"}],
    });
    MemSource::new(vec![l.finish(), top.finish()], cfg)
}

#[test]
fn reports_render_in_chromium() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED reports_render_in_chromium: no chromium in PATH (apt-get install chromium, \
             or set PARE_CHROMIUM)"
        );
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let out = std::env::var_os("PARE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| t.path().to_path_buf());
    std::fs::create_dir_all(&out).unwrap();

    // xray
    let a = image(&[("app/run", 50_000), ("app/data.bin", 200_000)], "");
    let opts = pare_xray::Options::default();
    let (report, fs) = pare_xray::analyze_with_fs(&a, &opts).unwrap();
    let html = pare_report::xray(&report, &TreeBuilder::from_fs(&fs).finish()).unwrap();
    assert!(
        !html.contains("<script>alert"),
        "hostile name escaped in the HTML"
    );
    let p = t.path().join("xray.html");
    std::fs::write(&p, &html).unwrap();
    let (dom, shot) = load(&browser, &p, &out);
    check(
        &dom,
        &shot,
        &["treemap-image", "layers", "largest", "surface"],
    );
    assert!(dom.contains("data-pare-treemaps=\"1\""));
    assert!(dom.matches("<rect").count() > 5, "treemap boxes drawn");
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "shown as text"
    );
    assert!(!dom.contains('\x1b'), "no raw escape byte in the page text");
    assert!(dom.contains("evil\\x1b[31mred"), "the escape shows as text");

    // diff
    let b = image(&[("app/run", 60_000), ("app/new.bin", 90_000)], "app");
    let d = pare_diff::diff(&a, &b, &Options::default()).unwrap();
    let p = t.path().join("diff.html");
    std::fs::write(&p, pare_report::diff(&d).unwrap()).unwrap();
    let (dom, shot) = load(&browser, &p, &out);
    check(
        &dom,
        &shot,
        &[
            "treemap-changes",
            "changed-dirs",
            "files",
            "config",
            "surface-lost",
        ],
    );
    assert!(dom.contains("/app/new.bin") && dom.contains("/app/data.bin"));

    // build, from a report.json as pare build writes it, with trees of both images
    let report: serde_json::Value =
        serde_json::from_str(include_str!("data/build-report.json")).unwrap();
    let before = TreeBuilder::from_fs(&fs).finish();
    let mut slim = TreeBuilder::new();
    slim.add("app/run", 50_000, None);
    slim.add("usr/lib/lib0.so", 300_000, None);
    let html = pare_report::build(&report, Some(&before), Some(&slim.finish())).unwrap();
    assert!(!html.contains("<script>alert(\"kept\")"));
    let p = t.path().join("build.html");
    std::fs::write(&p, html).unwrap();
    let (dom, shot) = load(&browser, &p, &out);
    check(
        &dom,
        &shot,
        &[
            "treemap-before",
            "treemap-after",
            "verification",
            "timings",
            "kept",
        ],
    );
    assert!(dom.contains("data-pare-treemaps=\"2\""));
    assert!(
        dom.contains("needed — by: /usr/bin/python3.11"),
        "why chain shown"
    );
    assert!(
        dom.contains("/usr/bin/&lt;b&gt;python&lt;/b&gt;"),
        "reasons escaped"
    );
}
