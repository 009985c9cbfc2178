//! Image analysis: layers, waste, efficiency, attack surface, packages.
