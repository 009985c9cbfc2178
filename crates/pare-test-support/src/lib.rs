//! Test helpers shared by the crates' tests, benchmarks and fuzz targets; never a dependency
//! of a library (only `[dev-dependencies]`, and pare-fuzz, which is itself a test harness).
//!
//! * [`layer`]: build one layer tar in memory ([`layer::LayerBuilder`], hostile entries
//!   included) and serve layers as an image without any I/O ([`layer::MemSource`]);
//! * [`fixture`]: write an image to disk as an OCI layout (directory or archive, any layer
//!   compression, multi-arch) or as a `docker save` archive in either format;
//! * [`io`]: writers for tests of streamed output ([`io::ClosingPipe`]);
//! * [`names`]: per-run names of the images tests tag (`pare-test/<run>/…`).

pub mod fixture;
pub mod io;
pub mod layer;
pub mod names;
