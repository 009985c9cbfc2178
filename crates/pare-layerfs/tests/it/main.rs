//! pare-layerfs integration tests in one binary, one module per concern: `bounds` (hostile
//! nesting and name lengths), `hostile` (tar tricks), `indexed`
//! (extraction and index in one pass), `overlay` (overlay2 directories) and
//! `waste` (the merged view's waste accounting).

mod bounds;
mod devices;
mod hostile;
mod indexed;
mod overlay;
mod waste;
