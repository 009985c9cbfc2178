//! `.dive-ci`: parsed and evaluated against a small image's report.

use std::sync::OnceLock;

use pare_test_support::layer::{LayerBuilder, MemSource};
use pare_xray::{CiRules, Report};

fn report() -> &'static Report {
    static REPORT: OnceLock<Report> = OnceLock::new();
    REPORT.get_or_init(|| {
        let base = LayerBuilder::new().dir("etc").sized("etc/big", 4096, b'x').finish();
        let top = LayerBuilder::new().whiteout("etc/big").file("etc/x", b"1").finish();
        let src = MemSource::with_history(vec![base, top], &["ADD base /", "RUN rm /etc/big"]);
        let opts = pare_xray::Options {
            top: 5,
            hash: true,
            threads: 1,
        };
        pare_xray::analyze(&src, &opts).expect("fixed image analyzes")
    })
}

/// The body: the input (lossy UTF-8) parsed as a `.dive-ci` file; when it parses, its rules are
/// evaluated against a fixed small image's report and the outcome table rendered at a width
/// taken from the input's length. A parse error must be one line.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match CiRules::from_dive_ci(&text, ".dive-ci") {
        Ok(rules) => {
            let outcomes = pare_xray::ci::evaluate(report(), &rules);
            let _ = pare_xray::ci::passed(&outcomes);
            let _ = pare_xray::render::ci_table(&outcomes, false, data.len() % 200);
        }
        Err(e) => crate::one_line(&e),
    }
}
