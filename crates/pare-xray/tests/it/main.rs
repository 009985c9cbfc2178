//! pare-xray integration tests in one binary: `analyze` (against hand-computed layers),
//! `bounds` (resource limits) and `tables` (the rendered tables, insta snapshots).

mod analyze;
mod bounds;
mod tables;
