//! pare-source integration tests in one binary, one module per concern: `sources` (every
//! format, hostile ones included), `bounds` (resource limits on metadata), `registry` (against
//! `fake_registry`, an in-process registry) and `daemon` (needs dockerd; `#[ignore]`d).

mod bounds;
mod daemon;
mod fake_registry;
mod registry;
mod sources;
