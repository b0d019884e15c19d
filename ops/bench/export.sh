#!/usr/bin/env bash
# The bulk-export benchmark (issue 8): a dataset of ≥ 1 GB read through the gateway in
# two ways — page by page (`yiwang records --all --format ndjson`: mutual TLS, policy and
# a durable audit record for every page, keyset paging over SQLite) and as one streamed
# SQL answer (`POST /v1/query` `SELECT *` as NDJSON, fetched by curl: one audit record,
# the answer encoded and sent as SQLite is read) — vs raw TLS throughput on loopback
# (nginx serving a file of the same size over HTTPS, fetched by curl), in one run.
#
#   ops/bench/export.sh
#
# The source is a generated SQLite table of BENCH_ROWS rows (5,200,000: about 1.04 GB
# as NDJSON) registered as a dataset of 公安局 and read by its own system (no masking).
#
# Environment: BENCH_ROWS (5200000), BENCH_PAGE (10000 rows a page, the node's
# limits.max_rows), BENCH_REPEAT (3), BENCH_OUT (results prefix, default
# ops/bench/results/export-<date>), BENCH_NO_BUILD=1 or YIWANG_BIN to use a prebuilt
# binary, BENCH_KEEP=1 keeps the temporary directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=ops/bench/lib.sh
. "$root/ops/bench/lib.sh"

bench_setup export "apt-get install nginx-light curl python3" python3 curl nginx

rows=${BENCH_ROWS:-5200000}
page=${BENCH_PAGE:-10000}
repeat=${BENCH_REPEAT:-3}
out=${BENCH_OUT:-$root/ops/bench/results/export-$(date +%F)}
bench_binaries

bench_tmpdir
mkdir -p "$(dirname "$out")"
machine=$(bench_machine)
log "machine: $machine"

log "generating $rows rows"
python3 - "$tmp/bulk.sqlite" "$rows" <<'EOF'
import sqlite3, sys
path, rows = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode=OFF")
db.execute("PRAGMA synchronous=OFF")
db.execute("CREATE TABLE readings (meter TEXT NOT NULL, at TEXT NOT NULL, kwh REAL NOT NULL, station TEXT NOT NULL, note TEXT NOT NULL)")
def gen():
    for i in range(rows):
        yield (f"GD-{i % 200000:07d}", f"2026-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:00:00",
               round((i * 7919 % 100000) / 100, 2), f"崇川区变电站{i % 97:03d}",
               "按小时抄表，供电公司计量中心采集，用于研判企业实际生产经营状态")
db.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?)", gen())
db.commit()
EOF

# The demo node, then served again with the bulk source added.
port=$(bench_free_port)
admin=$(bench_free_port)
demo=$tmp/demo
"$yiwang" demo --dir "$demo" --port "$port" --admin-port "$admin" --quiet >"$tmp/node.log" 2>&1 &
node_pid=$!
bench_wait_ready "$admin" "$node_pid" "$tmp/node.log"
kill "$node_pid"; wait "$node_pid" 2>/dev/null || true
cat "$demo/node.toml" >"$tmp/node.toml"
printf '\n[sources.bulk]\nkind = "sqlite"\npath = "%s"\n' "$tmp/bulk.sqlite" >>"$tmp/node.toml"
# The streamed SQL export needs limits above the defaults (100,000 rows, 30 s).
YIWANG__QUERY__MAX_ROWS=$((rows + 1)) YIWANG__QUERY__TIMEOUT_MS=3600000 \
    "$yiwang" serve --config "$tmp/node.toml" >>"$tmp/node.log" 2>&1 &
node_pid=$!
bench_wait_ready "$admin" "$node_pid" "$tmp/node.log"
certs=$demo/certs
as() { YIWANG_SERVER="https://127.0.0.1:$port" YIWANG_CA="$certs/ca.pem" YIWANG_CERT="$certs/$1.pem" YIWANG_KEY="$certs/$1.key" "${@:2}"; }
cat >"$tmp/dataset.json" <<'EOF'
{"id": "320600-GAJ-99001", "dept": "320600-GAJ", "title": "分时用电量读数（批量导出基准）",
 "summary": "生成的大表，用于测量网关批量导出吞吐。", "keywords": ["基准"], "theme": "基准",
 "format": "table", "share_type": "unconditional", "update_cycle": "monthly",
 "source": {"id": "bulk", "table": "readings"},
 "fields": [
  {"name": "meter", "title": "电表号", "type": "string", "sensitivity": "public"},
  {"name": "at", "title": "时间", "type": "datetime", "sensitivity": "public"},
  {"name": "kwh", "title": "用电量", "type": "float", "sensitivity": "public"},
  {"name": "station", "title": "变电站", "type": "string", "sensitivity": "public"},
  {"name": "note", "title": "说明", "type": "string", "sensitivity": "public"}]}
EOF
curl -fsS --cacert "$certs/ca.pem" --cert "$certs/gaj-steward.pem" --key "$certs/gaj-steward.key" \
    -H 'content-type: application/json' --data-binary @"$tmp/dataset.json" \
    "https://127.0.0.1:$port/v1/datasets" >/dev/null || die "cannot register the bulk dataset"

export_once() {
    local start end bytes
    start=$(date +%s.%N)
    bytes=$(as gaj-system "$yiwang" records 320600-GAJ-99001 --purpose benchmark --all \
        --format ndjson --limit "$page" | wc -c)
    end=$(date +%s.%N)
    echo "$bytes $start $end"
}

query_once() {
    curl -fsS --cacert "$certs/ca.pem" --cert "$certs/gaj-system.pem" --key "$certs/gaj-system.key" \
        -H 'content-type: application/json' -o /dev/null -w '%{size_download} %{time_total} %{speed_download}\n' \
        --data-binary '{"sql": "SELECT * FROM \"320600-GAJ\".\"320600-GAJ-99001\"", "purpose": "benchmark", "format": "ndjson"}' \
        "https://127.0.0.1:$port/v1/query" |
        awk '{ printf "query %d %.3f %.1f\n", $1, $2, $3 / 1048576 }'
}

# The raw-TLS baseline: nginx serving a file of the export's size over HTTPS.
log "exporting once to size the baseline file"
read -r bytes s e < <(export_once)
[ "$bytes" -ge 1000000000 ] || die "the export is only $bytes bytes: raise BENCH_ROWS"
head -c "$bytes" /dev/urandom >"$tmp/blob"
tls=$(bench_free_port)
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx.conf" <<EOF
user root;
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$tls ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate $certs/node-1.pem;
        ssl_certificate_key $certs/node-1.key;
        ssl_client_certificate $certs/ca.pem;
        ssl_verify_client on;
        root $tmp;
        location = /blob { default_type application/octet-stream; }
    }
}
EOF
nginx -p "$tmp/nginx" -c "$tmp/nginx.conf" || die "nginx did not start; see $tmp/nginx-error.log"
sleep 0.5

: >"$out.txt"
for ((rep = 1; rep <= repeat; rep++)); do
    read -r bytes s e < <(export_once)
    awk -v b="$bytes" -v s="$s" -v e="$e" 'BEGIN { printf "yiwang %d %.3f %.1f\n", b, e - s, b / (e - s) / 1048576 }' | tee -a "$out.txt" >&2
    query_once | tee -a "$out.txt" >&2
    curl -fsS --cacert "$certs/ca.pem" --cert "$certs/gaj-system.pem" --key "$certs/gaj-system.key" \
        -o /dev/null -w 'tls %{size_download} %{time_total} %{speed_download}\n' "https://127.0.0.1:$tls/blob" |
        awk '{ printf "tls %d %.3f %.1f\n", $2, $3, $4 / 1048576 }' | tee -a "$out.txt" >&2
done
audit_records=$(curl -fsS "http://127.0.0.1:$admin/metrics" | awk '/^yiwang_audit_records_total/ {print $2}')

python3 - "$out.txt" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$machine" "$rows" "$page" "$audit_records" >"$out.md" <<'EOF'
import statistics, sys
lines = [l.split() for l in open(sys.argv[1]) if l.strip()]
rev, machine, rows, page, audit = sys.argv[2:7]
runs = {}
for kind, b, secs, mib in lines:
    runs.setdefault(kind, []).append((int(b), float(secs), float(mib)))
print(f"# Bulk export benchmark ({rev})\n")
print(f"{machine}. {int(rows):,} rows exported as NDJSON through the gateway, in pages of {int(page):,} (`yiwang records --all`) and as one streamed SQL answer (`POST /v1/query`, `SELECT *`, curl), vs the export's number of bytes over HTTPS from nginx (TLS 1.3, mutual TLS, sendfile off for TLS) fetched by curl. Medians of {len(runs['tls'])} runs; {audit} audit records were written in all.\n")
print("| path | bytes | seconds | MiB/s | share of raw TLS |")
print("| --- | ---: | ---: | ---: | ---: |")
tls = statistics.median(r[2] for r in runs["tls"])
names = {"yiwang": "yiwang records, NDJSON, all pages", "query": "yiwang query, NDJSON, streamed", "tls": "raw TLS (nginx file, curl)"}
for kind in ("yiwang", "query", "tls"):
    rs = runs[kind]
    mib = statistics.median(r[2] for r in rs)
    print(f"| {names[kind]} | {rs[0][0]:,} | {statistics.median(r[1] for r in rs):.1f} | {mib:.0f} | {mib / tls:.0%} |")
EOF
cat "$out.md"
log "results: $out.md"
