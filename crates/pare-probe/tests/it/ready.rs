//! Readiness from what the app does (issue 8): protocol answers, not listening sockets;
//! busy apps are waited for; unused EXPOSEd ports are given up once the app is idle.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pare_probe::{
    Activity, PortKind, ProbeOptions, Readiness, ReadyPlan, ReadySign, wait_until_ready,
};
use pare_runtime::{Container, ExecOutput, RuntimeError};
use pare_trace::ExitInfo;

#[derive(Default)]
struct Fake {
    ports: BTreeMap<u16, SocketAddr>,
    exit: Mutex<Option<ExitInfo>>,
    log: Vec<u8>,
}

impl Container for Fake {
    fn endpoint(&self, port: u16) -> Option<SocketAddr> {
        self.ports.get(&port).copied()
    }
    fn listening(&self, port: u16) -> Option<bool> {
        // Direct check, like the runtimes: a closed port refuses at once.
        let a = self.ports.get(&port)?;
        Some(std::net::TcpStream::connect_timeout(a, Duration::from_millis(300)).is_ok())
    }
    fn exec(&self, argv: &[String], _t: Duration) -> Result<ExecOutput, RuntimeError> {
        Ok(ExecOutput {
            exit_code: i32::from(argv.first().map(String::as_str) != Some("true")),
            ..Default::default()
        })
    }
    fn wait(&self, _t: Duration) -> Result<Option<ExitInfo>, RuntimeError> {
        Ok(self.exit.lock().unwrap().clone())
    }
    fn stop(&self, _g: Duration) -> Result<ExitInfo, RuntimeError> {
        Ok(ExitInfo {
            code: 143,
            signal: None,
        })
    }
    fn logs(&self) -> Result<(Vec<u8>, Vec<u8>), RuntimeError> {
        Ok((Vec::new(), self.log.clone()))
    }
    fn cleanup(&self) -> Result<(), RuntimeError> {
        Ok(())
    }
}

/// An HTTP server that listens at once but answers only after `delay` from its start (a
/// servlet container deploying its apps).
fn slow_http(delay: Duration) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t0 = Instant::now();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            std::thread::spawn(move || {
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b);
                if let Some(left) = delay.checked_sub(t0.elapsed()) {
                    std::thread::sleep(left);
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            });
        }
    });
    addr
}

fn closed() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

fn plan<'a>(ports: &[u16], droppable: &[u16], timeout: Duration) -> ReadyPlan<'a> {
    ReadyPlan {
        ports: ports.to_vec(),
        droppable: droppable.iter().copied().collect::<BTreeSet<_>>(),
        expect: BTreeMap::new(),
        sign: None,
        timeout,
        activity: None,
        probe: ProbeOptions {
            timeout: Duration::from_secs(3),
            ..Default::default()
        },
    }
}

#[test]
fn a_listening_port_is_ready_only_when_its_protocol_answers() {
    let c = Fake {
        ports: [(8080, slow_http(Duration::from_millis(900)))].into(),
        ..Default::default()
    };
    let t = Instant::now();
    let r = wait_until_ready(&c, &plan(&[8080], &[8080], Duration::from_secs(20))).unwrap();
    assert_eq!(r.outcome, Readiness::Ready);
    assert_eq!(r.ports.get(&8080), Some(&PortKind::Http));
    assert!(
        t.elapsed() >= Duration::from_millis(850),
        "{:?}",
        t.elapsed()
    );
    assert!(
        r.how.contains("port 8080 answered (8080 http)"),
        "{}",
        r.how
    );
}

/// A server that accepts connections and never says a word.
fn mute() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let held: Vec<_> = l.incoming().flatten().collect();
        drop(held);
    });
    addr
}

/// A replay of a run whose port answered HTTP: the port must answer HTTP again.
fn replay<'a>(port: u16, timeout: Duration) -> ReadyPlan<'a> {
    ReadyPlan {
        expect: [(port, PortKind::Http)].into(),
        ..plan(&[port], &[], timeout)
    }
}

#[test]
fn a_replayed_http_port_that_accepts_in_silence_is_still_starting() {
    // Silent for longer than an idle app's silent port is given (5 s): before, the replay
    // took it for "listening" and ready although the profiled run had its HTTP answer.
    let c = Fake {
        ports: [(8080, slow_http(Duration::from_millis(6500)))].into(),
        ..Default::default()
    };
    let t = Instant::now();
    let r = wait_until_ready(&c, &replay(8080, Duration::from_secs(20))).unwrap();
    assert_eq!(r.outcome, Readiness::Ready, "{}", r.how);
    assert_eq!(r.ports.get(&8080), Some(&PortKind::Http), "{}", r.how);
    // Short attempts: the late answer is seen soon after it comes.
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(6400) && took < Duration::from_millis(8500),
        "{took:?}"
    );
    assert!(
        r.how.contains("port 8080 answered (8080 http)"),
        "{}",
        r.how
    );
    assert!(
        r.how.contains("before it answered http (still starting)"),
        "{}",
        r.how
    );
}

#[test]
fn a_replayed_http_port_that_never_answers_is_not_ready() {
    let c = Fake {
        ports: [(8080, mute())].into(),
        ..Default::default()
    };
    let r = wait_until_ready(&c, &replay(8080, Duration::from_secs(8))).unwrap();
    assert_eq!(
        r.outcome,
        Readiness::TimedOut {
            waiting_for: vec![8080]
        },
        "{}",
        r.how
    );
    assert!(r.ports.is_empty(), "{:?}", r.ports);
    assert!(
        r.how
            .contains("port 8080 accepted connections but never answered http: it said nothing"),
        "{}",
        r.how
    );
}

#[test]
fn recorded_port_kinds_read_back() {
    for k in [
        PortKind::Http,
        PortKind::Https,
        PortKind::Tcp,
        PortKind::Silent,
        PortKind::Closed,
        PortKind::Protocol(pare_probe::Protocol::Redis),
        PortKind::Protocol(pare_probe::Protocol::Amqp),
    ] {
        assert_eq!(PortKind::from_name(k.name()), Some(k));
    }
    assert_eq!(PortKind::from_name("gopher"), None);
    assert!(PortKind::Http.is_protocol() && !PortKind::Silent.is_protocol());
    assert!(!PortKind::Tcp.is_protocol());
}

#[test]
fn an_unused_exposed_port_is_given_up_once_the_app_is_idle() {
    let c = Fake {
        ports: [(8080, slow_http(Duration::ZERO)), (80, closed())].into(),
        ..Default::default()
    };
    let t = Instant::now();
    let r = wait_until_ready(&c, &plan(&[80, 8080], &[80, 8080], Duration::from_secs(30))).unwrap();
    assert_eq!(r.outcome, Readiness::Ready);
    assert_eq!(r.unused, vec![80]);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(r.how.contains("80/tcp (nothing listens"), "{}", r.how);
    // An app that answered at once is given up on after the shortest quiet period.
    assert!(r.how.ends_with("listen() for 0.25s)"), "{}", r.how);
    assert!(
        r.how.starts_with("port 8080 answered (8080 http) after "),
        "{}",
        r.how
    );

    // A port a probe names is never given up: the wait runs into the limit.
    let r = wait_until_ready(&c, &plan(&[80, 8080], &[8080], Duration::from_millis(1500))).unwrap();
    assert_eq!(
        r.outcome,
        Readiness::TimedOut {
            waiting_for: vec![80]
        }
    );
}

#[test]
fn a_busy_app_is_waited_for_past_the_limit_and_an_idle_one_is_not() {
    let c = Fake {
        ports: [(80, closed())].into(),
        ..Default::default()
    };
    let t0 = Instant::now();
    // New things happen for 1.5 s, then the app goes quiet.
    let busy = || {
        let n = t0.elapsed().as_millis().min(1500) as u64 / 100;
        Some(Activity {
            novelty: n,
            listens: 0,
        })
    };
    let mut p = plan(&[80], &[80], Duration::from_secs(1));
    p.activity = Some(&busy);
    let r = wait_until_ready(&c, &p).unwrap();
    assert!(matches!(r.outcome, Readiness::TimedOut { .. }));
    // Past the 1 s limit while busy, then the 2 s of quiet that says "idle".
    assert!(
        t0.elapsed() >= Duration::from_millis(3000),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        t0.elapsed() < Duration::from_millis(4900),
        "{:?}",
        t0.elapsed()
    );

    let idle = || Some(Activity::default());
    let mut p = plan(&[80], &[80], Duration::from_millis(300));
    p.activity = Some(&idle);
    let t = Instant::now();
    let r = wait_until_ready(&c, &p).unwrap();
    assert!(matches!(r.outcome, Readiness::TimedOut { .. }));
    assert!(
        t.elapsed() < Duration::from_millis(2900),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn an_exit_ends_the_wait_and_says_so() {
    let c = Fake {
        ports: [(80, closed())].into(),
        ..Default::default()
    };
    *c.exit.lock().unwrap() = Some(ExitInfo {
        code: 0,
        signal: None,
    });
    let r = wait_until_ready(&c, &plan(&[80], &[80], Duration::from_secs(10))).unwrap();
    assert!(matches!(r.outcome, Readiness::Exited(ref e) if e.code == 0));
    assert!(
        r.how.contains("exited with code 0") && r.how.contains("before port 80 answered"),
        "{}",
        r.how
    );
}

#[test]
fn user_signs_decide_readiness() {
    let c = Fake {
        ports: [(8080, slow_http(Duration::ZERO)), (80, closed())].into(),
        log: b"booting\nServer startup in 42 ms\n".to_vec(),
        ..Default::default()
    };
    let mut p = plan(&[80, 8080], &[80, 8080], Duration::from_secs(5));
    p.sign = Some(ReadySign::Log(
        regex::Regex::new("startup in [0-9]+ ms").unwrap(),
    ));
    let r = wait_until_ready(&c, &p).unwrap();
    assert_eq!(r.outcome, Readiness::Ready);
    assert_eq!(r.unused, vec![80]);
    assert!(r.how.contains("log line matched"), "{}", r.how);

    p.sign = Some(ReadySign::Log(regex::Regex::new("never printed").unwrap()));
    p.timeout = Duration::from_millis(300);
    assert!(matches!(
        wait_until_ready(&c, &p).unwrap().outcome,
        Readiness::TimedOut { .. }
    ));

    p.sign = Some(ReadySign::parse_url("http://localhost:8080/health").unwrap());
    assert_eq!(wait_until_ready(&c, &p).unwrap().outcome, Readiness::Ready);
    p.sign = Some(ReadySign::Cmd(vec!["true".into()]));
    assert_eq!(wait_until_ready(&c, &p).unwrap().outcome, Readiness::Ready);
    p.sign = Some(ReadySign::Cmd(vec!["false".into()]));
    assert!(matches!(
        wait_until_ready(&c, &p).unwrap().outcome,
        Readiness::TimedOut { .. }
    ));
}

#[test]
fn ready_urls_parse() {
    let u = |s: &str| match ReadySign::parse_url(s) {
        Ok(ReadySign::Url { port, path, https }) => Ok((port, path, https)),
        Ok(_) => unreachable!(),
        Err(e) => Err(e),
    };
    assert_eq!(
        u("http://localhost:8080/health"),
        Ok((8080, "/health".into(), false))
    );
    assert_eq!(u("https://x"), Ok((443, "/".into(), true)));
    assert_eq!(u("http://x/a?b"), Ok((80, "/a?b".into(), false)));
    assert!(u("ftp://x").is_err());
    assert!(u("http://x:0/").is_err());
    assert!(u("http://x:99999/").is_err());
}
