//! pare-probe integration tests in one binary: `probes` (every probe kind against local
//! servers) and `ready` (readiness signs).

mod probes;
mod ready;
