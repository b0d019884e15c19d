#!/usr/bin/env bash
# Search-quality evaluation and DCAT-AP validation against a fresh 1-node cluster.
#
#   ops/eval/run.sh [DATA]
#
# DATA is the catalog (default ../shared/data/cn-open-catalog.jsonl.gz beside the
# repository). Starts `ops/cluster-local.sh up 1` in a temporary directory (node 1 on
# https://127.0.0.1:8443; stopped on exit), loads DATA and runs the judged queries with
# eval.py, validates the DCAT-AP export with dcat_validate.py, and writes the report to
# ops/eval/results/<date>.txt (per-query results in <date>.json).
#
# Needs a built binary (cargo build --release, or YIWANG_BIN), python3 and curl.
# pySHACL and rdflib are installed into the venv ${YIWANG_EVAL_VENV:-~/.cache/yiwang-eval-venv}.
# Environment: EVAL_ARGS (extra eval.py arguments, e.g. "--limit 5000 -v"),
# DCAT_ARGS (dcat_validate.py arguments; default "--max-pages 5": the first 5,000
# datasets — pySHACL on the whole export, about a million triples, did not finish in
# 17 minutes of CPU here; DCAT_ARGS= validates everything), YIWANG_EVAL_KEEP=1 (keep the cluster
# directory).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

die() { printf 'eval/run.sh: %s\n' "$*" >&2; exit 2; }

[ $# -le 1 ] || { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
data=${1:-$root/../shared/data/cn-open-catalog.jsonl.gz}
[ -f "$data" ] || die "no catalog at $data"
data=$(cd "$(dirname "$data")" && pwd)/$(basename "$data")
command -v python3 >/dev/null || die "python3 is required"

venv=${YIWANG_EVAL_VENV:-$HOME/.cache/yiwang-eval-venv}
if ! "$venv/bin/python" -c 'import pyshacl, rdflib' 2>/dev/null; then
    echo "creating the venv $venv (pyshacl, rdflib)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check pyshacl rdflib
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/yiwang-eval.XXXXXX")
cleanup() {
    "$root/ops/cluster-local.sh" down "$dir" >/dev/null 2>&1 || true
    if [ "${YIWANG_EVAL_KEEP:-}" = 1 ]; then
        echo "cluster directory kept: $dir" >&2
    else
        rm -rf "$dir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$root/ops/cluster-local.sh" up 1 "$dir" >/dev/null

mkdir -p "$here/results"
stamp=$(date +%F)
[ ! -e "$here/results/$stamp.txt" ] || stamp=$(date +%F-%H%M%S)
out=$here/results/$stamp.txt
bin=${YIWANG_BIN:-}
if [ -z "$bin" ]; then
    for b in "${CARGO_TARGET_DIR:-$root/target}/release/yiwang" "${CARGO_TARGET_DIR:-$root/target}/debug/yiwang"; do
        if [ -x "$b" ]; then bin=$b; break; fi
    done
fi

set +e
{
    echo "# yiwang search evaluation, $(date -u +%FT%TZ)"
    echo "# commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet 2>/dev/null || echo ' (dirty)'), binary $bin ($(date -u -r "$bin" +%FT%TZ 2>/dev/null || echo '?'))"
    echo "# data $data"
    echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
    echo
    echo "## search quality (eval.py)"
    # shellcheck disable=SC2086
    python3 "$here/eval.py" --data "$data" --cluster-dir "$dir" --out "$here/results/$stamp.json" ${EVAL_ARGS:-} 2>&1
    echo "eval.py exit status: $?"
    echo
    echo "## DCAT-AP 3.0.0 validation (dcat_validate.py)"
    # shellcheck disable=SC2086
    "$venv/bin/python" "$here/dcat_validate.py" --cluster-dir "$dir" ${DCAT_ARGS---max-pages 5} 2>&1
    echo "dcat_validate.py exit status: $?"
} | tee "$out"
set -e
echo "report: $out" >&2
# the exit status is the worse of the two tools
statuses=$(grep -Eo '^(eval|dcat_validate)\.py exit status: [0-9]+' "$out" | awk '{print $NF}')
worst=0
for s in $statuses; do [ "$s" -gt "$worst" ] && worst=$s; done
exit "$worst"
