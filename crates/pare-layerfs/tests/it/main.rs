//! pare-layerfs integration tests in one binary, one module per concern: `bounds` (hostile
//! nesting and name lengths), `hostile` (tar tricks), `overlay` (overlay2 directories) and
//! `waste` (the merged view's waste accounting).

mod bounds;
mod devices;
mod hostile;
mod overlay;
mod waste;
