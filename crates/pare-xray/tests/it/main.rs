//! pare-xray integration tests in one binary: `analyze` (against hand-computed layers),
//! `bounds` (resource limits), `merged` (the report from an extraction's view) and `tables`
//! (the rendered tables, insta snapshots).

mod analyze;
mod bounds;
mod merged;
mod tables;
