//! pare build orchestration and report.
