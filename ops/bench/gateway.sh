#!/usr/bin/env bash
# The gateway benchmark (issue 8): ~1 kB records requests through yiwang (mutual TLS,
# policy, SQLite source, masking, a durable audit record before the answer) vs nginx as
# a mutual-TLS reverse proxy in front of a backend serving the same answer, in one run
# on this machine, at 1, 64 and 256 connections.
#
#   ops/bench/gateway.sh
#
# Both are driven by the same load generator (`yiwang-bench run --op records`: HTTP/1.1,
# one keep-alive connection per client, the same client certificate), because yiwang
# requires a client certificate and wrk cannot present one. wrk is run against the
# nginx proxy (without client-certificate checking, on its own port) to show where the
# load generator's own ceiling is: if wrk gets far more from nginx than yiwang-bench
# does, the client, not nginx, limits the nginx numbers.
#
# nginx: Debian's nginx, 2 worker processes (one per core; yiwang's runtime has one
# thread per core), access log off, TLS 1.3 with the yiwang node certificate and
# `ssl_verify_client on` against the yiwang CA, proxying over keep-alive HTTP/1.1 to a
# second nginx server that returns the records answer from a file — the cost of a
# gateway that does nothing but terminate mutual TLS and forward.
#
# Environment: BENCH_SECS (10) measured seconds per run, BENCH_WARMUP (2),
# BENCH_CONCURRENCY ("1 64 256"), BENCH_REPEAT (3, systems interleaved; the table
# reports medians), BENCH_OUT (results prefix, default
# ops/bench/results/gateway-<date>), BENCH_NO_BUILD=1 or YIWANG_BIN/BENCH_BIN to use
# prebuilt binaries, BENCH_KEEP=1 keeps the temporary directory. Everything binds to
# loopback and is stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=ops/bench/lib.sh
. "$root/ops/bench/lib.sh"

bench_setup gateway "apt-get install nginx-light wrk curl python3" python3 curl nginx wrk

secs=${BENCH_SECS:-10}
warmup=${BENCH_WARMUP:-2}
concurrency=${BENCH_CONCURRENCY:-1 64 256}
repeat=${BENCH_REPEAT:-3}
out=${BENCH_OUT:-$root/ops/bench/results/gateway-$(date +%F)}

bench_binaries bench

bench_tmpdir
mkdir -p "$(dirname "$out")"
jsonl=$out.jsonl
wrk_out=$out-wrk.txt
: >"$jsonl"
: >"$wrk_out"

machine=$(bench_machine)
log "machine: $machine"

# The yiwang node: the demo, audit group commit (the default).
port=$(bench_free_port)
admin=$(bench_free_port)
demo=$tmp/demo
"$yiwang" demo --dir "$demo" --port "$port" --admin-port "$admin" --quiet >"$tmp/node.log" 2>&1 &
node_pid=$!
bench_wait_ready "$admin" "$node_pid" "$tmp/node.log"
certs=$demo/certs
tls_args=(--cacert "$certs/ca.pem" --cert "$certs/dsj-system.pem" --key "$certs/dsj-system.key")

# A records page of about 1 kB.
path=
for limit in 1 2 3 4 5 6 8; do
    p="/v1/datasets/320600-YJJ-00001/records?limit=$limit"
    size=$(curl -fsS "${tls_args[@]}" -H 'x-purpose: benchmark' "https://127.0.0.1:$port$p" | wc -c)
    path=$p
    [ "$size" -ge 1000 ] && break
done
curl -fsS "${tls_args[@]}" -H 'x-purpose: benchmark' "https://127.0.0.1:$port$path" >"$tmp/body.json"
size=$(wc -c <"$tmp/body.json")
log "records answer: $path, $size bytes"

# nginx: the mutual-TLS proxy, the same without client certificates (for wrk), and the
# backend returning the answer.
up=$(bench_free_port)
proxy=$(bench_free_port)
open=$(bench_free_port)
mkdir -p "$tmp/www" "$tmp/nginx"
cp "$tmp/body.json" "$tmp/www/body.json"
cat >"$tmp/nginx.conf" <<EOF
user root;
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    upstream backend { server 127.0.0.1:$up; keepalive 512; }
    server {
        listen 127.0.0.1:$up;
        root $tmp/www;
        location / { default_type application/json; try_files /body.json =404; }
    }
    server {
        listen 127.0.0.1:$proxy ssl;
        ssl_protocols TLSv1.3 TLSv1.2;
        ssl_certificate $certs/node-1.pem;
        ssl_certificate_key $certs/node-1.key;
        ssl_client_certificate $certs/ca.pem;
        ssl_verify_client on;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    server {
        listen 127.0.0.1:$open ssl;
        ssl_protocols TLSv1.3 TLSv1.2;
        ssl_certificate $certs/node-1.pem;
        ssl_certificate_key $certs/node-1.key;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
nginx -p "$tmp/nginx" -c "$tmp/nginx.conf" || die "nginx did not start; see $tmp/nginx-error.log"
for _ in $(seq 50); do [ -s "$tmp/nginx.pid" ] && break; sleep 0.1; done
nginx_pids=$(pgrep -P "$(cat "$tmp/nginx.pid")" | paste -sd, -)
nginx_size=$(curl -fsS "${tls_args[@]}" "https://127.0.0.1:$proxy$path" | wc -c)
[ "$nginx_size" -eq "$size" ] || die "nginx answers $nginx_size bytes, yiwang $size"
log "nginx $(nginx -v 2>&1 | cut -d/ -f2): proxy https://127.0.0.1:$proxy (mutual TLS), https://127.0.0.1:$open (wrk), workers $nginx_pids"

for ((rep = 1; rep <= repeat; rep++)); do
    for c in $concurrency; do
        for system in yiwang nginx; do
            if [ "$system" = yiwang ]; then url=https://127.0.0.1:$port pids=$node_pid; else url=https://127.0.0.1:$proxy pids=$nginx_pids; fi
            "$bench" run --system yiwang --op records --records-path "$path" -c "$c" \
                --duration "$secs" --warmup "$warmup" --nodes "$url" --ca "$certs/ca.pem" \
                --cert "$certs/dsj-system.pem" --key "$certs/dsj-system.key" \
                --pids "$pids" --note "$system" --jsonl "$jsonl" >&2
        done
    done
done

log "wrk against nginx (no client certificate): the load generator's ceiling"
for c in $concurrency; do
    t=$(( c < 2 ? 1 : 2 ))
    echo "## wrk -t$t -c$c -d${secs}s --latency https://127.0.0.1:$open$path" >>"$wrk_out"
    wrk -t"$t" -c"$c" -d"${secs}s" --latency "https://127.0.0.1:$open$path" >>"$wrk_out" 2>&1 || true
done

python3 "$root/ops/bench/gateway_report.py" "$jsonl" "$wrk_out" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$machine" "$path" "$size" >"$out.md"
cat "$out.md"
log "results: $out.md ($jsonl, $wrk_out)"
