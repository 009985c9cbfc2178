//! Crawling an app from `/` for the pages, scripts and stylesheets it links to.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use pare_runtime::Container;

use crate::run::{error_outcome, http_probe, origins};
use crate::{ProbeError, ProbeOptions, ProbeRecord, ProbeSpec, links};

/// Crawls the app on container port `port` from `/`: GET each page, follow same-origin
/// `href`/`src` links of HTML pages, `url()`/`@import` of stylesheets and same-origin redirects, breadth first, up to
/// `opts.crawl_depth` levels and `opts.crawl_max` requests.
pub fn crawl(
    container: &dyn Container,
    port: u16,
    https: bool,
    opts: &ProbeOptions,
) -> Vec<ProbeRecord> {
    let mut out = Vec::new();
    let Some(addr) = container.endpoint(port) else {
        return vec![ProbeRecord {
            spec: get_spec(port, "/", https),
            outcome: error_outcome(ProbeError::NoEndpoint { port }),
            millis: 0,
        }];
    };
    let origins = origins(port, https, addr);
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([("/".to_string(), 0usize)]);
    seen.insert("/".to_string());
    while let Some((path, depth)) = queue.pop_front() {
        if out.len() >= opts.crawl_max {
            break;
        }
        let spec = get_spec(port, &path, https);
        let start = Instant::now();
        let (outcome, resp) = http_probe(container, &spec, opts);
        out.push(ProbeRecord {
            spec,
            outcome,
            millis: start.elapsed().as_millis() as u64,
        });
        let Some(resp) = resp else { continue };
        if depth >= opts.crawl_depth {
            continue;
        }
        let mut found = Vec::new();
        if let Some(loc) = resp.header("location") {
            found.push(loc.to_string());
        }
        let is_html = resp
            .header("content-type")
            .is_some_and(|c| c.to_ascii_lowercase().contains("html"));
        let is_css = resp
            .header("content-type")
            .is_some_and(|c| c.to_ascii_lowercase().contains("text/css"));
        if is_html {
            found.extend(links::extract_links(&String::from_utf8_lossy(&resp.body)));
        } else if is_css {
            found.extend(links::extract_css_urls(&String::from_utf8_lossy(
                &resp.body,
            )));
        }
        for link in found {
            if let Some(p) = links::resolve(&path, &link, https, &origins) {
                if seen.insert(p.clone()) {
                    queue.push_back((p, depth + 1));
                }
            }
        }
    }
    out
}

pub(crate) fn get_spec(port: u16, path: &str, https: bool) -> ProbeSpec {
    ProbeSpec::Http {
        port,
        method: "GET".into(),
        path: path.into(),
        headers: Vec::new(),
        body: None,
        https,
        expect_status: None,
    }
}
