//! Command-line parsing (hand-written: the sensor stays small and static).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::SensorError;

pub const USAGE: &str = "usage: pare-sensor --output DIR [--user USER] [--workdir DIR] \
[--no-fanotify] [--no-seccomp] [--home-from-user] [--grace SECS] -- CMD [ARGS...]";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub output: PathBuf,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub fanotify: bool,
    /// Let a seccomp filter pick the stops (default; needs CAP_SYS_ADMIN, else falls back).
    pub seccomp: bool,
    pub grace: Duration,
    /// The image's ENV has no HOME: set it from the user's passwd entry, as `docker run`
    /// does, whatever HOME the sensor itself was started with (root's).
    pub home_from_user: bool,
    pub command: Vec<OsString>,
}

/// Parses the arguments after `argv[0]`.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, SensorError> {
    let mut output = None;
    let mut user = None;
    let mut workdir = None;
    let mut fanotify = true;
    let mut seccomp = true;
    let mut home_from_user = false;
    let mut grace = Duration::from_secs(5);
    let mut command = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let Some(s) = arg.to_str() else {
            command.push(arg);
            command.extend(it);
            break;
        };
        let (name, inline) = match s.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (s.to_string(), None),
        };
        let mut value = |flag: &str| -> Result<String, SensorError> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            it.next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| SensorError::Usage(format!("{flag} needs a value")))
        };
        match name.as_str() {
            "--" => {
                command.extend(it);
                break;
            }
            "--output" | "-o" => output = Some(PathBuf::from(value("--output")?)),
            "--user" | "-u" => user = Some(value("--user")?).filter(|u| !u.is_empty()),
            "--workdir" | "-w" => workdir = Some(value("--workdir")?).filter(|w| !w.is_empty()),
            "--no-fanotify" => fanotify = false,
            "--no-seccomp" => seccomp = false,
            "--home-from-user" => home_from_user = true,
            "--grace" => {
                let v = value("--grace")?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 1e9)
                    .ok_or_else(|| SensorError::Usage(format!("--grace: bad number {v:?}")))?;
                grace = Duration::from_secs_f64(secs);
            }
            "-h" | "--help" => return Err(SensorError::Usage(USAGE.to_string())),
            _ if s.starts_with('-') && command.is_empty() => {
                return Err(SensorError::Usage(format!("unknown option {s:?}\n{USAGE}")));
            }
            _ => {
                command.push(arg);
                command.extend(it);
                break;
            }
        }
    }
    let output =
        output.ok_or_else(|| SensorError::Usage(format!("--output is required\n{USAGE}")))?;
    if command.is_empty() {
        return Err(SensorError::Usage(format!("no command given\n{USAGE}")));
    }
    Ok(Args {
        output,
        user,
        workdir,
        fanotify,
        seccomp,
        grace,
        home_from_user,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Args, SensorError> {
        parse(v.iter().map(OsString::from))
    }

    #[test]
    fn full() {
        let a = p(&[
            "--output",
            "/o",
            "--user=1:2",
            "--workdir",
            "/w",
            "--no-fanotify",
            "--grace",
            "1.5",
            "--",
            "sh",
            "-c",
            "--x",
        ])
        .unwrap();
        assert_eq!(a.output, PathBuf::from("/o"));
        assert_eq!(a.user.as_deref(), Some("1:2"));
        assert_eq!(a.workdir.as_deref(), Some("/w"));
        assert!(!a.fanotify);
        assert_eq!(a.grace, Duration::from_millis(1500));
        assert_eq!(
            a.command,
            vec![OsString::from("sh"), "-c".into(), "--x".into()]
        );
    }

    #[test]
    fn errors() {
        assert!(p(&["--", "sh"]).is_err());
        assert!(p(&["--output", "/o"]).is_err());
        assert!(p(&["--output", "/o", "--bogus", "--", "sh"]).is_err());
        assert!(p(&["--output", "/o", "--grace", "-1", "--", "sh"]).is_err());
        assert!(p(&["--output"]).is_err());
        let a = p(&["--output", "/o", "--user", "", "true", "-x"]).unwrap();
        assert_eq!(a.user, None);
        assert_eq!(a.command.len(), 2);
    }
}
