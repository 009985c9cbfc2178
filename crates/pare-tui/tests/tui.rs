//! The explorer on ratatui's TestBackend: screens after key presses, as insta snapshots.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use pare_test_support::layer::{LayerBuilder, MemSource};
use pare_tui::{App, Image};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn image() -> MemSource {
    let base = LayerBuilder::new()
        .dir("bin")
        .sized("bin/sh", 1200, b's')
        .dir("etc")
        .file("etc/hosts", b"127.0.0.1 localhost\n")
        .dir("usr/lib")
        .sized("usr/lib/libbig.so", 2_000_000, b'b')
        .sized("usr/lib/libold.so", 300_000, b'o')
        .dir("tmp")
        .sized("tmp/cache.bin", 500_000, b'c')
        .finish();
    let app = LayerBuilder::new()
        .dir("app")
        .sized("app/server", 40_000, b'a')
        .file("etc/hosts", b"127.0.0.1 localhost app\n")
        .sized("app/evil\x1b[31mred", 10, b'e')
        .whiteout("tmp/cache.bin")
        .whiteout("usr/lib/libold.so")
        .finish();
    MemSource::with_history(vec![base, app], &["ADD rootfs.tar /", "COPY app /app"])
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn screen(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.draw(f)).unwrap();
    t.backend().to_string()
}

fn app() -> App {
    App::new(Image::load(&image(), 1).unwrap())
}

#[test]
fn first_screen_layer_zero() {
    let mut a = app();
    insta::assert_snapshot!("first_screen", screen(&mut a, 100, 16));
}

#[test]
fn second_layer_marks_added_modified_removed() {
    let mut a = app();
    a.on_key(key(KeyCode::Down)); // layer 1
    a.on_key(key(KeyCode::Tab)); // files
    a.on_key(key(KeyCode::Char('e'))); // expand all
    let s = screen(&mut a, 110, 20);
    assert!(s.contains("+ 0755"), "app/ is added: {s}");
    assert!(s.contains("~ 0644"), "etc/hosts is modified");
    assert!(s.contains("- 0644"), "removed files shown");
    assert!(s.contains("evil\\x1b[31mred"), "escape shown as text");
    insta::assert_snapshot!("layer1_expanded", s);

    // Only this layer, only removed files.
    a.on_key(key(KeyCode::Char('a')));
    a.on_key(key(KeyCode::Char('e')));
    for c in ['1', '2', '4'] {
        a.on_key(key(KeyCode::Char(c)));
    }
    let s = screen(&mut a, 110, 20);
    assert!(s.contains("libold.so") && s.contains("cache.bin"), "{s}");
    assert!(!s.contains("server") && !s.contains("hosts"), "{s}");
    insta::assert_snapshot!("layer1_only_removed", s);
}

#[test]
fn collapse_search_wasted_help_quit() {
    let mut a = app();
    a.on_key(key(KeyCode::Tab));
    // Root level: bin, etc, tmp, usr collapsed; expand usr (the 4th row) with Enter.
    for _ in 0..3 {
        a.on_key(key(KeyCode::Down));
    }
    a.on_key(key(KeyCode::Enter));
    let s = screen(&mut a, 100, 16);
    assert!(s.contains("▾ usr") && s.contains("▸ lib"), "{s}");
    assert!(s.contains("2.3 MB"), "usr's size: {s}");
    a.on_key(key(KeyCode::Enter));
    let s = screen(&mut a, 100, 16);
    assert!(s.contains("▸ usr"), "collapsed again: {s}");

    for c in "/libbig".chars() {
        a.on_key(key(KeyCode::Char(c)));
    }
    a.on_key(key(KeyCode::Enter));
    let s = screen(&mut a, 100, 16);
    assert!(
        s.contains("/usr/lib/libbig.so") && !s.contains("bin/sh"),
        "{s}"
    );
    a.on_key(key(KeyCode::Esc)); // clears the search
    assert!(!a.quit);

    a.on_key(key(KeyCode::Char('w')));
    let s = screen(&mut a, 100, 16);
    assert!(s.contains("Wasted: 800 kB in 3 copies"), "{s}");
    insta::assert_snapshot!("wasted", s);
    a.on_key(key(KeyCode::Char('w')));

    a.on_key(key(KeyCode::Char('?')));
    let s = screen(&mut a, 100, 20);
    assert!(s.contains("Keys (any key closes)"));
    a.on_key(key(KeyCode::Char('x')));
    assert!(!screen(&mut a, 100, 20).contains("Keys (any key closes)"));

    a.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(a.quit, "Ctrl-C quits");
}

#[test]
fn too_small_terminal_says_so() {
    let mut a = app();
    let s = screen(&mut a, 40, 8);
    assert!(s.contains("Terminal too small (40×8)"), "{s}");
}
