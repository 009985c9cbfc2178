//! HTTP/TCP/exec probes and their recorded answers.
