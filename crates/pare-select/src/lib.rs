//! File selection: traced files plus static closure.
