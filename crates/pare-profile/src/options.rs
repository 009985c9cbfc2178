//! What `pare profile` is asked to do: [`ProfileOptions`] and `--continue-after`.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use pare_image::Platform;
use pare_probe::HttpFlag;

use crate::{ProfileError, RunOverride};

/// When to stop the app after the probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContinueAfter {
    /// As soon as the probes are done (default).
    #[default]
    Probe,
    /// When the app exits by itself, but no longer than this (then it is stopped, and the
    /// profile notes it). `exit` alone waits [`EXIT_LIMIT`]; `exit:SECONDS` sets the limit.
    Exit(Duration),
    /// After this many more seconds.
    Seconds(u64),
    /// On Ctrl-C or SIGUSR1 (drive the app by hand meanwhile).
    Signal,
}

/// How long `--continue-after exit` waits for the app by default: 10 minutes.
pub const EXIT_LIMIT: Duration = Duration::from_secs(600);

fn seconds(s: &str) -> Option<u64> {
    s.strip_suffix('s').unwrap_or(s).parse::<u64>().ok()
}

impl FromStr for ContinueAfter {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "probe" | "probes" => Ok(ContinueAfter::Probe),
            "exit" => Ok(ContinueAfter::Exit(EXIT_LIMIT)),
            "signal" | "enter" => Ok(ContinueAfter::Signal),
            n => match n.strip_prefix("exit:") {
                Some(limit) => seconds(limit)
                    .filter(|&l| l > 0)
                    .map(|l| ContinueAfter::Exit(Duration::from_secs(l))),
                None => seconds(n).map(ContinueAfter::Seconds),
            }
            .ok_or_else(|| ProfileError::ContinueAfter { value: s.into() }),
        }
    }
}

/// What `pare profile` was asked to do.
#[derive(Debug, Clone)]
pub struct ProfileOptions {
    /// The image reference as typed.
    pub image: String,
    /// Where `profile.json`, `seccomp.json` and `apparmor.profile` go.
    pub output: PathBuf,
    /// The runtime the user chose, or `None` to detect.
    pub runtime: Option<pare_runtime::RuntimeKind>,
    /// `--http-probe METHOD:PATH[:PORT]` flags; a probe without a port uses the image's first
    /// exposed TCP port.
    pub http_probes: Vec<HttpFlag>,
    /// `--probe-file`: a file of probe specs, parsed (and rejected when invalid) before the
    /// container starts.
    pub probe_file: Option<PathBuf>,
    /// `--exec` commands (run inside the container).
    pub exec: Vec<String>,
    /// `--host-exec` commands.
    pub host_exec: Vec<String>,
    /// `--continue-after`: when to stop the app once the probes are done.
    pub continue_after: ContinueAfter,
    /// Readiness wait and job run limit.
    pub timeout: Duration,
    /// Let the sensor watch file opens with fanotify as well as ptrace (needs CAP_SYS_ADMIN);
    /// `false` for `--no-fanotify`, tracing with ptrace only.
    pub fanotify: bool,
    /// `--sensor PATH`: the sensor binary to use; `None` searches `$PARE_SENSOR`, the embedded
    /// sensor, then a `pare-sensor` beside the executable.
    pub sensor: Option<PathBuf>,
    /// `--platform`: which manifest of a multi-platform image to open; `None` picks the host's.
    pub platform: Option<Platform>,
    /// Where progress goes (phases, what is awaited, details); the binary's reporter.
    pub progress: pare_progress::Reporter,
    /// After profiling, run the image once more without the sensor and replay the probes, to
    /// mark answers that change between containers (start time, hostname) as volatile.
    pub stability_run: bool,
    /// A service definition's own command, environment, user, working dir and ports over
    /// the image's config (pare-compose).
    pub run_override: Option<RunOverride>,
    /// The image is a job (`--job`): it may exit before any port answers; it runs to the end.
    pub job: bool,
    /// EXPOSEd ports the user declares not to answer (`--expect-closed`): not waited for, and
    /// a refused probe on them is the expected behaviour.
    pub expect_closed: Vec<u16>,
    /// Ready when a line of the app's output matches (`--ready-log REGEX`).
    pub ready_log: Option<String>,
    /// Ready when `GET URL` answers below 400 (`--ready-url`).
    pub ready_url: Option<String>,
    /// Ready when this command, run inside the container, exits 0 (`--ready-cmd`).
    pub ready_cmd: Option<String>,
    /// The program's cancellation token and cleanup registry: temp dirs are registered in
    /// it, and `--continue-after signal` waits on it. The program cancels it on Ctrl-C.
    pub cancel: pare_runtime::Cancel,
}

impl ProfileOptions {
    /// Options for profiling `image` into the directory `output`, with every flag at its
    /// default: runtime detected, default probes, a 60 s timeout, fanotify on, stability run
    /// on, no override.
    pub fn new(image: impl Into<String>, output: impl Into<PathBuf>) -> Self {
        ProfileOptions {
            image: image.into(),
            output: output.into(),
            runtime: None,
            http_probes: Vec::new(),
            probe_file: None,
            exec: Vec::new(),
            host_exec: Vec::new(),
            continue_after: ContinueAfter::Probe,
            timeout: Duration::from_secs(60),
            fanotify: true,
            sensor: None,
            platform: None,
            progress: pare_progress::Reporter::default(),
            stability_run: true,
            run_override: None,
            job: false,
            expect_closed: Vec::new(),
            ready_log: None,
            ready_url: None,
            ready_cmd: None,
            cancel: pare_runtime::Cancel::default(),
        }
    }

    /// A detail (shown with `-v`).
    pub(crate) fn say(&self, msg: &str) {
        pare_progress::Progress::detail(&self.progress, msg);
    }

    /// What the run waits for now (shown live on a terminal).
    pub(crate) fn wait_for(&self, what: &str) {
        pare_progress::Progress::waiting(&self.progress, what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_after_values() {
        assert_eq!(
            "probe".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Probe
        );
        assert_eq!(
            "exit".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Exit(EXIT_LIMIT)
        );
        assert_eq!(
            "exit:90".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Exit(Duration::from_secs(90))
        );
        assert_eq!(
            "Exit:5s".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Exit(Duration::from_secs(5))
        );
        assert!("exit:0".parse::<ContinueAfter>().is_err());
        assert!("exit:soon".parse::<ContinueAfter>().is_err());
        assert_eq!(
            "SIGNAL".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Signal
        );
        assert_eq!(
            "30".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Seconds(30)
        );
        assert_eq!(
            "5s".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Seconds(5)
        );
        assert!("later".parse::<ContinueAfter>().is_err());
    }
}
