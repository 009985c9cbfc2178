//! `pare xray --tui`: an interactive explorer of an image's layers and files, in the spirit of
//! dive, built to stay fast and small on multi-GB images.
//!
//! Every layer is read once, in parallel, into compact per-path records (no file contents, no
//! hashing); the tree of the selected layer (alone, or merged with the layers below) is built
//! only when that layer is selected, and only expanded directories become screen lines.
//! Names are shown through [`pare_diff::render::printable`], so ANSI escapes in a file name
//! show as text.

#![deny(missing_docs)]

mod app;
mod model;
mod tree;

use std::io::IsTerminal;
use std::time::Duration;

use crossterm::event::{self, Event, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use pare_source::ImageSource;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub use app::{App, MIN_HEIGHT, MIN_WIDTH};
pub use model::{DirInfo, Entry, Image, LayerInfo, Mark, TuiError, Waste};
pub use tree::View;

/// Options of the explorer.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Reader threads (0: one per core).
    pub threads: usize,
    /// Quit right after the first screen is drawn (for measuring the time to first screen).
    pub exit_after_first_draw: bool,
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Restores the terminal when dropped, so an error return leaves it usable too.
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Runs the explorer on a terminal. Refuses (`TuiError::NotATerminal`) when stdin or stdout is
/// not a TTY. The terminal is restored on return, on error and on panic; Ctrl-C quits.
pub fn run(source: &dyn ImageSource, opts: &Options) -> Result<(), TuiError> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(TuiError::NotATerminal);
    }
    let image = Image::load(source, opts.threads)?;
    let mut app = App::new(image);

    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    enable_raw_mode().map_err(TuiError::Terminal)?;
    let _guard = Guard;
    execute!(std::io::stdout(), EnterAlternateScreen).map_err(TuiError::Terminal)?;
    let mut terminal =
        Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(TuiError::Terminal)?;
    terminal.clear().map_err(TuiError::Terminal)?;
    loop {
        terminal.draw(|f| app.draw(f)).map_err(TuiError::Terminal)?;
        if opts.exit_after_first_draw || app.quit {
            break;
        }
        // Poll so a resize redraws promptly.
        if !event::poll(Duration::from_millis(250)).map_err(TuiError::Terminal)? {
            continue;
        }
        match event::read().map_err(TuiError::Terminal)? {
            Event::Key(k) if k.kind != KeyEventKind::Release => app.on_key(k),
            _ => {}
        }
        if app.quit {
            break;
        }
    }
    Ok(())
}
