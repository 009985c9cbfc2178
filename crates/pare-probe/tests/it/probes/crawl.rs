//! The HTTP crawl: same-origin links, redirects, limits.

use super::*;

#[test]
fn crawl_follows_same_origin_links_and_redirects() {
    let app = app();
    let c = fake(&[(8080, app.addr)]);
    let recs = crawl(&c, 8080, false, &ProbeOptions::default());
    let paths: Vec<String> = recs
        .iter()
        .map(|r| match &r.spec {
            ProbeSpec::Http { path, .. } => path.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        paths,
        vec![
            "/",
            "/second",
            "/img.png",
            "/abs",
            "/redirect",
            "/third?q=1",
            "/style.css",
            "/moved",
            "/bg.png"
        ]
    );
    // The Host header carries the container port, not the host port.
    assert!(
        app.log
            .lock()
            .unwrap()
            .iter()
            .all(|(_, h)| h == "localhost:8080")
    );
    let root = &recs[0].outcome;
    assert_eq!(root.http_status, Some(200));
    assert_eq!(
        root.headers.get("content-type").map(String::as_str),
        Some("text/html; charset=utf-8")
    );
    assert!(
        !root.headers.contains_key("date"),
        "volatile headers are not kept"
    );
    let redirect = &recs[4].outcome;
    assert_eq!(redirect.http_status, Some(302));
    assert_eq!(
        redirect.headers.get("location").map(String::as_str),
        Some("/moved"),
        "own origin stripped"
    );
    let img = &recs[2].outcome;
    assert_eq!(img.body_len, Some(4));
    assert_eq!(img.body_digest.as_deref(), Some(digest(b"PNG!").as_str()));
}

#[test]
fn crawl_respects_limits() {
    let app = app();
    let c = fake(&[(8080, app.addr)]);
    let opts = ProbeOptions {
        crawl_max: 2,
        ..Default::default()
    };
    assert_eq!(crawl(&c, 8080, false, &opts).len(), 2);
    let opts = ProbeOptions {
        crawl_depth: 0,
        ..Default::default()
    };
    assert_eq!(crawl(&c, 8080, false, &opts).len(), 1);
}
