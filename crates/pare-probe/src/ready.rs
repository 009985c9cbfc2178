//! Readiness from what the app does: a port is ready when its protocol answers
//! ([`classify_port`](crate::classify_port): an HTTP response, a TLS server, a banner or any
//! other answer), not when a socket merely listens; or when a sign the user gave shows up
//! (`--ready-log`, `--ready-url`, `--ready-cmd`).
//!
//! While the app is busy starting (the trace still shows new files, syscalls, execs or
//! `listen()` calls), the wait goes on past the limit, up to five times it. Once the app is
//! idle, the ports that listen answer, and no new `listen()` came for a quiet period, EXPOSEd
//! ports nothing listens on are given up as unused instead of waited for until the limit.
//!
//! A replay (verification, the untraced stability run) knows what each port answered before
//! ([`ReadyPlan::expect`]): a port that answered HTTP, TLS or a handshake is ready only when it
//! answers that again. A connection it accepts in silence means "still starting" and is tried
//! again with short attempts, never taken for "listening".

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use pare_runtime::Container;

use crate::ports::classify_port_within;
use crate::{ExitInfo, PortKind, ProbeError, ProbeOptions, Readiness, classify_port, port_alive};

/// What the trace shows of the app so far: `novelty` grows whenever it does something new (a
/// new path, syscall name or exec), `listens` counts its `listen()` calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    /// Grows whenever the app does something new.
    pub novelty: u64,
    /// How many `listen()` calls the app made.
    pub listens: u64,
}

/// A sign of readiness given by the user instead of the ports.
#[derive(Debug, Clone)]
pub enum ReadySign {
    /// A line of the app's stdout or stderr matches.
    Log(regex::Regex),
    /// An HTTP GET of container port `port` answers with a status below 400.
    Url {
        /// The container port.
        port: u16,
        /// Path and query, starting with `/`.
        path: String,
        /// Speak TLS.
        https: bool,
    },
    /// A command run inside the container exits 0.
    Cmd(Vec<String>),
}

impl ReadySign {
    /// `--ready-url`: `http[s]://HOST[:PORT]/PATH`; the host is ignored (the port is the
    /// container's), the port defaults to 80 or 443.
    pub fn parse_url(url: &str) -> Result<ReadySign, String> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("{url:?}: expected http://HOST:PORT/PATH"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let port = match authority.rsplit_once(':') {
            Some((_, p)) if !p.ends_with(']') => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("{url:?}: bad port {p:?}"))?,
            _ if https => 443,
            _ => 80,
        };
        Ok(ReadySign::Url { port, path, https })
    }

    fn describe(&self) -> String {
        match self {
            ReadySign::Log(r) => format!("a log line matched /{}/", r.as_str()),
            ReadySign::Url { port, path, https } => format!(
                "GET {}:{port}{path} answered",
                if *https { "https" } else { "http" }
            ),
            ReadySign::Cmd(argv) => format!("`{}` exited 0", argv.join(" ")),
        }
    }

    /// Whether the sign shows now.
    pub fn shows(&self, c: &dyn Container, opts: &ProbeOptions) -> bool {
        match self {
            ReadySign::Log(re) => c.logs().is_ok_and(|(out, err)| {
                [out, err]
                    .iter()
                    .any(|b| String::from_utf8_lossy(b).lines().any(|l| re.is_match(l)))
            }),
            ReadySign::Url { port, path, https } => {
                let spec = crate::crawl::get_spec(*port, path, *https);
                let (o, _) = crate::run::http_probe(c, &spec, opts);
                o.http_status.is_some_and(|s| s < 400)
            }
            ReadySign::Cmd(argv) => c.exec(argv, opts.timeout).is_ok_and(|o| o.exit_code == 0),
        }
    }
}

/// What to wait for.
pub struct ReadyPlan<'a> {
    /// Ports whose protocol must answer.
    pub ports: Vec<u16>,
    /// Ports that may be given up as unused once the app is idle (the EXPOSEd ones nobody
    /// named in a probe).
    pub droppable: BTreeSet<u16>,
    /// What each port answered in the run being replayed. A port that spoke a protocol then
    /// ([`PortKind::is_protocol`]) is ready only when it answers that protocol again: until
    /// then, an accepted connection that stays silent means the app is still starting.
    pub expect: BTreeMap<u16, PortKind>,
    /// The user's own sign of readiness, which then decides instead of the ports.
    pub sign: Option<ReadySign>,
    /// The limit while nothing happens (busy apps get up to five times it).
    pub timeout: Duration,
    /// The trace's view of the app, when there is a trace.
    pub activity: Option<&'a dyn Fn() -> Option<Activity>>,
    /// Timeouts of the requests and handshakes that ask the ports.
    pub probe: ProbeOptions,
}

/// How waiting ended, and what was learnt on the way.
#[derive(Debug, Clone)]
pub struct ReadyReport {
    /// How waiting ended.
    pub outcome: Readiness,
    /// Ports that answered (or, for `Silent`, accepted while the app sat idle), by kind.
    pub ports: BTreeMap<u16, PortKind>,
    /// Droppable ports nothing listened on once the app was idle.
    pub unused: Vec<u16>,
    /// How readiness was decided, in words.
    pub how: String,
    /// How long the wait took.
    pub elapsed: Duration,
}

/// How long a silent port (accepts, never answers) must stay so while the app is idle before
/// it counts as ready.
const SILENT_IDLE: Duration = Duration::from_secs(5);
/// Activity this recent means the app is busy.
const BUSY: Duration = Duration::from_secs(2);
/// The shortest quiet period (no new activity, no new `listen()`) after which EXPOSEd ports
/// nothing listens on are given up; it grows with how long the first port took to answer (up
/// to 5 s). The sensor publishes its activity every 100 ms and the wait looks at least every
/// [`MAX_PAUSE`], so this spans at least two of each. It is what an unused EXPOSE costs a fast
/// starter (issue 8: within 1.5× of the same image without it; a Python server answers in
/// 0.1 s and builds in 1.2 s).
const MIN_QUIET: Duration = Duration::from_millis(250);
/// The longest pause between two looks. A look costs a connect to the container's own address
/// and a state query: cheap beside the wait it cuts, which is half a pause on average after the
/// app got ready (twice per build: the traced run and the slim one).
const MAX_PAUSE: Duration = Duration::from_millis(100);
/// How long the first attempt on a port waits for an answer; each silent attempt doubles it
/// (up to the probe timeout), so a late answer is seen soon and a slow one still in time.
const FIRST_ATTEMPT: Duration = Duration::from_secs(1);

/// Waits until the plan is met, the app exits, or time runs out. See the module docs.
pub fn wait_until_ready(
    c: &dyn Container,
    plan: &ReadyPlan<'_>,
) -> Result<ReadyReport, ProbeError> {
    let start = Instant::now();
    let short = ProbeOptions {
        timeout: plan.probe.timeout.min(Duration::from_secs(5)),
        ..plan.probe.clone()
    };
    let mut answered: BTreeMap<u16, PortKind> = BTreeMap::new();
    let mut silent: BTreeSet<u16> = BTreeSet::new();
    let mut listening: BTreeSet<u16> = BTreeSet::new();
    // Ports that accepted but did not (yet) answer the protocol they must, with what they did.
    let mut starting: BTreeMap<u16, PortKind> = BTreeMap::new();
    // How many attempts a port accepted without answering (it sets the next attempt's wait).
    let mut tries: BTreeMap<u16, u32> = BTreeMap::new();
    let mut held_back: BTreeMap<u16, u32> = BTreeMap::new();
    let mut last_busy = start;
    let mut last_listen = start;
    let mut first_answer: Option<Duration> = None;
    let mut prev: Option<Activity> = None;
    // When the trace last showed something new (busy apps get more time).
    let mut last_change: Option<Instant> = None;
    let mut pause = Duration::from_millis(20);
    let report = |outcome, answered: &BTreeMap<u16, PortKind>, unused: Vec<u16>, how: String| {
        Ok(ReadyReport {
            outcome,
            ports: answered.clone(),
            unused,
            how,
            elapsed: start.elapsed(),
        })
    };
    loop {
        let now = Instant::now();
        if let Some(sign) = &plan.sign {
            if sign.shows(c, &short) {
                // The user's sign decides; ports that do not listen now are unused.
                let mut unused = Vec::new();
                for &p in &plan.ports {
                    match classify_port(c, p, &short) {
                        PortKind::Closed if plan.droppable.contains(&p) => unused.push(p),
                        PortKind::Closed => {}
                        k => {
                            answered.insert(p, k);
                        }
                    }
                }
                let how = format!(
                    "{} after {:.1}s",
                    sign.describe(),
                    start.elapsed().as_secs_f64()
                );
                return report(Readiness::Ready, &answered, unused, how);
            }
        } else {
            for &p in &plan.ports {
                if answered.contains_key(&p) {
                    continue;
                }
                let alive = c
                    .endpoint(p)
                    .is_some_and(|a| port_alive(c, p, a, Duration::from_secs(1)));
                if alive && listening.insert(p) {
                    last_listen = now;
                }
                if !alive {
                    silent.remove(&p);
                    continue;
                }
                let n = tries.get(&p).copied().unwrap_or(0);
                let attempt = FIRST_ATTEMPT.saturating_mul(1 << n.min(8));
                let wants = plan.expect.get(&p).copied().filter(|k| k.is_protocol());
                match classify_port_within(c, p, &short, attempt) {
                    PortKind::Closed => {}
                    k if wants.is_some_and(|w| w != k) => {
                        // Accepted, but not the answer the replayed run got: still starting.
                        starting.insert(p, k);
                        tries.insert(p, n + 1);
                    }
                    PortKind::Silent => {
                        silent.insert(p);
                        tries.insert(p, n + 1);
                    }
                    k => {
                        silent.remove(&p);
                        if starting.remove(&p).is_some() {
                            held_back.insert(p, n);
                        }
                        answered.insert(p, k);
                        first_answer.get_or_insert(start.elapsed());
                        last_busy = Instant::now();
                    }
                }
            }
            if answered.len() == plan.ports.len() {
                let how = if plan.ports.is_empty() {
                    "no ports to wait for".to_string()
                } else {
                    format!(
                        "{} after {:.1}s{}",
                        describe_answered(&answered),
                        start.elapsed().as_secs_f64(),
                        describe_held_back(&held_back, &answered)
                    )
                };
                return report(Readiness::Ready, &answered, Vec::new(), how);
            }
        }
        if let Some(exit) = c.wait(Duration::ZERO)? {
            let how = format!(
                "the app {} after {:.1}s, before {}",
                describe_exit(&exit),
                start.elapsed().as_secs_f64(),
                match &plan.sign {
                    Some(s) => format!("readiness ({}) showed", s.describe()),
                    None => format!(
                        "port {} answered",
                        crate::port_list(&pending(plan, &answered))
                    ),
                }
            );
            return report(Readiness::Exited(exit), &answered, Vec::new(), how);
        }
        let now = Instant::now();
        if let Some(a) = plan.activity.and_then(|f| f()) {
            if prev.is_some_and(|p| p != a) {
                last_busy = now;
                last_change = Some(now);
            }
            if prev.is_some_and(|p| p.listens != a.listens) {
                last_listen = now;
            }
            prev = Some(a);
        }
        let idle = now.duration_since(last_busy);
        if plan.sign.is_none() {
            // Silent ports count once the app has sat idle long enough.
            let silent_ok = idle >= SILENT_IDLE;
            if let Some(first) = first_answer.or(silent_ok.then_some(Duration::ZERO)) {
                let quiet = first.clamp(MIN_QUIET, Duration::from_secs(5));
                let rest = pending(plan, &answered);
                let quiet_enough = idle >= quiet && now.duration_since(last_listen) >= quiet;
                let unused: Vec<u16> = rest
                    .iter()
                    .copied()
                    .filter(|p| !listening.contains(p) && plan.droppable.contains(p))
                    .collect();
                let silent_left: Vec<u16> = rest
                    .iter()
                    .copied()
                    .filter(|p| silent.contains(p))
                    .collect();
                let settled = rest
                    .iter()
                    .all(|p| unused.contains(p) || (silent_ok && silent.contains(p)));
                if quiet_enough && settled && (!answered.is_empty() || !silent_left.is_empty()) {
                    for p in &silent_left {
                        answered.insert(*p, PortKind::Silent);
                    }
                    let mut how = format!(
                        "{} after {:.1}s",
                        describe_answered(&answered),
                        start.elapsed().as_secs_f64()
                    );
                    if !silent_left.is_empty() {
                        how.push_str(&format!(
                            "; port {} accepts connections but never answered while the app sat idle {:.1}s",
                            crate::port_list(&silent_left),
                            idle.as_secs_f64()
                        ));
                    }
                    if !unused.is_empty() {
                        how.push_str(&format!(
                            "; stopped waiting for {} (nothing listens; the app was idle and made no new listen() for {}s)",
                            unused
                                .iter()
                                .map(|p| format!("{p}/tcp"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            // 0.25, 0.4, 5: as many decimals as the figure has.
                            format!("{:.2}", quiet.as_secs_f64())
                                .trim_end_matches('0')
                                .trim_end_matches('.')
                        ));
                    }
                    return report(Readiness::Ready, &answered, unused, how);
                }
            }
        }
        let waited = now.duration_since(start);
        let busy = last_change.is_some_and(|t| now.duration_since(t) < BUSY);
        if (waited >= plan.timeout && !busy) || waited >= plan.timeout * 5 {
            let waiting_for = pending(plan, &answered);
            let how = match &plan.sign {
                Some(s) => format!(
                    "readiness ({}) did not show within {:.0}s",
                    s.describe(),
                    waited.as_secs_f64()
                ),
                None => format!(
                    "port {} did not answer within {:.0}s{}{}",
                    crate::port_list(&waiting_for),
                    waited.as_secs_f64(),
                    if silent.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (port {} accepted connections but said nothing)",
                            crate::port_list(&silent.iter().copied().collect::<Vec<_>>())
                        )
                    },
                    starting
                        .iter()
                        .map(|(p, k)| format!(
                            " (port {p} accepted connections but never answered {}: {})",
                            plan.expect.get(p).map_or("its protocol", |w| w.name()),
                            match k {
                                PortKind::Silent => "it said nothing",
                                _ => "it answered something else",
                            }
                        ))
                        .collect::<String>()
                ),
            };
            return report(
                Readiness::TimedOut { waiting_for },
                &answered,
                Vec::new(),
                how,
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 3 / 2).min(MAX_PAUSE);
    }
}

fn pending(plan: &ReadyPlan<'_>, answered: &BTreeMap<u16, PortKind>) -> Vec<u16> {
    plan.ports
        .iter()
        .copied()
        .filter(|p| !answered.contains_key(p))
        .collect()
}

/// `port 80, 8080 answered (80 http, 8080 tcp)`.
fn describe_answered(answered: &BTreeMap<u16, PortKind>) -> String {
    let ports: Vec<u16> = answered.keys().copied().collect();
    let kinds: Vec<String> = answered
        .iter()
        .map(|(p, k)| format!("{p} {}", k.name()))
        .collect();
    format!(
        "port {} answered ({})",
        crate::port_list(&ports),
        kinds.join(", ")
    )
}

/// `; port 8080 accepted 3 connections before it answered http (still starting)`, for the
/// ports a replay held back that way; empty otherwise.
fn describe_held_back(
    held_back: &BTreeMap<u16, u32>,
    answered: &BTreeMap<u16, PortKind>,
) -> String {
    held_back
        .iter()
        .map(|(p, n)| {
            format!(
                "; port {p} accepted {n} connection{} before it answered {} (still starting)",
                if *n == 1 { "" } else { "s" },
                answered.get(p).map_or("", |k| k.name()),
            )
        })
        .collect()
}

/// `exited with code 1` / `was killed by SIGKILL`.
pub fn describe_exit(e: &ExitInfo) -> String {
    match &e.signal {
        Some(sig) => format!("was killed by {sig}"),
        None => format!("exited with code {}", e.code),
    }
}
