//! The row cache: rows are built again only when what they show changes, and are then the
//! rows a fresh build gives.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use pare_test_support::layer::{LayerBuilder, MemSource};
use proptest::prelude::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::App;
use crate::model::Image;

fn app() -> App {
    let base = LayerBuilder::new()
        .dir("bin")
        .file("bin/sh", b"sh")
        .dir("etc/ssl")
        .file("etc/hosts", b"127.0.0.1 localhost\n")
        .file("etc/ssl/cert.pem", b"pem")
        .dir("usr/lib/x")
        .file("usr/lib/libbig.so", b"big")
        .file("usr/lib/libold.so", b"old")
        .file("usr/lib/x/deep", b"deep")
        .finish();
    let app = LayerBuilder::new()
        .dir("app")
        .file("app/server", b"server")
        .file("etc/hosts", b"127.0.0.1 localhost app\n")
        .whiteout("usr/lib/libold.so")
        .finish();
    let src = MemSource::with_history(vec![base, app], &["ADD rootfs.tar /", "COPY app /app"]);
    App::new(Image::load(&src, 1).unwrap())
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn draw(a: &mut App) {
    let mut t = Terminal::new(TestBackend::new(100, 20)).unwrap();
    t.draw(|f| a.draw(f)).unwrap();
}

/// Asserts the kept rows are the rows built from scratch now.
fn assert_fresh(a: &mut App) {
    a.refresh_rows();
    let search = a.search.clone().filter(|q| !q.is_empty());
    assert_eq!(a.rows.rows, a.build_rows(search.as_deref()));
}

#[test]
fn moving_and_redrawing_after_expand_all_reuse_the_rows() {
    let mut a = app();
    a.on_key(key(KeyCode::Down)); // layer 1
    a.on_key(key(KeyCode::Tab)); // files
    a.on_key(key(KeyCode::Char('e'))); // expand all
    draw(&mut a);
    let builds = a.rows.builds;
    assert!(
        a.rows.rows.len() > 10,
        "all expanded: {}",
        a.rows.rows.len()
    );
    for c in [
        KeyCode::Down,
        KeyCode::Char('j'),
        KeyCode::PageDown,
        KeyCode::Up,
        KeyCode::End,
        KeyCode::Home,
        KeyCode::Char('k'),
        KeyCode::Char('?'),
        KeyCode::Char('x'), // closes the help
        KeyCode::Tab,
        KeyCode::Tab,
    ] {
        a.on_key(key(c));
        draw(&mut a);
        draw(&mut a); // an idle redraw (the event loop's poll timeout)
    }
    assert_eq!(a.rows.builds, builds, "no key above changes the rows");
    a.on_key(key(KeyCode::Char('e'))); // everything is open already
    draw(&mut a);
    assert_eq!(
        a.rows.builds, builds,
        "expanding what is open changes nothing"
    );
    assert_fresh(&mut a);

    // What changes the rows builds them once more, not once per draw.
    for c in [
        KeyCode::Char('1'), // hide added
        KeyCode::Enter,     // collapse the directory under the cursor
        KeyCode::Char('a'), // this layer only
        KeyCode::Char('c'), // collapse all
        KeyCode::Up,        // layers pane: layer 0
        KeyCode::Char('/'), // search: empty, the tree
        KeyCode::Char('l'), // search "l"
        KeyCode::Backspace, // search empty again
        KeyCode::Esc,       // no search
    ] {
        let before = a.rows.builds;
        a.on_key(key(c));
        draw(&mut a);
        draw(&mut a);
        assert!(
            a.rows.builds <= before + 1,
            "{c:?}: built {} times",
            a.rows.builds - before
        );
        assert_fresh(&mut a);
    }
}

const KEYS: &[KeyCode] = &[
    KeyCode::Tab,
    KeyCode::Down,
    KeyCode::Up,
    KeyCode::PageDown,
    KeyCode::Home,
    KeyCode::End,
    KeyCode::Enter,
    KeyCode::Right,
    KeyCode::Left,
    KeyCode::Char(' '),
    KeyCode::Char('a'),
    KeyCode::Char('1'),
    KeyCode::Char('2'),
    KeyCode::Char('3'),
    KeyCode::Char('4'),
    KeyCode::Char('e'),
    KeyCode::Char('c'),
    KeyCode::Char('/'),
    KeyCode::Char('i'),
    KeyCode::Char('b'),
    KeyCode::Backspace,
    KeyCode::Esc,
    KeyCode::Char('w'),
    KeyCode::Char('?'),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever keys come, the rows shown are the rows a fresh build gives.
    #[test]
    fn kept_rows_are_never_stale(keys in proptest::collection::vec(0..KEYS.len(), 1..60)) {
        let mut a = app();
        for k in keys {
            a.on_key(key(KEYS[k]));
            draw(&mut a);
            assert_fresh(&mut a);
        }
    }
}
