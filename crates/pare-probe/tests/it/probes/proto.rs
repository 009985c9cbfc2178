//! Protocol probes against in-process fakes that answer as the real servers did.

use super::*;

#[test]
fn classify_database_and_broker_ports_by_what_they_answer() {
    let (redis, pg, my, amqp) = (
        fake_redis("7.0.15"),
        fake_postgres(),
        fake_mariadb(),
        fake_rabbitmq(),
    );
    // Unusual port numbers: no hint from the number, the answers decide.
    let c = fake(&[
        (7001, redis),
        (7002, pg),
        (7003, my),
        (7004, amqp),
        (6379, pg),
    ]);
    let o = ProbeOptions {
        timeout: Duration::from_secs(3),
        ..Default::default()
    };
    assert_eq!(
        classify_port(&c, 7001, &o),
        PortKind::Protocol(Protocol::Redis)
    );
    assert_eq!(
        classify_port(&c, 7002, &o),
        PortKind::Protocol(Protocol::Postgres)
    );
    assert_eq!(
        classify_port(&c, 7003, &o),
        PortKind::Protocol(Protocol::Mysql)
    );
    assert_eq!(
        classify_port(&c, 7004, &o),
        PortKind::Protocol(Protocol::Amqp)
    );
    // A misleading port number: postgres on 6379 is still postgres.
    assert_eq!(
        classify_port(&c, 6379, &o),
        PortKind::Protocol(Protocol::Postgres)
    );
}

#[test]
fn protocol_probes_replay_masked_and_catch_a_different_server() {
    let o = ProbeOptions {
        timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let original = fake(&[
        (6379, fake_redis("7.0.15")),
        (5432, fake_postgres()),
        (3306, fake_mariadb()),
        (5672, fake_rabbitmq()),
    ]);
    let specs: Vec<ProbeSpec> = [
        (6379, Protocol::Redis),
        (5432, Protocol::Postgres),
        (3306, Protocol::Mysql),
        (5672, Protocol::Amqp),
    ]
    .into_iter()
    .map(|(port, protocol)| ProbeSpec::Protocol { port, protocol })
    .collect();
    let records: Vec<ProbeRecord> = specs.iter().map(|s| run_probe(&original, s, &o)).collect();
    for r in &records {
        assert!(r.outcome.error.is_none(), "{:?}", r.outcome);
        assert!(!r.outcome.fields.is_empty(), "{:?}", r.outcome);
    }
    assert_eq!(describe(&specs[1]), "postgres :5432");
    assert!(describe_outcome(&records[3].outcome).contains("RabbitMQ 3.10.8"));
    // The same servers again (new run ids, connection ids, salts): every probe compares equal.
    let same = fake(&[
        (6379, fake_redis("7.0.15")),
        (5432, fake_postgres()),
        (3306, fake_mariadb()),
        (5672, fake_rabbitmq()),
    ]);
    for r in replay(&same, &records, &o) {
        assert!(r.ok(), "{}: {:?}", describe(&r.record.spec), r.result);
    }
    // Another redis version, and a postgres port where nothing answers: both caught.
    let other = fake(&[(6379, fake_redis("7.2.4")), (5432, closed_addr())]);
    let r = replay(&other, &records[..2], &o);
    let diff = r[0].result.as_ref().unwrap_err();
    assert_eq!(diff.mismatches[0].field, "field:redis.version");
    assert!(r[1].actual.error.is_some());
    assert!(!r[1].ok());
}
