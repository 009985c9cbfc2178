//! The output width: `COLUMNS` when set, else the terminal's, else 100 (piped). Tables,
//! summaries and `--help` all wrap or cut to it.

use pare_xray::fit::DEFAULT_WIDTH;

/// Columns available on stdout.
pub fn width() -> usize {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&c| c > 0);
    columns
        .or_else(|| terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| w.0 as usize))
        .unwrap_or(DEFAULT_WIDTH)
        .clamp(20, 1000)
}
