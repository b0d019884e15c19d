# Shared by the benchmark scripts (sourced, not run).

# A free TCP port on 127.0.0.1.
bench_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits for the node's /readyz on ADMIN_PORT; fails if process PID exits (see LOG).
bench_wait_ready() {
    local admin=$1 pid=$2 log=$3 i
    for ((i = 0; i < 1200; i++)); do
        curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || { echo "bench: the node exited; see $log" >&2; exit 1; }
        sleep 0.1
    done
    echo "bench: the node did not become ready; see $log" >&2
    exit 1
}

# Builds the release binaries (unless BENCH_NO_BUILD is set or YIWANG_BIN/BENCH_BIN
# name prebuilt ones) and sets $yiwang and, with "bench" as argument, $bench. Needs
# $root and the caller's die/log.
bench_binaries() {
    local target=${CARGO_TARGET_DIR:-$root/target} packages=(-p yiwang-gateway)
    [ "${1:-}" = bench ] && packages+=(-p yiwang-bench)
    if [ -z "${BENCH_NO_BUILD:-}" ] && [ -z "${YIWANG_BIN:-}${BENCH_BIN:-}" ]; then
        log "building release binaries"
        cargo build --release -q "${packages[@]}"
    fi
    yiwang=${YIWANG_BIN:-$target/release/yiwang}
    [ -x "$yiwang" ] || die "no $yiwang"
    if [ "${1:-}" = bench ]; then
        bench=${BENCH_BIN:-$target/release/yiwang-bench}
        [ -x "$bench" ] || die "no $bench"
    fi
}

# Starts a benchmark script called NAME: defines die and log, and checks that every
# TOOL is installed (HINT says how to install them).
bench_setup() {
    bench_name=$1
    local hint=$2 tool
    shift 2
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is required ($hint)"
    done
}
die() { printf 'bench/%s: %s\n' "${bench_name:-?}" "$*" >&2; exit 1; }
log() { printf '== %s\n' "$*" >&2; }

# Makes the run's temporary directory $tmp. On exit, the node ($node_pid) and nginx
# ($tmp/nginx.pid) are stopped and $tmp removed (kept with BENCH_KEEP=1).
bench_tmpdir() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/yiwang-bench-$bench_name.XXXXXX")
    chmod 755 "$tmp"
    node_pid=
    trap bench_cleanup EXIT
}
bench_cleanup() {
    if [ -f "$tmp/nginx.pid" ]; then kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true; fi
    if [ -n "$node_pid" ]; then
        kill "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    if [ -n "${BENCH_KEEP:-}" ]; then
        echo "bench/$bench_name: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}

# The machine, for result tables: cores, CPU model, memory.
bench_machine() {
    echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
}
