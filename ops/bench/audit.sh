#!/usr/bin/env bash
# The audit benchmark (issue 6): durable audit records/s, and the latency durability
# adds to a request, with group commit vs one fsync per record vs no fsync (the limit),
# all in one run on this machine.
#
#   ops/bench/audit.sh
#
# Part 1, the writer alone: `yiwang audit bench` appends records like a records read's
# into a throwaway log on the disk under $TMPDIR, from 1, 64 and 1024 concurrent
# writers that each wait for their record to be durable before writing the next.
# Part 2, through the gateway: a one-node `yiwang demo` served three times, with
# `audit.sync` = none, each and group; `yiwang-bench run --op records` reads two rows of
# 应急管理局's enterprises as 大数据局's system (mutual TLS, policy, SQLite source,
# masking, one durable request record and one completion record per request) at 1, 16
# and 64 clients. The p50/p99 differences to `none` are what durability adds.
#
# Each gateway run is repeated BENCH_REPEAT times (3), the modes interleaved (none,
# each, group, none, …), and the table reports medians: single runs at 64 clients on
# two cores vary by several ms at p99, more than what is measured.
#
# Those runs are closed loop: each client sends its next request when the last is
# answered, so at 64 clients the node is saturated and latency is mostly queueing
# (64 clients / throughput): what durability adds there is its CPU cost. The open-loop
# runs (BENCH_RATE_CLIENTS clients sending BENCH_RATES requests/s in total, latency
# from each request's scheduled time, like wrk2) show the latency durability adds
# at a load the node can carry.
#
# Environment: BENCH_PARTS ("writer gateway": which parts to run), BENCH_SYNC
# ("none each group": the modes), BENCH_REPEAT (3), BENCH_SECS (10) measured seconds per run, BENCH_WARMUP (2),
# BENCH_WRITERS ("1 64 1024"), BENCH_CONCURRENCY ("1 16 64"), BENCH_RATES ("2000
# 4000", empty for none), BENCH_RATE_CLIENTS (64), BENCH_OUT (results
# prefix, default ops/bench/results/audit-<date>), BENCH_NO_BUILD=1 or
# YIWANG_BIN/BENCH_BIN to use prebuilt binaries, BENCH_KEEP=1 keeps the temporary
# directory. Everything binds to loopback and is stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=ops/bench/lib.sh
. "$root/ops/bench/lib.sh"

bench_setup audit "apt-get install curl python3" python3 curl

secs=${BENCH_SECS:-10}
warmup=${BENCH_WARMUP:-2}
writers=${BENCH_WRITERS:-1 64 1024}
concurrency=${BENCH_CONCURRENCY:-1 16 64}
rates=${BENCH_RATES-2000 4000}
rate_clients=${BENCH_RATE_CLIENTS:-64}
parts=${BENCH_PARTS:-writer gateway}
modes=${BENCH_SYNC:-none each group}
repeat=${BENCH_REPEAT:-3}
out=${BENCH_OUT:-$root/ops/bench/results/audit-$(date +%F)}

bench_binaries bench

bench_tmpdir
mkdir -p "$(dirname "$out")"
writer_jsonl=$out-writer.jsonl
request_jsonl=$out-requests.jsonl
: >"$writer_jsonl"
: >"$request_jsonl"

log "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(df -T "$tmp" | awk 'NR==2 {print $2}') on $(df "$tmp" | awk 'NR==2 {print $1}')"

if [[ " $parts " == *" writer "* ]]; then
log "part 1: the audit writer alone"
mkdir -p "$tmp/disk"
for sync in $modes; do
    for c in $writers; do
        "$yiwang" audit bench --dir "$tmp/disk" --sync "$sync" --clients "$c" --seconds "$secs" \
            2>/dev/null | tee -a "$writer_jsonl" >&2
    done
done
fi

if [[ " $parts " == *" gateway "* ]]; then
log "part 2: records reads through the gateway"
port=$(bench_free_port)
admin=$(bench_free_port)
demo=$tmp/demo
wait_ready() { bench_wait_ready "$admin" "$node_pid" "$tmp/node.log"; }
"$yiwang" demo --dir "$demo" --port "$port" --admin-port "$admin" --quiet >"$tmp/node.log" 2>&1 &
node_pid=$!
wait_ready
certs=$demo/certs
# One load run against the node as it is now; arguments choose the load.
read_records() {
    "$bench" run --system yiwang --op records "$@" --duration "$secs" --warmup "$warmup" \
        --nodes "https://127.0.0.1:$port" --ca "$certs/ca.pem" \
        --cert "$certs/dsj-system.pem" --key "$certs/dsj-system.key" \
        --pids "$node_pid" --note "sync=$sync" --jsonl "$request_jsonl" >&2
}
for ((rep = 1; rep <= repeat; rep++)); do
for sync in $modes; do
    kill "$node_pid"
    wait "$node_pid" 2>/dev/null || true
    sed "s/^sync = .*/sync = \"$sync\"/" "$demo/node.toml" >"$tmp/$sync.toml"
    grep -q "^sync = \"$sync\"" "$tmp/$sync.toml" || die "cannot set audit.sync in node.toml"
    "$yiwang" serve --config "$tmp/$sync.toml" >>"$tmp/node.log" 2>&1 &
    node_pid=$!
    wait_ready
    for c in $concurrency; do
        read_records -c "$c"
    done
    for rate in $rates; do
        read_records -c "$rate_clients" --rate "$rate"
    done
done
done
fi

python3 - "$writer_jsonl" "$request_jsonl" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +changes)" >"$out.md" <<'EOF'
import json, sys
writer = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
req = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
rev = sys.argv[3]
print(f"# Audit benchmark ({rev})\n")
print("## The audit writer alone (`yiwang audit bench`)\n")
print("| sync | writers | records/s | records per fsync | append p50 ms | append p99 ms |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for w in writer:
    print(f"| {w['sync']} | {w['clients']} | {w['records_per_s']:.0f} | {w['records_per_commit']} | "
          f"{w['append_ms_p50']:.2f} | {w['append_ms_p99']:.2f} |")
print("\n## Records reads through the gateway (`yiwang-bench run --op records`)\n")
print("Two audit records per request (request + completion). Medians of the repeated runs (modes interleaved); *added* = difference to the median of `none` at the same load. *Closed loop*: each client sends its next request when the last is answered. *Open loop*: the clients send a fixed total rate, latency counted from each request's scheduled time.\n")
print("| sync | clients | load | runs | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | node CPU µs/req | errors |")
print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
import statistics
groups = {}
for r in req:
    if "failed" in r:
        print(f"| {r.get('note','')} | {r['concurrency']} | failed: {r['failed'][:80]} | | | | | | | | |")
        continue
    groups.setdefault((r.get("note", "").removeprefix("sync="), r["concurrency"], r.get("rate") or 0), []).append(r)
def med(rs, f):
    return statistics.median(f(r) for r in rs)
order = {"none": 0, "each": 1, "group": 2}
for (sync, c, rate), rs in sorted(groups.items(), key=lambda kv: (kv[0][2] > 0, kv[0][2], order.get(kv[0][0], 9), kv[0][1])):
    p50, p99 = med(rs, lambda r: r["latency_ms"]["p50"]), med(rs, lambda r: r["latency_ms"]["p99"])
    base = groups.get(("none", c, rate))
    add50 = f"{p50 - med(base, lambda r: r['latency_ms']['p50']):+.2f}" if base else ""
    add99 = f"{p99 - med(base, lambda r: r['latency_ms']['p99']):+.2f}" if base else ""
    load = f"open, {rate:.0f} req/s" if rate else "closed"
    cpu = med(rs, lambda r: r["server_cpu_us_per_item"])
    print(f"| {sync} | {c} | {load} | {len(rs)} | {med(rs, lambda r: r['ops_per_s']):.0f} | {p50:.2f} | {p99:.2f} | {add50} | {add99} | {cpu:.0f} | {sum(r['errors'] for r in rs)} |")
EOF
cat "$out.md"
log "results: $out.md ($writer_jsonl, $request_jsonl)"
