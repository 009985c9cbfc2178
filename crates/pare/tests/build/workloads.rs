//! Issue 8: four classes of real-world workload, each built and verified three times.

use super::*;

/// A JVM servlet container binds :8080 seconds before its webapp answers; the build must wait
/// for HTTP, crawl to the JSP and verify it.
#[test]
fn tomcat_slow_deploy_three_times() {
    let tag = test_image("tomcat.slim:build");
    three_verified_builds("pare-example/tomcat", &tag, |b| {
        let names = probe_names(b);
        assert!(
            names.iter().any(|p| p.ends_with(":8080/hello")),
            "{names:?}"
        );
        assert_eq!(inspect(&tag, "{{.Config.User}}"), "tomcat");
    });
}

/// An Erlang broker as a non-root USER (HOME from /etc/passwd holds its cookie), checked by
/// an AMQP handshake each time.
#[test]
fn rabbitmq_non_root_broker_three_times() {
    three_verified_builds(
        "pare-example/rabbitmq",
        &test_image("rabbitmq.slim:build"),
        |b| {
            let f = protocol_fields(b, 5672, "amqp");
            assert_eq!(f["amqp.product"], "RabbitMQ", "{f}");
            assert_eq!(f["amqp.version"], "0-9", "{f}");
            assert!(probe_names(b).iter().any(|p| p == "amqp :5672"));
        },
    );
}

/// A database that runs initdb at first start, checked by its PostgreSQL handshake.
#[test]
fn postgres_initdb_at_start_three_times() {
    three_verified_builds(
        "pare-example/postgres",
        &test_image("postgres.slim:build"),
        |b| {
            let f = protocol_fields(b, 5432, "postgres");
            assert_eq!(f["postgres.auth"], "sasl", "{f}");
            assert_eq!(f["postgres.mechanisms"], "SCRAM-SHA-256", "{f}");
            assert!(b.kept("/usr/lib/postgresql/15/bin/initdb"));
        },
    );
}

/// An EXPOSEd port nothing listens on: reported, not waited for (the build runs with
/// `--timeout 120`, so one fixed wait would show).
#[test]
fn unused_expose_three_times() {
    let times = three_verified_builds(
        "pare-example/unused-expose",
        &test_image("unused-expose.slim:build"),
        |b| {
            let names = probe_names(b);
            assert!(
                names.iter().any(|p| p.ends_with(":8000/about.html")),
                "{names:?}"
            );
            let out = format!("{}\n{}", b.stdout, b.stderr);
            assert!(out.contains("80/tcp: nothing listens"), "{out}");
        },
    );
    for t in times {
        assert!(t < Duration::from_secs(60), "a build took {t:?}");
    }
}
