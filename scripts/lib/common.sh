# shellcheck shell=bash
# Shared helpers for scripts/testbed, scripts/test, scripts/bench-* and .ci/run.
# Source it; it sets nothing but functions and a few read-only defaults.

PARE_ROOT="${PARE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PARE_CACHE="${PARE_CACHE:-/var/cache/pare}"
PARE_BASE_IMAGE="${PARE_BASE_IMAGE:-local/debian:bookworm}"
PARE_EXAMPLE_PREFIX="${PARE_EXAMPLE_PREFIX:-pare-example}"

log()  { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
warn() { printf '[%s] warning: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die()  { printf '[%s] error: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; exit 2; }

# Seconds since the epoch with milliseconds, for step timings.
now() { date +%s.%N; }
# elapsed START -> "12.3"
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# True when a Docker daemon answers (bounded, so a hung socket cannot block us).
docker_up() {
    command -v docker >/dev/null 2>&1 || return 1
    timeout 10 docker info >/dev/null 2>&1
}

# Runs as root or with sudo-less privileges? Most of the testbed needs root.
need_root() {
    [ "$(id -u)" -eq 0 ] || die "$1 needs root (run as root)"
}

# apt_install PKG... : installs only the packages that are not installed yet,
# running `apt-get update` at most once per process.
_APT_UPDATED=0
apt_install() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    need_root "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
    if [ "$_APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        apt-get update -qq </dev/null
        _APT_UPDATED=1
    fi
    # No service may start from a postinst (docker.io would start dockerd with its
    # defaults): the testbed starts dockerd itself. Keep a policy that exists.
    local policy=/usr/sbin/policy-rc.d own_policy=0 rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
    fi
    log "apt-get install ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null || rc=$?
    [ "$own_policy" -eq 1 ] && rm -f "$policy"
    return "$rc"
}

# pare_binary : sets PARE to the release pare binary unless PARE is set, building it when it is
# missing and BENCH_BUILD is 1 (the default). Fails when there is still no binary.
pare_binary() {
    if [ -z "${PARE:-}" ]; then
        PARE="${CARGO_TARGET_DIR:-$PARE_ROOT/target}/release/pare"
        if [ ! -x "$PARE" ] && [ "${BENCH_BUILD:-1}" = 1 ]; then
            log "building $PARE (cargo build --release -p pare)"
            (cd "$PARE_ROOT" && cargo build --release -p pare >&2)
        fi
    fi
    [ -x "$PARE" ]
}

# remove_run_images RUN : removes the Docker images test run RUN tagged, all named
# pare-test/RUN/* (pare_test_support::names), and no other run's.
remove_run_images() {
    [ -n "${1:-}" ] || return 1
    local imgs
    imgs="$(docker images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null |
        awk -v p="pare-test/$1/" 'index($0, p) == 1' || true)"
    if [ -n "$imgs" ]; then
        log "removing test images: $(tr '\n' ' ' <<<"$imgs")"
        xargs docker rmi -f <<<"$imgs" >/dev/null 2>&1 || true
    fi
}
