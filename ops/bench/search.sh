#!/usr/bin/env bash
# The search benchmark (issue 7): indexing throughput and query latency p50/p99 of
# yiwang's search index vs SQLite FTS5 with the trigram tokenizer, over the same
# entries, in one run per scale: the real catalog (48,890 entries) and 1,000,000 (the
# real catalog replicated with varied titles). Both run in process, on disk, with the
# query texts of ops/eval/queries.json (5 measured rounds after a warm-up).
#
#   ops/bench/search.sh [DATA]      DATA: cn-open-catalog.jsonl.gz (default beside the repo)
#
# Environment: SCALES (default "0 1000000"; 0 = the real catalog once), BENCH_OUT
# (results file, default ops/bench/results/search-<date>.jsonl), BENCH_NO_BUILD=1 or
# BENCH_BIN to use a prebuilt yiwang-bench.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
data=${1:-$root/../shared/data/cn-open-catalog.jsonl.gz}
[ -f "$data" ] || { echo "bench/search: no catalog at $data" >&2; exit 1; }
target=${CARGO_TARGET_DIR:-$root/target}
if [ -z "${BENCH_NO_BUILD:-}" ] && [ -z "${BENCH_BIN:-}" ]; then
    echo "bench/search: building release binaries" >&2
    cargo build --release -q -p yiwang-bench
fi
bench=${BENCH_BIN:-$target/release/yiwang-bench}
[ -x "$bench" ] || { echo "bench/search: no $bench" >&2; exit 1; }
out=${BENCH_OUT:-$root/ops/bench/results/search-$(date +%F).jsonl}
mkdir -p "$(dirname "$out")"
for entries in ${SCALES:-0 1000000}; do
    "$bench" search --data "$data" --entries "$entries" --queries ops/eval/queries.json --jsonl "$out"
done
echo "bench/search: results appended to $out" >&2
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| entries | system | indexing s | docs/s | index MB | search p50 ms | p99 ms |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    for name, key in (("yiwang", "yiwang"), ("SQLite FTS5 trigram", "fts5_trigram")):
        s = r[key]
        print(f"| {r['entries']:,} | {name} | {s['index_s']:.1f} | {s['docs_per_s']:,.0f} | "
              f"{s['index_mb']:.0f} | {s['search']['p50_ms']:.2f} | {s['search']['p99_ms']:.2f} |")
PY
