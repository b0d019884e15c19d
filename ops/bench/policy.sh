#!/usr/bin/env bash
# The policy benchmark (issue 5): read-decision latency and decisions/s of yiwang's
# engine (`PolicyEngine::plan_read`) vs casbin's uncached `enforce` on the same model
# and rules, in one run, over 65 departments, 100,000 datasets and 100,000 active
# grants built in memory through the catalog's own commands (seconds to build).
#
#   ops/bench/policy.sh [yiwang-bench policy options, e.g. --datasets 10000]
#
# Environment: BENCH_OUT (results file, default ops/bench/results/policy-<date>.jsonl),
# BENCH_NO_BUILD=1 or BENCH_BIN to use a prebuilt yiwang-bench.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
if [ -z "${BENCH_NO_BUILD:-}" ] && [ -z "${BENCH_BIN:-}" ]; then
    echo "bench/policy: building release binaries" >&2
    cargo build --release -q -p yiwang-gateway -p yiwang-bench
fi
bench=${BENCH_BIN:-$target/release/yiwang-bench}
[ -x "$bench" ] || { echo "bench/policy: no $bench" >&2; exit 1; }
out=${BENCH_OUT:-$root/ops/bench/results/policy-$(date +%F).jsonl}
mkdir -p "$(dirname "$out")"
"$bench" policy --jsonl "$out" "$@"
echo "bench/policy: results appended to $out" >&2
