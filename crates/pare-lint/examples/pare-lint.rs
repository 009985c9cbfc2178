//! Standalone `pare lint` (same CLI as `pare lint`), used by scripts/bench-lint and the
//! differential test when the full `pare` binary is not needed.

use clap::Parser;

#[derive(Parser)]
#[command(name = "pare-lint")]
struct Cli {
    #[command(flatten)]
    args: pare_lint::cli::Args,
}

fn main() -> std::process::ExitCode {
    match pare_lint::cli::run(Cli::parse().args) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("pare lint: error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
