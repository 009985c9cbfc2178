//! Replay probes against the slim image and compare.
