//! The explorer's state, keys and drawing, independent of the real terminal (tests drive it
//! with ratatui's `TestBackend`).

use std::collections::HashSet;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use pare_diff::render::printable;
use pare_layerfs::Kind;
use pare_xray::render::human_bytes;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::model::{Image, Mark, View, Waste};
use crate::tree::ROOT;

mod draw;
mod rows;
#[cfg(test)]
mod tests;

use rows::RowCache;

/// Narrowest terminal, in columns, the explorer draws in.
pub const MIN_WIDTH: u16 = 60;
/// Shortest terminal, in rows, the explorer draws in; smaller terminals get a "too small" notice.
pub const MIN_HEIGHT: u16 = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Focus {
    Layers,
    Tree,
}

/// The explorer's state: the image, the selected layer and view mode, the tree's expanded
/// directories, cursor, filters and search. [`App::on_key`] changes it, [`App::draw`] renders it.
pub struct App {
    image: Image,
    layer: usize,
    aggregated: bool,
    focus: Focus,
    view: View,
    /// Expanded directories by path, kept while the selected layer changes.
    expanded: HashSet<Box<str>>,
    /// The same directories as nodes of the current view.
    open: HashSet<u32>,
    /// Changes whenever the view or [`App::open`] does (what the rows are built from).
    layout: u64,
    /// The tree pane's lines, kept while what they show is unchanged.
    rows: RowCache,
    cursor: usize,
    scroll: usize,
    /// Marks shown (bits of [`Mark::bit`]).
    show: u8,
    search: Option<String>,
    typing: bool,
    wasted: Option<Vec<Waste>>,
    help: bool,
    /// Set once the user asked to quit (`Ctrl-C` anywhere, `q` or `Esc` in the main view, where
    /// `Esc` first clears an active search); the event loop then stops.
    pub quit: bool,
}

fn mark_style(m: Mark) -> Style {
    match m {
        Mark::Added => Style::default().fg(Color::Green),
        Mark::Modified => Style::default().fg(Color::Yellow),
        Mark::Removed => Style::default().fg(Color::Red),
        Mark::Unchanged => Style::default(),
    }
}

fn mark_sign(m: Mark) -> char {
    match m {
        Mark::Added => '+',
        Mark::Modified => '~',
        Mark::Removed => '-',
        Mark::Unchanged => ' ',
    }
}

/// Scrolls so the cursor is among the `h` lines shown.
fn follow(cursor: usize, scroll: &mut usize, h: usize) {
    if cursor < *scroll {
        *scroll = cursor;
    } else if cursor >= *scroll + h {
        *scroll = cursor + 1 - h;
    }
}

const HELP: &[(&str, &str)] = &[
    ("Tab", "switch between layers and files"),
    ("↑ ↓ j k PgUp PgDn Home End", "move"),
    ("Enter Space → l", "expand / collapse a directory"),
    ("← h", "collapse, or go to the parent"),
    ("a", "this layer only / all layers up to it"),
    ("1 2 3 4", "show added / modified / removed / unchanged"),
    ("w", "wasted files (copies later layers replaced)"),
    ("/", "search paths (Enter keeps it, Esc clears)"),
    ("e / c", "expand all / collapse all"),
    ("?", "this help"),
    ("q Esc Ctrl-C", "quit"),
];

impl App {
    /// Starts on the base layer (layer 0) with the root directory expanded and every mark shown.
    pub fn new(image: Image) -> App {
        let view = image.view(0, true);
        let mut expanded = HashSet::new();
        expanded.insert(Box::<str>::from(""));
        App {
            image,
            layer: 0,
            aggregated: true,
            focus: Focus::Layers,
            view,
            expanded,
            open: HashSet::from([ROOT]),
            layout: 0,
            rows: RowCache::default(),
            cursor: 0,
            scroll: 0,
            show: 0b1111,
            search: None,
            typing: false,
            wasted: None,
            help: false,
            quit: false,
        }
    }

    fn select_layer(&mut self, l: usize) {
        let l = l.min(self.image.layers.len().saturating_sub(1));
        if l != self.layer {
            self.layer = l;
            self.reload();
        }
    }

    fn reload(&mut self) {
        self.view = self.image.view(self.layer, self.aggregated);
        self.open = self
            .expanded
            .iter()
            .filter_map(|p| self.view.find(p))
            .collect();
        self.layout += 1;
        self.cursor = 0;
        self.scroll = 0;
    }

    /// Expands or collapses the directory `id`.
    fn set_open(&mut self, id: u32, open: bool) {
        let path: Box<str> = self.view.path(id).into();
        let changed = if open {
            self.expanded.insert(path);
            self.open.insert(id)
        } else {
            self.expanded.remove(&path);
            self.open.remove(&id)
        };
        if changed {
            self.layout += 1;
        }
    }

    /// Handles one key.
    pub fn on_key(&mut self, k: KeyEvent) {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c')) {
            self.quit = true;
            return;
        }
        if self.typing {
            match k.code {
                KeyCode::Enter => self.typing = false,
                KeyCode::Esc => {
                    self.typing = false;
                    self.search = None;
                }
                KeyCode::Backspace => {
                    if let Some(s) = &mut self.search {
                        s.pop();
                    }
                }
                KeyCode::Char(c) => self.search.get_or_insert_with(String::new).push(c),
                _ => {}
            }
            self.cursor = 0;
            self.scroll = 0;
            return;
        }
        if self.help {
            self.help = false;
            return;
        }
        if self.wasted.is_some() {
            match k.code {
                KeyCode::Char('w') | KeyCode::Esc | KeyCode::Char('q') => self.wasted = None,
                KeyCode::Down | KeyCode::Char('j') => self.cursor += 1,
                KeyCode::Up | KeyCode::Char('k') => self.cursor = self.cursor.saturating_sub(1),
                KeyCode::PageDown => self.cursor += 10,
                KeyCode::PageUp => self.cursor = self.cursor.saturating_sub(10),
                _ => {}
            }
            let n = self.wasted.as_ref().map_or(0, Vec::len);
            self.cursor = self.cursor.min(n.saturating_sub(1));
            return;
        }
        match k.code {
            KeyCode::Char('q') | KeyCode::Esc => {
                if self.search.is_some() && k.code == KeyCode::Esc {
                    self.search = None;
                } else {
                    self.quit = true;
                }
            }
            KeyCode::Char('?') => self.help = true,
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Focus::Layers => Focus::Tree,
                    Focus::Tree => Focus::Layers,
                }
            }
            KeyCode::Char('a') => {
                self.aggregated = !self.aggregated;
                self.reload();
            }
            KeyCode::Char(c @ '1'..='4') => {
                let bit = 1u8 << (c as u8 - b'1');
                self.show ^= bit;
                if self.show == 0 {
                    self.show = bit;
                }
                self.cursor = 0;
                self.scroll = 0;
            }
            KeyCode::Char('/') => {
                self.typing = true;
                self.search = Some(String::new());
                self.focus = Focus::Tree;
            }
            KeyCode::Char('w') => {
                self.wasted = Some(self.image.wasted());
                self.cursor = 0;
                self.scroll = 0;
            }
            KeyCode::Char('e') => {
                let all: Vec<u32> = self.view.parents().collect();
                for id in all {
                    self.set_open(id, true);
                }
            }
            KeyCode::Char('c') => {
                self.expanded.clear();
                self.expanded.insert("".into());
                self.open = HashSet::from([ROOT]);
                self.layout += 1;
                self.cursor = 0;
                self.scroll = 0;
            }
            _ => match self.focus {
                Focus::Layers => self.layer_key(k.code),
                Focus::Tree => self.tree_key(k.code),
            },
        }
    }

    fn layer_key(&mut self, code: KeyCode) {
        let last = self.image.layers.len().saturating_sub(1);
        match code {
            KeyCode::Down | KeyCode::Char('j') => self.select_layer(self.layer + 1),
            KeyCode::Up | KeyCode::Char('k') => self.select_layer(self.layer.saturating_sub(1)),
            KeyCode::Home => self.select_layer(0),
            KeyCode::End => self.select_layer(last),
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => self.focus = Focus::Tree,
            _ => {}
        }
    }

    fn tree_key(&mut self, code: KeyCode) {
        let cursor = self.cursor;
        let rows = self.rows();
        let (n, row) = (rows.len(), rows.get(cursor).copied());
        match code {
            KeyCode::Down | KeyCode::Char('j') => self.cursor += 1,
            KeyCode::Up | KeyCode::Char('k') => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::PageDown => self.cursor += 20,
            KeyCode::PageUp => self.cursor = self.cursor.saturating_sub(20),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = n.saturating_sub(1),
            KeyCode::Enter | KeyCode::Char(' ') | KeyCode::Right | KeyCode::Char('l') => {
                if let Some(r) = row.filter(|r| r.dir) {
                    let open = self.open.contains(&r.id) && code != KeyCode::Right;
                    self.set_open(r.id, !open);
                }
            }
            KeyCode::Left | KeyCode::Char('h') => {
                if let Some(r) = row {
                    if r.dir && self.open.contains(&r.id) {
                        self.set_open(r.id, false);
                    } else {
                        let par = self.view.parent(r.id).unwrap_or(ROOT);
                        if let Some(i) = self.rows().iter().position(|x| x.id == par) {
                            self.cursor = i;
                        } else {
                            self.focus = Focus::Layers;
                        }
                    }
                }
            }
            _ => {}
        }
        self.cursor = self.cursor.min(n.saturating_sub(1));
    }
}
