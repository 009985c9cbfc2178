//! pare profile: run, probe, record; seccomp and AppArmor.
