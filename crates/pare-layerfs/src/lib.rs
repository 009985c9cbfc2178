//! Streaming layer reading, whiteouts, merged filesystem view, safe extraction.
