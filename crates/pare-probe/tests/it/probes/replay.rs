//! Replaying probes against another run and comparing the answers.

use super::*;

#[test]
fn replay_detects_changed_status_and_body() {
    let app = app();
    let c = fake(&[(8080, app.addr)]);
    let o = ProbeOptions::default();
    let recs = crawl(&c, 8080, false, &o);
    let same = replay(&c, &recs, &o);
    assert!(
        same.iter().all(|r| r.ok()),
        "{:?}",
        same.iter().map(|r| &r.result).collect::<Vec<_>>()
    );
    *app.broken.lock().unwrap() = true;
    let after = replay(&c, &recs, &o);
    let diff = after[0].result.clone().unwrap_err();
    let fields: Vec<&str> = diff.mismatches.iter().map(|m| m.field.as_str()).collect();
    assert_eq!(fields, vec!["status", "header:content-type", "body"]);
    assert!(
        diff.to_string().contains("status: expected 200, got 500"),
        "{diff}"
    );
    assert!(after[1..].iter().all(|r| r.ok()));
}

#[test]
fn volatile_bodies_are_not_compared() {
    let app = app();
    let c = fake(&[(8080, app.addr)]);
    let o = ProbeOptions::default();
    let spec = ProbeSpec::Http {
        port: 8080,
        method: "GET".into(),
        path: "/time".into(),
        headers: vec![],
        body: None,
        https: false,
        expect_status: Some(200),
    };
    let mut stable = spec.clone();
    if let ProbeSpec::Http { path, .. } = &mut stable {
        *path = "/abs".into();
    }
    let mut recs = vec![run_probe(&c, &spec, &o), run_probe(&c, &stable, &o)];
    // Without the volatility mark, a page that prints a counter differs on replay.
    assert!(!replay(&c, &recs, &o)[0].ok());
    mark_volatile(&c, &mut recs, &o);
    assert_eq!(recs[0].outcome.volatile, vec!["body".to_string()]);
    assert!(recs[1].outcome.volatile.is_empty());
    assert!(replay(&c, &recs, &o).iter().all(|r| r.ok()));
    assert!(check_expectation(&spec, &recs[0].outcome).is_ok());
}

#[test]
fn compare_flags_each_field() {
    let base = ProbeOutcome {
        http_status: Some(200),
        body_digest: Some(digest(b"a")),
        body_len: Some(1),
        ..Default::default()
    };
    assert!(compare(&base, &base.clone()).is_ok());
    let other_body = ProbeOutcome {
        body_digest: Some(digest(b"b")),
        ..base.clone()
    };
    assert_eq!(
        compare(&base, &other_body).unwrap_err().mismatches[0].field,
        "body"
    );
    let failed = ProbeOutcome {
        error: Some("connection refused".into()),
        ..Default::default()
    };
    let fields: Vec<String> = compare(&base, &failed)
        .unwrap_err()
        .mismatches
        .into_iter()
        .map(|m| m.field)
        .collect();
    assert_eq!(fields, vec!["error", "status", "body"]);
    let exit = |c| ProbeOutcome {
        exit_code: Some(c),
        ..Default::default()
    };
    assert!(compare(&exit(0), &exit(1)).is_err());
    let conn = |c| ProbeOutcome {
        connected: Some(c),
        ..Default::default()
    };
    assert!(compare(&conn(true), &conn(false)).is_err());
}

#[test]
fn volatility_across_runs_excuses_bodies_not_statuses() {
    let rec = |status, body: &[u8]| ProbeRecord {
        spec: ProbeSpec::Tcp { port: 1 },
        outcome: ProbeOutcome {
            http_status: Some(status),
            body_digest: Some(digest(body)),
            body_len: Some(body.len() as u64),
            ..Default::default()
        },
        millis: 0,
    };
    let mut recs = vec![rec(200, b"started at 10:00"), rec(200, b"same")];
    let other = vec![
        rec(200, b"started at 10:01").outcome,
        rec(500, b"same").outcome,
    ];
    mark_volatile_across(&mut recs, &other);
    assert_eq!(recs[0].outcome.volatile, vec!["body".to_string()]);
    assert!(recs[1].outcome.volatile.is_empty());
    assert!(compare(&recs[0].outcome, &rec(200, b"started at 10:02").outcome).is_ok());
    assert!(compare(&recs[1].outcome, &other[1]).is_err());
}
