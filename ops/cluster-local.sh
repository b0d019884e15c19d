#!/usr/bin/env bash
# An N-node yiwang cluster on this machine.
#
#   ops/cluster-local.sh up N DIR [--demo]   create (or restart) and form the cluster
#   ops/cluster-local.sh down DIR            stop every node (SIGTERM)
#   ops/cluster-local.sh kill DIR K          SIGKILL node K (a crash)
#   ops/cluster-local.sh start DIR K         start node K again
#   ops/cluster-local.sh status DIR          cluster status as seen by node 1
#
# Node k serves the API on https://127.0.0.k:8443 and admin on http://127.0.0.k:9090,
# keeps its data in DIR/node-k/ and its pid in DIR/node-k/pid. Certificates are in
# DIR/certs and the principals in DIR/principals.json, as for `yiwang demo`; --demo
# seeds the demo catalog and department databases. `up` returns once the cluster has a
# leader and every node is ready.
#
# The binary is $YIWANG_BIN, else target/release/yiwang, else target/debug/yiwang.
# Environment: YIWANG_ELECTION_MS (election timeout minimum, default 1000),
# YIWANG_SNAPSHOT_LOGS (entries between snapshots).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

die() { printf 'cluster-local: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

bin=${YIWANG_BIN:-}
if [ -z "$bin" ]; then
    for b in "${CARGO_TARGET_DIR:-$root/target}/release/yiwang" "${CARGO_TARGET_DIR:-$root/target}/debug/yiwang"; do
        if [ -x "$b" ]; then bin=$b; break; fi
    done
fi
[ -n "$bin" ] && [ -x "$bin" ] || die "no yiwang binary: run 'cargo build --release' or set YIWANG_BIN"
command -v curl >/dev/null || die "curl is required (apt-get install curl)"

ip_of() { echo "127.0.0.$1"; }

# Runs a client command as the demo admin against node 1.
as_admin() {
    local dir=$1; shift
    YIWANG_SERVER="https://$(ip_of 1):8443" YIWANG_CA="$dir/certs/ca.pem" \
        YIWANG_CERT="$dir/certs/admin.pem" YIWANG_KEY="$dir/certs/admin.key" "$bin" "$@"
}

wait_ready() {
    local k=$1 secs=${2:-60} i
    for ((i = 0; i < secs * 10; i++)); do
        if curl -fsS "http://$(ip_of "$k"):9090/readyz" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

start_node() {
    local dir=$1 k=$2 node_dir="$1/node-$2"
    [ -f "$node_dir/node.toml" ] || die "$node_dir/node.toml missing: run 'up' first"
    if [ -f "$node_dir/pid" ] && kill -0 "$(cat "$node_dir/pid")" 2>/dev/null; then
        echo "node $k already running (pid $(cat "$node_dir/pid"))" >&2
        return 0
    fi
    nohup "$bin" serve --config "$node_dir/node.toml" >>"$node_dir/node.log" 2>&1 &
    echo $! >"$node_dir/pid"
    echo "node $k started (pid $!, https://$(ip_of "$k"):8443, log $node_dir/node.log)" >&2
}

is_member() {
    local dir=$1 k=$2
    as_admin "$dir" cluster status 2>/dev/null | grep -q "\"id\": $k,"
}

cmd=${1:-}; shift || true
case "$cmd" in
up)
    [ $# -ge 2 ] || usage
    n=$1 dir=$2 demo=${3:-}
    [[ "$n" =~ ^[1-9]$ ]] || die "N must be 1-9"
    [ -z "$demo" ] || [ "$demo" = "--demo" ] || usage
    mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
    if [ ! -f "$dir/node-1/node.toml" ]; then
        args=(cluster local-setup --dir "$dir" --nodes "$n")
        [ -n "$demo" ] && args+=(--demo)
        [ -n "${YIWANG_ELECTION_MS:-}" ] && args+=(--election-ms "$YIWANG_ELECTION_MS")
        [ -n "${YIWANG_SNAPSHOT_LOGS:-}" ] && args+=(--snapshot-logs "$YIWANG_SNAPSHOT_LOGS")
        "$bin" "${args[@]}" >/dev/null
    fi
    start_node "$dir" 1
    wait_ready 1 120 || die "node 1 not ready; see $dir/node-1/node.log"
    for ((k = 2; k <= n; k++)); do start_node "$dir" "$k"; done
    learners=()
    for ((k = 2; k <= n; k++)); do
        if ! is_member "$dir" "$k"; then
            as_admin "$dir" cluster add-learner --id "$k" --addr "$(ip_of "$k"):8443" >/dev/null \
                || die "adding node $k failed; see $dir/node-$k/node.log"
            learners+=("$k")
        fi
    done
    if [ ${#learners[@]} -gt 0 ]; then
        as_admin "$dir" cluster promote --ids "$(IFS=,; echo "${learners[*]}")" >/dev/null || die "promoting ${learners[*]} failed"
    fi
    for ((k = 1; k <= n; k++)); do
        wait_ready "$k" 60 || die "node $k not ready; see $dir/node-$k/node.log"
    done
    as_admin "$dir" cluster status
    ;;
down)
    [ $# -eq 1 ] || usage
    dir=$1
    for pidf in "$dir"/node-*/pid; do
        [ -f "$pidf" ] || continue
        pid=$(cat "$pidf")
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pidf in "$dir"/node-*/pid; do
        [ -f "$pidf" ] || continue
        pid=$(cat "$pidf")
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$pidf"
    done
    echo "stopped" >&2
    ;;
kill)
    [ $# -eq 2 ] || usage
    dir=$1 k=$2
    pidf="$dir/node-$k/pid"
    [ -f "$pidf" ] || die "node $k is not running (no $pidf)"
    kill -KILL "$(cat "$pidf")" 2>/dev/null || true
    rm -f "$pidf"
    echo "node $k killed" >&2
    ;;
start)
    [ $# -eq 2 ] || usage
    start_node "$1" "$2"
    wait_ready "$2" 60 || die "node $2 not ready; see $1/node-$2/node.log"
    ;;
status)
    [ $# -eq 1 ] || usage
    as_admin "$1" cluster status
    ;;
*) usage ;;
esac
