//! Probe specs from command-line flags and from probe files.
//!
//! A probe file is YAML or JSON: a list of probes, or a map with a `probes:` list.
//!
//! ```yaml
//! probes:
//!   - kind: http            # http | tcp | exec | host-exec | job | redis | postgres | mysql | amqp
//!     port: 8080            # container port; default: the first exposed port
//!     method: POST          # default GET
//!     path: /api/items
//!     headers: {Content-Type: application/json}   # or a list of "Name: value"
//!     body: '{"name":"x"}'
//!     https: false
//!     expect_status: 201
//!   - {kind: tcp, port: 6379}
//!   - {kind: exec, command: "redis-cli ping"}      # or argv: [redis-cli, ping]
//!   - {kind: host-exec, command: "curl -fsS http://{host}:{port:8080}/"}
//!   - {kind: postgres, port: 5432}                 # a handshake: redis, postgres, mysql, amqp
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pare_trace::{ProbeSpec, Protocol};
use serde::Deserialize;

use crate::ProbeError;

/// `--http-probe METHOD:PATH[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpFlag {
    /// The HTTP method (`GET`, `POST`…).
    pub method: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// The container port; `None` takes the default port [`to_spec`](Self::to_spec) is given.
    pub port: Option<u16>,
    /// Speak TLS (the flag began with `https:`).
    pub https: bool,
}

impl HttpFlag {
    /// The spec, with `default_port` when the flag named none.
    pub fn to_spec(&self, default_port: Option<u16>) -> Result<ProbeSpec, ProbeError> {
        let port = self.port.or(default_port).ok_or_else(|| ProbeError::Flag {
            flag: format!("{}:{}", self.method, self.path),
            message: "no port given and the image exposes none".into(),
        })?;
        Ok(ProbeSpec::Http {
            port,
            method: self.method.clone(),
            path: self.path.clone(),
            headers: Vec::new(),
            body: None,
            https: self.https,
            expect_status: None,
        })
    }
}

/// Parses `METHOD:PATH[:PORT]` (`GET:/health`, `POST:/api:8080`); a bare `/PATH` means GET.
/// `https:` may prefix the method for TLS (`https:GET:/:8443`).
pub fn parse_http_flag(flag: &str) -> Result<HttpFlag, ProbeError> {
    let bad = |message: &str| ProbeError::Flag {
        flag: flag.into(),
        message: message.into(),
    };
    let (https, rest) = match flag.strip_prefix("https:") {
        Some(r) => (true, r),
        None => (false, flag.strip_prefix("http:").unwrap_or(flag)),
    };
    let (method, rest) = if rest.starts_with('/') {
        ("GET".to_string(), rest)
    } else {
        let (m, r) = rest
            .split_once(':')
            .ok_or_else(|| bad("expected METHOD:PATH[:PORT]"))?;
        if m.is_empty() || !m.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(bad("the method must be letters, e.g. GET"));
        }
        (m.to_ascii_uppercase(), r)
    };
    let (path, port) = match rest.rsplit_once(':') {
        Some((p, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => (
            p,
            Some(n.parse::<u16>().map_err(|_| bad("port out of range"))?),
        ),
        _ => (rest, None),
    };
    if !path.starts_with('/') {
        return Err(bad("the path must start with /"));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("the path must not contain spaces"));
    }
    Ok(HttpFlag {
        method,
        path: path.into(),
        port,
        https,
    })
}

/// Splits a command like a shell would for simple cases: words separated by blanks, with
/// single and double quotes and backslash escapes. Commands using shell syntax (pipes,
/// redirections, variables, `;`, `&&`) run as `sh -c COMMAND` instead.
pub fn exec_argv(command: &str) -> Vec<String> {
    if command.contains(['|', '&', ';', '<', '>', '$', '`', '*', '(', ')']) {
        return vec!["sh".into(), "-c".into(), command.into()];
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FileRoot {
    List(Vec<FileProbe>),
    Map { probes: Vec<FileProbe> },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Headers {
    Map(BTreeMap<String, String>),
    Pairs(Vec<(String, String)>),
    Lines(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProbe {
    kind: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    headers: Option<Headers>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    https: bool,
    #[serde(default)]
    expect_status: Option<u16>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    argv: Option<Vec<String>>,
}

/// Parses the text of a probe file (YAML or JSON); `path` is for error messages. HTTP and TCP
/// probes must name their port (see [`parse_probes`] for a default).
pub fn parse_probe_file(text: &str, path: &Path) -> Result<Vec<ProbeSpec>, ProbeError> {
    parse_probes(text, path, None)
}

/// Like [`parse_probe_file`], filling in `default_port` for HTTP and TCP probes without one.
pub fn parse_probes(
    text: &str,
    path: &Path,
    default_port: Option<u16>,
) -> Result<Vec<ProbeSpec>, ProbeError> {
    let spec_err = |i: usize, message: String| ProbeError::Spec {
        path: PathBuf::from(path),
        message: format!("probe {}: {message}", i + 1),
    };
    let root: FileRoot = serde_yaml::from_str(text).map_err(|source| ProbeError::NotProbeList {
        path: path.into(),
        source,
    })?;
    let list = match root {
        FileRoot::List(l) | FileRoot::Map { probes: l } => l,
    };
    let mut out = Vec::new();
    for (i, p) in list.into_iter().enumerate() {
        let kind = p.kind.to_ascii_lowercase().replace('_', "-");
        let port = || {
            p.port
                .or(default_port)
                .ok_or_else(|| spec_err(i, "needs a port (the image exposes none)".into()))
        };
        let spec = match kind.as_str() {
            "http" | "https" => {
                let path_s = p.path.clone().unwrap_or_else(|| "/".into());
                if !path_s.starts_with('/') {
                    return Err(spec_err(i, format!("path {path_s:?} must start with /")));
                }
                let headers = match p.headers {
                    None => Vec::new(),
                    Some(Headers::Map(m)) => m.into_iter().collect(),
                    Some(Headers::Pairs(v)) => v,
                    Some(Headers::Lines(v)) => v
                        .into_iter()
                        .map(|l| {
                            l.split_once(':')
                                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                                .ok_or_else(|| {
                                    spec_err(i, format!("header {l:?} is not `Name: value`"))
                                })
                        })
                        .collect::<Result<_, _>>()?,
                };
                ProbeSpec::Http {
                    port: port()?,
                    method: p
                        .method
                        .clone()
                        .unwrap_or_else(|| "GET".into())
                        .to_ascii_uppercase(),
                    path: path_s,
                    headers,
                    body: p.body.clone(),
                    https: p.https || kind == "https",
                    expect_status: p.expect_status,
                }
            }
            "tcp" => ProbeSpec::Tcp { port: port()? },
            "exec" => {
                let argv = match (p.argv, p.command) {
                    (Some(a), _) if !a.is_empty() => a,
                    (_, Some(c)) if !c.trim().is_empty() => exec_argv(&c),
                    _ => return Err(spec_err(i, "exec needs `command` or `argv`".into())),
                };
                ProbeSpec::Exec { argv }
            }
            "host-exec" | "hostexec" => match p.command {
                Some(c) if !c.trim().is_empty() => ProbeSpec::HostExec { command: c },
                _ => return Err(spec_err(i, "host-exec needs `command`".into())),
            },
            "job" => ProbeSpec::Job,
            "redis" | "postgres" | "postgresql" | "mysql" | "mariadb" | "amqp" => {
                let protocol = match kind.as_str() {
                    "redis" => Protocol::Redis,
                    "postgres" | "postgresql" => Protocol::Postgres,
                    "mysql" | "mariadb" => Protocol::Mysql,
                    _ => Protocol::Amqp,
                };
                ProbeSpec::Protocol {
                    port: p
                        .port
                        .or(default_port)
                        .or_else(|| protocol.default_port())
                        .ok_or_else(|| spec_err(i, "needs a port".into()))?,
                    protocol,
                }
            }
            other => {
                return Err(spec_err(
                    i,
                    format!(
                        "unknown kind {other:?} (http, tcp, exec, host-exec, job, redis, postgres, mysql, amqp)"
                    ),
                ));
            }
        };
        out.push(spec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_flags() {
        assert_eq!(
            parse_http_flag("GET:/health").unwrap(),
            HttpFlag {
                method: "GET".into(),
                path: "/health".into(),
                port: None,
                https: false
            }
        );
        assert_eq!(
            parse_http_flag("post:/api/x:8080").unwrap().port,
            Some(8080)
        );
        assert_eq!(parse_http_flag("post:/api/x:8080").unwrap().method, "POST");
        assert_eq!(parse_http_flag("/a").unwrap().method, "GET");
        assert!(parse_http_flag("https:GET:/:8443").unwrap().https);
        assert!(parse_http_flag("GET:health").is_err());
        assert!(parse_http_flag("GET:/a:99999").is_err());
        assert!(parse_http_flag("G T:/a").is_err());
        assert!(parse_http_flag("nothing").is_err());
        assert!(parse_http_flag("GET:/a").unwrap().to_spec(None).is_err());
    }

    #[test]
    fn argv_splitting() {
        assert_eq!(exec_argv("redis-cli  ping"), vec!["redis-cli", "ping"]);
        assert_eq!(
            exec_argv(r#"echo "a b" 'c d' e\ f"#),
            vec!["echo", "a b", "c d", "e f"]
        );
        assert_eq!(
            exec_argv("cat /etc/passwd | wc -l"),
            vec!["sh", "-c", "cat /etc/passwd | wc -l"]
        );
    }

    #[test]
    fn protocol_kinds() {
        let yaml =
            "- {kind: postgres}\n- {kind: MariaDB, port: 3307}\n- {kind: amqp}\n- {kind: redis}\n";
        let p = parse_probes(yaml, Path::new("p.yaml"), None).unwrap();
        assert_eq!(
            p,
            vec![
                ProbeSpec::Protocol {
                    port: 5432,
                    protocol: Protocol::Postgres
                },
                ProbeSpec::Protocol {
                    port: 3307,
                    protocol: Protocol::Mysql
                },
                ProbeSpec::Protocol {
                    port: 5672,
                    protocol: Protocol::Amqp
                },
                ProbeSpec::Protocol {
                    port: 6379,
                    protocol: Protocol::Redis
                },
            ]
        );
        // The image's first exposed port wins over the protocol's usual one.
        let p = parse_probes("- {kind: redis}", Path::new("p.yaml"), Some(7000)).unwrap();
        assert_eq!(p[0].port(), Some(7000));
    }

    #[test]
    fn yaml_and_json_files() {
        let yaml = r#"
probes:
  - kind: http
    method: post
    path: /api
    headers: {Content-Type: application/json}
    body: '{"a":1}'
    expect_status: 201
  - {kind: tcp, port: 6379}
  - {kind: exec, command: "redis-cli ping"}
  - {kind: host_exec, command: "curl http://{host}:{port:8080}/"}
  - kind: job
"#;
        let p = parse_probes(yaml, Path::new("p.yaml"), Some(8080)).unwrap();
        assert_eq!(p.len(), 5);
        match &p[0] {
            ProbeSpec::Http {
                port,
                method,
                headers,
                expect_status,
                ..
            } => {
                assert_eq!(
                    (*port, method.as_str(), *expect_status),
                    (8080, "POST", Some(201))
                );
                assert_eq!(
                    headers,
                    &vec![("Content-Type".to_string(), "application/json".to_string())]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            p[2],
            ProbeSpec::Exec {
                argv: vec!["redis-cli".into(), "ping".into()]
            }
        );
        assert_eq!(p[4], ProbeSpec::Job);
        let json = r#"[{"kind":"http","port":80,"path":"/x","headers":["Accept: text/html"]}]"#;
        let p = parse_probes(json, Path::new("p.json"), None).unwrap();
        assert!(
            matches!(&p[0], ProbeSpec::Http { port: 80, headers, .. } if headers[0].1 == "text/html")
        );
    }

    #[test]
    fn file_errors_name_file_and_probe() {
        let e = parse_probes("- {kind: http, path: /}", Path::new("f.yaml"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.yaml") && e.contains("probe 1") && e.contains("port"),
            "{e}"
        );
        let e = parse_probes("- {kind: smtp}", Path::new("f.yaml"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown kind"), "{e}");
        let e = parse_probes("- {kind: http, port: 1, pth: /}", Path::new("f.yaml"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.yaml"), "{e}");
        assert!(parse_probes("{{{", Path::new("f.yaml"), None).is_err());
    }
}
