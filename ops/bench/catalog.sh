#!/usr/bin/env bash
# The catalog benchmark (issue 3): a 3-node yiwang cluster and a 3-member etcd cluster,
# both on loopback with mutual TLS from the same CA, measured in the same run by
# ops/bench/loadgen (yiwang-bench) at 1, 16 and 256 concurrent clients.
#
#   ops/bench/catalog.sh
#
# Environment:
#   BENCH_SECS         measured seconds per run (default 15)
#   BENCH_WARMUP       warm-up seconds per run (default 3)
#   BENCH_CONCURRENCY  client counts (default "1 16 256")
#   BENCH_OPS          runs per client count, in order (default
#                      "yiwang:register yiwang:bulk yiwang:read etcd:put etcd:txn etcd:get")
#   BENCH_BULK         datasets per bulk request / puts per etcd txn (default 100)
#   BENCH_KEYS         datasets / keys pre-created for reads (default 1000)
#   BENCH_OUT          results file (default ops/bench/results/catalog-<date>.md)
#   BENCH_NO_BUILD=1   skip `cargo build` (use the binaries in target/release)
#   YIWANG_BIN, BENCH_BIN  prebuilt yiwang / yiwang-bench binaries (skips the build)
#   BENCH_KEEP=1       keep the temporary directory (node logs, metrics snapshots)
#   BENCH_REV          revision to print for yiwang (default: git HEAD of this checkout)
#   BENCH_SETTLE_SECS  how long yiwang may take to apply its backlog after a run
#                      (default 120); past that the cluster is recreated for the next
#                      runs and the results say so
#
# yiwang nodes: https://127.0.0.{1,2,3}:8443 (admin http://127.0.0.k:9090);
# etcd members: https://127.0.0.{11,12,13}:2379 (peers :2380). Everything binds
# loopback only and is stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

die() { printf 'catalog.sh: %s\n' "$*" >&2; exit 1; }
log() { printf '== %s\n' "$*" >&2; }

secs=${BENCH_SECS:-15}
warmup=${BENCH_WARMUP:-3}
concurrency=${BENCH_CONCURRENCY:-1 16 256}
ops=${BENCH_OPS:-yiwang:register yiwang:bulk yiwang:read etcd:put etcd:txn etcd:get}
bulk=${BENCH_BULK:-100}
keys=${BENCH_KEYS:-1000}

# --- etcd (Debian's etcd-server) -------------------------------------------------------
if ! command -v etcd >/dev/null; then
    log "installing etcd-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y etcd-server etcd-client >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y etcd-server etcd-client >/dev/null; } \
        || die "cannot install etcd-server (apt-get install -y etcd-server failed)"
fi
command -v etcd >/dev/null || die "etcd is still missing after installing etcd-server"
etcdctl_bin=$(command -v etcdctl || true)
command -v curl >/dev/null || die "curl is required (apt-get install curl)"

# --- build ------------------------------------------------------------------------------
target=${CARGO_TARGET_DIR:-$root/target}
if [ -z "${BENCH_NO_BUILD:-}" ] && { [ -z "${YIWANG_BIN:-}" ] || [ -z "${BENCH_BIN:-}" ]; }; then
    log "cargo build --release -p yiwang-gateway -p yiwang-bench"
    cargo build --release -p yiwang-gateway -p yiwang-bench
fi
yiwang=${YIWANG_BIN:-$target/release/yiwang}
bench=${BENCH_BIN:-$target/release/yiwang-bench}
[ -x "$yiwang" ] && [ -x "$bench" ] || die "missing $yiwang or $bench"

# --- nothing of ours may already listen -------------------------------------------------
listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
for ip in 127.0.0.1 127.0.0.2 127.0.0.3; do
    ! listening "$ip" 8443 || die "$ip:8443 is in use (another yiwang cluster?)"
done
for ip in 127.0.0.11 127.0.0.12 127.0.0.13; do
    ! listening "$ip" 2379 || die "$ip:2379 is in use (another etcd?)"
done

tmp=$(mktemp -d /tmp/yiwang-catalog-bench.XXXXXX)
mkdir -p "$tmp/metrics"
etcd_pids=()
cleanup() {
    set +e
    log "stopping yiwang and etcd"
    [ -d "$tmp/yiwang" ] && YIWANG_BIN=$yiwang "$root/ops/cluster-local.sh" down "$tmp/yiwang" 2>/dev/null
    for p in "${etcd_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${etcd_pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    if [ -n "${BENCH_KEEP:-}" ]; then
        log "kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- yiwang: 3 nodes ------------------------------------------------------------------
notes=$tmp/notes.md
: >"$notes"
yiwang_up() {
    log "starting a 3-node yiwang cluster in $tmp/yiwang"
    YIWANG_BIN=$yiwang "$root/ops/cluster-local.sh" up 3 "$tmp/yiwang" --demo >"$tmp/yiwang-up.log" \
        || { cat "$tmp/yiwang-up.log" >&2; die "yiwang cluster did not start"; }
    yiwang_pids=$(cat "$tmp"/yiwang/node-*/pid | paste -sd, -)
}
yiwang_up
# etcd and the clients use this copy of the CA and certificates, which outlives a
# recreated yiwang cluster.
cp -a "$tmp/yiwang/certs" "$tmp/certs"
certs=$tmp/certs
yiwang_nodes=https://127.0.0.1:8443,https://127.0.0.2:8443,https://127.0.0.3:8443

# yiwang's Raft progress as "max_last_log min_applied max_applied ready_nodes".
yiwang_progress() {
    local k m ready=0 logs=() applied=()
    for k in 1 2 3; do
        m=$(curl -fsS --max-time 2 "http://127.0.0.$k:9090/metrics" 2>/dev/null || true)
        logs+=("$(awk '/^yiwang_raft_last_log_index /{print $2}' <<<"$m")")
        applied+=("$(awk '/^yiwang_raft_last_applied /{print $2}' <<<"$m")")
        curl -fsS --max-time 2 "http://127.0.0.$k:9090/readyz" >/dev/null 2>&1 && ready=$((ready + 1))
    done
    printf '%s %s %s %s\n' \
        "$(printf '%s\n' "${logs[@]}" | sort -n | tail -n1)" \
        "$(printf '%s\n' "${applied[@]}" | sort -n | head -n1)" \
        "$(printf '%s\n' "${applied[@]}" | sort -n | tail -n1)" "$ready"
}

# Waits until every node applied the whole log (the previous run's backlog is gone).
# A cluster that does not get there is recreated (same CA) so the next runs measure
# a working cluster; the results record it.
yiwang_settle() {
    local what=$1 start=$SECONDS limit=${BENCH_SETTLE_SECS:-120} p last applied_min applied_max ready
    while :; do
        read -r last applied_min applied_max ready <<<"$(yiwang_progress)"
        if [ "$ready" = 3 ] && [ -n "$last" ] && [ "$applied_min" = "$last" ]; then
            [ $((SECONDS - start)) -gt 2 ] && log "yiwang settled after $what in $((SECONDS - start)) s"
            [ $((SECONDS - start)) -gt 10 ] && echo "- after $what yiwang needed $((SECONDS - start)) s to apply its backlog" >>"$notes"
            return 0
        fi
        if [ $((SECONDS - start)) -ge "$limit" ]; then
            break
        fi
        sleep 0.5
    done
    p="last log index $last, applied $applied_min..$applied_max, $ready/3 nodes ready"
    log "yiwang did not settle within ${limit}s after $what ($p): recreating the cluster"
    echo "- **after $what yiwang did not apply its backlog within ${limit} s** ($p, no client load); the cluster was recreated (same CA) for the following runs; its logs are in the kept temp dir (BENCH_KEEP=1)" >>"$notes"
    for k in 1 2 3; do
        curl -fsS --max-time 2 "http://127.0.0.$k:9090/metrics" >"$tmp/metrics/wedged-$what-node$k.txt" 2>/dev/null || true
    done
    YIWANG_BIN=$yiwang "$root/ops/cluster-local.sh" down "$tmp/yiwang" 2>/dev/null || true
    local n=1
    while [ -e "$tmp/yiwang-wedged-$n" ]; do n=$((n + 1)); done
    mv "$tmp/yiwang" "$tmp/yiwang-wedged-$n"
    mkdir -p "$tmp/yiwang"
    cp -a "$tmp/yiwang-wedged-$n/certs" "$tmp/yiwang/certs"
    yiwang_up
}

# --- etcd: 3 members, TLS with client-certificate auth from the same CA -----------------
log "starting a 3-member etcd cluster in $tmp/etcd"
mkdir -p "$tmp/etcd/certs"
initial=m11=https://127.0.0.11:2380,m12=https://127.0.0.12:2380,m13=https://127.0.0.13:2380
for k in 11 12 13; do
    ip=127.0.0.$k
    # etcd checks a peer's certificate against the address it connects from, and
    # loopback connections come from 127.0.0.1: the certificate names both.
    "$yiwang" cert issue --ca "$certs" --node "$k" --name "etcd-$k" --ip "$ip" --ip 127.0.0.1 \
        --out "$tmp/etcd/certs" >/dev/null
    c=$tmp/etcd/certs/etcd-$k
    etcd --name "m$k" --data-dir "$tmp/etcd/m$k" \
        --listen-client-urls "https://$ip:2379" --advertise-client-urls "https://$ip:2379" \
        --listen-peer-urls "https://$ip:2380" --initial-advertise-peer-urls "https://$ip:2380" \
        --listen-metrics-urls "http://$ip:2381" \
        --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token yiwang-bench \
        --cert-file "$c.pem" --key-file "$c.key" --trusted-ca-file "$certs/ca.pem" --client-cert-auth \
        --peer-cert-file "$c.pem" --peer-key-file "$c.key" --peer-trusted-ca-file "$certs/ca.pem" \
        --peer-client-cert-auth \
        --logger zap --log-level warn >"$tmp/etcd/m$k.log" 2>&1 &
    etcd_pids+=($!)
done
etcd_nodes=https://127.0.0.11:2379,https://127.0.0.12:2379,https://127.0.0.13:2379
client_cert=$certs/gaj-steward.pem
client_key=$certs/gaj-steward.key
etcd_curl() { curl -fsS --max-time 2 --cacert "$certs/ca.pem" --cert "$client_cert" --key "$client_key" "$@"; }
deadline=$((SECONDS + 60))
while [ "$SECONDS" -lt "$deadline" ]; do
    ready=0
    for k in 11 12 13; do
        etcd_curl -X POST -d '{}' "https://127.0.0.$k:2379/v3/maintenance/status" 2>/dev/null \
            | grep -q '"leader"' && ready=$((ready + 1))
    done
    [ "$ready" -eq 3 ] && break
    sleep 0.1
done
[ "$ready" -eq 3 ] || { tail -n 20 "$tmp"/etcd/m*.log >&2; die "etcd did not start"; }
# Put etcd's leader on the first member, as yiwang's is on node 1: one client then talks
# to the leader of both systems, and more clients spread over leader and followers alike.
if [ -n "$etcdctl_bin" ]; then
    ectl() {
        ETCDCTL_API=3 "$etcdctl_bin" --cacert "$certs/ca.pem" --cert "$client_cert" \
            --key "$client_key" "$@"
    }
    status=$(ectl --endpoints="$etcd_nodes" endpoint status 2>/dev/null || true)
    m11=$(awk -F', ' '$1=="https://127.0.0.11:2379"{print $2}' <<<"$status")
    leader=$(awk -F', ' '$5=="true"{print $1}' <<<"$status")
    if [ -n "$m11" ] && [ -n "$leader" ] && [ "$leader" != "https://127.0.0.11:2379" ]; then
        ectl --endpoints="$leader" move-leader "$m11" >/dev/null 2>&1 \
            || log "could not move etcd's leader to m11 (continuing)"
    fi
fi
etcd_pid_list=$(IFS=,; echo "${etcd_pids[*]}")

# --- runs -------------------------------------------------------------------------------
day=$(date -u +%Y-%m-%d)
out=${BENCH_OUT:-$root/ops/bench/results/catalog-$day.md}
if [ -z "${BENCH_OUT:-}" ] && [ -e "$out" ]; then
    n=2
    while [ -e "$root/ops/bench/results/catalog-$day-$n.md" ]; do n=$((n + 1)); done
    out=$root/ops/bench/results/catalog-$day-$n.md
fi
mkdir -p "$(dirname "$out")"
jsonl=${out%.md}.jsonl
: >"$jsonl"
rows=$tmp/rows.md
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

run() {
    local sys=$1 op=$2 c=$3 nodes pids cert key extra=()
    if [ "$sys" = yiwang ]; then
        nodes=$yiwang_nodes pids=$yiwang_pids
        cert=$certs/gaj-steward.pem key=$certs/gaj-steward.key
        if [ "$op" = read ]; then
            # Reads as the department's system; the steward pre-creates the datasets.
            cert=$certs/gaj-system.pem key=$certs/gaj-system.key
            extra=(--setup-cert "$certs/gaj-steward.pem" --setup-key "$certs/gaj-steward.key")
        fi
    else
        nodes=$etcd_nodes pids=$etcd_pid_list cert=$client_cert key=$client_key
    fi
    log "$sys $op, $c clients, ${warmup}s + ${secs}s (load average $(cut -d' ' -f1 /proc/loadavg))"
    "$bench" run --system "$sys" --op "$op" -c "$c" --duration "$secs" --warmup "$warmup" \
        --nodes "$nodes" --ca "$certs/ca.pem" --cert "$cert" --key "$key" "${extra[@]}" \
        --bulk-size "$bulk" --keys "$keys" --pids "$pids" \
        --note "loadavg $(cut -d' ' -f1 /proc/loadavg)" \
        --jsonl "$jsonl" --md "$rows" \
        || { log "$sys $op with $c clients FAILED"; echo "- $sys $op with $c clients failed (see the table)" >>"$notes"; }
    if [ "$sys" = yiwang ]; then
        for k in 1 2 3; do
            curl -fsS --max-time 2 "http://127.0.0.$k:9090/metrics" >"$tmp/metrics/$op-c$c-node$k.txt" 2>/dev/null || true
        done
        yiwang_settle "$op-c$c"
    fi
}

for c in $concurrency; do
    for so in $ops; do
        run "${so%%:*}" "${so#*:}" "$c"
    done
done

# --- results ----------------------------------------------------------------------------
{
    echo "# Catalog benchmark: yiwang vs etcd, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Produced by \`ops/bench/catalog.sh\` (see ops/bench/README.md for what is measured)."
    echo
    echo "- machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(free -g | awk '/^Mem:/{print $2}') GiB RAM"
    echo "- load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- yiwang ${BENCH_REV:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')} (3 nodes, https://127.0.0.{1,2,3}:8443, demo catalog seeded); $(etcd --version | head -n1) (3 members, https://127.0.0.{11,12,13}:2379)"
    echo "- ${warmup} s warm-up + ${secs} s measured per run; bulk = $bulk datasets per request (etcd: $bulk puts per txn); reads pick from $keys pre-created datasets / keys"
    echo "- value: the same ~$(head -n1 "$jsonl" | sed -n 's/.*"value_bytes":\([0-9]*\).*/\1/p')-byte dataset JSON for both systems; HTTP/1.1 over TLS 1.3 with client certificates, one keep-alive connection per client, clients round-robin over the 3 nodes"
    echo
    "$bench" report "$jsonl"
    if [ -s "$notes" ]; then
        echo
        echo "Notes from this run:"
        echo
        cat "$notes"
    fi
} >"$out"
cat "$out"
log "results in $out (raw: $jsonl)"
