//! pare-select integration tests in one binary: `select` (the closure over real layouts) and
//! `bounds` (symlink loops end with a warning, never a hang).

mod bounds;
mod select;
