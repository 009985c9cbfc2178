//! Deterministic single-layer image writer.
