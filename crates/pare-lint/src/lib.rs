//! Hadolint-compatible Dockerfile linter.
