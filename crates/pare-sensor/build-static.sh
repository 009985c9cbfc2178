#!/usr/bin/env bash
# Builds the static pare-sensor (glibc, crt-static: no NSS calls inside) and prints its path.
# Usage: crates/pare-sensor/build-static.sh   (honours CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/../.."
target="x86_64-unknown-linux-gnu"
case "$(uname -m)" in aarch64) target="aarch64-unknown-linux-gnu" ;; esac
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build -p pare-sensor --release --target "$target" >&2
dir="${CARGO_TARGET_DIR:-target}"
bin="$(cd "$dir" && pwd)/$target/release/pare-sensor"
if command -v ldd >/dev/null && ldd "$bin" 2>&1 | grep -q '=>'; then
  echo "build-static.sh: $bin is not static" >&2
  exit 1
fi
echo "$bin"
