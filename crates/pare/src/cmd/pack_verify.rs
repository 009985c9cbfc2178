//! `pare pack`'s `--verify-cmd` / `--http-probe` flags.

use std::time::Duration;

use pare_pack::PackReport;

#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// After writing, run the image and GET this PORT[/PATH]; it must answer below 400.
    #[arg(long = "http-probe", value_name = "PORT[/PATH]")]
    pub http_probe: Option<String>,
    /// After writing, run the image with this command instead of its CMD (split on
    /// whitespace, e.g. `/usr/local/bin/app --version`); it must exit 0.
    #[arg(long = "verify-cmd", value_name = "CMD")]
    pub verify_cmd: Option<String>,
    /// Runtime for the check: docker (for docker-daemon: outputs) or embedded (the default
    /// for every other output, as `pare build` verifies).
    #[arg(long, value_name = "docker|embedded")]
    pub runtime: Option<String>,
    /// Seconds the app may take to listen on its port (or the command to finish).
    #[arg(long = "ready-timeout", value_name = "SECS", default_value_t = 30)]
    pub ready_timeout: u64,
}

/// Runs the check: `Some((answered, detail))`, `None` when nothing was asked.
pub fn check(
    args: &CheckArgs,
    output: &str,
    report: &PackReport,
) -> anyhow::Result<Option<(bool, String)>> {
    let check = pare_pack::verify::Check {
        verify_cmd: args.verify_cmd.clone(),
        http_probe: args.http_probe.clone(),
        runtime: args.runtime.clone(),
        timeout: Duration::from_secs(args.ready_timeout.max(1)),
        cancel: crate::signals::cancel(),
    };
    let output = pare_pack::parse_output(output)?;
    Ok(pare_pack::verify::check(&check, &output, report)?.map(|v| (v.ok, v.detail)))
}
