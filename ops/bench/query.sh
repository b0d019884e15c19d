#!/usr/bin/env bash
# Cross-department SQL through the gateway vs the same SQL run directly on the
# databases (issue 4). See ops/bench/README.md, "Queries".
#
#   ops/bench/query.sh            full run (~2.5 min after the build)
#
# Environment: BENCH_SECS (10) measured seconds per run, BENCH_WARMUP (2),
# BENCH_CONCURRENCY ("1,8"), BENCH_OUT (results file prefix, default
# ops/bench/results/query-<date>), BENCH_KEEP=1 keeps the temporary directory,
# BENCH_NO_BUILD=1 uses the binaries already in target/release (or YIWANG_BIN and
# BENCH_BIN), BENCH_AGGREGATE_PUSHDOWN (true) the two database sources'
# `aggregate_pushdown` (false keeps GROUP BY in the gateway), BENCH_HOLD=1 sets
# everything up, writes $tmp/env (the node, certificates, database URLs, the cases)
# and waits until interrupted instead of measuring: for profiling by hand.
#
# It starts throwaway PostgreSQL and MariaDB servers (ops/testdb.sh, Debian packages),
# a one-node `yiwang demo`, copies 交通运输局's truck records into PostgreSQL and
# 供电公司's hourly power use into MariaDB, points the two datasets at them (应急管理局's
# enterprises stay in the demo's SQLite), grants 大数据局's system the columns the
# queries use, and for each case measures the gateway and the direct database side by
# side. The direct baseline of the three-department scenario is the one a
# point-to-point copy gives: all three tables copied into one PostgreSQL database.
# Everything binds to loopback and is stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=ops/bench/lib.sh
. "$root/ops/bench/lib.sh"

die() { printf 'bench/query: %s\n' "$*" >&2; exit 1; }
command -v python3 >/dev/null || die "python3 is required"
command -v curl >/dev/null || die "curl is required"

secs=${BENCH_SECS:-10}
warmup=${BENCH_WARMUP:-2}
conc=${BENCH_CONCURRENCY:-1,8}
aggregates=${BENCH_AGGREGATE_PUSHDOWN:-true}
case $aggregates in true | false) ;; *) die "BENCH_AGGREGATE_PUSHDOWN must be true or false" ;; esac
out=${BENCH_OUT:-$root/ops/bench/results/query-$(date +%F)}
target=${CARGO_TARGET_DIR:-$root/target}

if [ -z "${BENCH_NO_BUILD:-}" ] && [ -z "${YIWANG_BIN:-}${BENCH_BIN:-}" ]; then
    echo "bench/query: building release binaries" >&2
    cargo build --release -q -p yiwang-gateway -p yiwang-bench
fi
yiwang=${YIWANG_BIN:-$target/release/yiwang}
bench=${BENCH_BIN:-$target/release/yiwang-bench}
[ -x "$yiwang" ] || die "no $yiwang"
[ -x "$bench" ] || die "no $bench"

tmp=$(mktemp -d /tmp/yiwang-bench-query.XXXXXX)
# The database servers may run as their own system users: they must reach $tmp/db.
chmod 755 "$tmp"
node_pid=
cleanup() {
    [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null
    ops/testdb.sh stop "$tmp/db" >/dev/null 2>&1 || true
    if [ -n "${BENCH_KEEP:-}" ]; then
        echo "bench/query: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

ops/testdb.sh start "$tmp/db" >&2
# shellcheck disable=SC1091
. "$tmp/db/env"

port=$(bench_free_port)
admin=$(bench_free_port)
demo=$tmp/demo

wait_ready() { bench_wait_ready "$admin" "$node_pid" "$tmp/node.log"; }

echo "bench/query: creating the demo in $demo" >&2
"$yiwang" demo --dir "$demo" --port "$port" --admin-port "$admin" --quiet >"$tmp/node.log" 2>&1 &
node_pid=$!
wait_ready

export YIWANG_SERVER="https://127.0.0.1:$port" YIWANG_CA="$demo/certs/ca.pem"
as() { YIWANG_CERT="$demo/certs/$1.pem" YIWANG_KEY="$demo/certs/$1.key" "$yiwang" "${@:2}"; }
purpose=性能基准测试

# Copy the three scenario tables out of the demo's SQLite files: trucks and
# enterprises into PostgreSQL, power into both (PostgreSQL for the direct scenario,
# MariaDB as the source the gateway reads).
python3 - "$demo/sources" "$tmp" <<'EOF'
import sqlite3, sys
src, out = sys.argv[1], sys.argv[2]
def dump(db, table, name, mysql):
    c = sqlite3.connect(f"{src}/{db}")
    cols = c.execute(f'PRAGMA table_info("{table}")').fetchall()
    kinds = {"TEXT": ("TEXT", "VARCHAR(255)"), "INTEGER": ("BIGINT", "BIGINT"),
             "REAL": ("DOUBLE PRECISION", "DOUBLE"), "BOOLEAN": ("BOOLEAN", "BOOLEAN"),
             "DATE": ("DATE", "DATE"), "DATETIME": ("TIMESTAMP", "DATETIME")}
    defs = ", ".join(f"{n} {kinds[t.upper()][1 if mysql else 0]}" for _, n, t, *_ in cols)
    lines = [f"DROP TABLE IF EXISTS {name};", f"CREATE TABLE {name} ({defs});"]
    rows = c.execute(f'SELECT * FROM "{table}"').fetchall()
    def lit(v):
        if v is None: return "NULL"
        if isinstance(v, (int, float)): return repr(v)
        return "'" + str(v).replace("'", "''") + "'"
    names = ", ".join(n for _, n, *_ in cols)
    for i in range(0, len(rows), 500):
        vals = ", ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows[i:i + 500])
        lines.append(f"INSERT INTO {name} ({names}) VALUES {vals};")
    return "\n".join(lines) + "\n", len(rows)
pg, my = [], []
for db, table, name, to_pg, to_my in [
        ("yjj.sqlite", "hazchem_enterprises", "bench_enterprises", True, False),
        ("jtj.sqlite", "hazmat_truck_checkpoints", "bench_trucks", True, False),
        ("gdgs.sqlite", "enterprise_hourly_power", "bench_power", True, True)]:
    for wanted, acc, mysql in [(to_pg, pg, False), (to_my, my, True)]:
        if wanted:
            sql, n = dump(db, table, name, mysql)
            acc.append(sql)
    print(f"bench/query: {table}: {n} rows", file=sys.stderr)
open(f"{out}/load-pg.sql", "w").write("".join(pg) + "ANALYZE;\n")
open(f"{out}/load-mysql.sql", "w").write("".join(my) + "ANALYZE TABLE bench_power;\n")
EOF
psql "$YIWANG_TEST_PG_URL" -q -v ON_ERROR_STOP=1 -f "$tmp/load-pg.sql" >/dev/null
read -r my_host my_port my_user my_pass my_db < <(python3 -c '
import sys, urllib.parse as u; p = u.urlparse(sys.argv[1])
print(p.hostname, p.port, u.unquote(p.username), u.unquote(p.password), p.path.lstrip("/"))' "$YIWANG_TEST_MYSQL_URL")
mariadb --no-defaults -h "$my_host" -P "$my_port" -u "$my_user" "-p$my_pass" "$my_db" <"$tmp/load-mysql.sql" >/dev/null

# Serve the demo again with the two database sources (credentials in node config).
kill "$node_pid"; wait "$node_pid" 2>/dev/null || true
pg_url_no_pass=$(python3 -c '
import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); n = p.netloc.split("@")
print(u.urlunparse(p._replace(netloc=n[0].split(":")[0] + "@" + n[1])))' "$YIWANG_TEST_PG_URL")
pg_pass=$(python3 -c 'import sys, urllib.parse as u; print(u.unquote(u.urlparse(sys.argv[1]).password or ""))' "$YIWANG_TEST_PG_URL")
my_url_no_pass="mysql://$my_user@$my_host:$my_port/$my_db"
cp "$demo/node.toml" "$tmp/bench.toml"
cat >>"$tmp/bench.toml" <<EOF

[sources.jtj-pg]
kind = "postgres"
url = "$pg_url_no_pass"
${pg_pass:+password = \"$pg_pass\"}
aggregate_pushdown = $aggregates

[sources.gdgs-mariadb]
kind = "mysql"
url = "$my_url_no_pass"
password = "$my_pass"
aggregate_pushdown = $aggregates
EOF
"$yiwang" serve --config "$tmp/bench.toml" >>"$tmp/node.log" 2>&1 &
node_pid=$!
wait_ready

# Point the datasets at the databases, as their stewards.
move() {
    local steward=$1 id=$2 source=$3 table=$4
    as "$steward" dataset show "$id" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for k in ("published_at", "updated_at", "version", "status"):
    d.pop(k, None)
d["source"] = {"id": sys.argv[1], "table": sys.argv[2]}
json.dump(d, open(sys.argv[3], "w"), ensure_ascii=False)' "$source" "$table" "$tmp/$id.json"
    as "$steward" dataset update "$tmp/$id.json" >/dev/null
}
move jtj-steward 320600-JTJ-00001 jtj-pg bench_trucks
move gdgs-steward 320600-GDGS-00001 gdgs-mariadb bench_power

# 大数据局's system gets the columns the queries use, approved by each provider.
grant() {
    local steward=$1 dataset=$2 fields=$3 id
    id=$(as dsj-system access request "$dataset" --purpose "$purpose" --fields "$fields" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
    as "$steward" access approve "$id" >/dev/null
}
grant jtj-steward 320600-JTJ-00001 consignee_uscc,pass_time
grant gdgs-steward 320600-GDGS-00001 uscc,hour,kwh

# The cases: gateway SQL and the direct SQL asking the same question.
uscc=$(python3 -c 'import re,sys; print(re.search(r"SCENARIO_SHUTDOWN_USCC: &str = \"([^\"]+)\"", open(sys.argv[1]).read()).group(1))' adapters/src/demo.rs)
python3 - "$demo/scenario.sql" "$uscc" >"$tmp/spec.json" <<'EOF'
import json, sys
scenario = open(sys.argv[1]).read()
uscc = sys.argv[2]
direct = (scenario.replace('"320600-JTJ"."320600-JTJ-00001"', "bench_trucks")
          .replace('"320600-GDGS"."320600-GDGS-00001"', "bench_power")
          .replace('"320600-YJJ"."320600-YJJ-00001"', "bench_enterprises"))
trucks = f"SELECT consignee_uscc, pass_time FROM {{}} WHERE consignee_uscc = '{uscc}'"
power = "SELECT uscc, hour, kwh FROM {} WHERE kwh > 2000"
json.dump([
    {"name": "scenario: 3 departments, SQLite + PostgreSQL + MariaDB",
     "sql": scenario, "direct": "postgres", "direct_sql": direct},
    {"name": "filtered read: trucks of one company",
     "sql": trucks.format('"320600-JTJ"."320600-JTJ-00001"'),
     "direct": "postgres", "direct_sql": trucks.format("bench_trucks")},
    {"name": "filtered read: power above 2000 kWh",
     "sql": power.format('"320600-GDGS"."320600-GDGS-00001"'),
     "direct": "mysql", "direct_sql": power.format("bench_power")},
], sys.stdout, ensure_ascii=False, indent=1)
EOF

if [ -n "${BENCH_HOLD:-}" ]; then
    {
        echo "export YIWANG_SERVER=$YIWANG_SERVER YIWANG_CA=$YIWANG_CA"
        echo "export YIWANG_CERT=$demo/certs/dsj-system.pem YIWANG_KEY=$demo/certs/dsj-system.key"
        echo "export YIWANG_TEST_PG_URL='$YIWANG_TEST_PG_URL' YIWANG_TEST_MYSQL_URL='$YIWANG_TEST_MYSQL_URL'"
        echo "export BENCH_SPEC=$tmp/spec.json BENCH_PURPOSE=$purpose BENCH_NODE_PID=$node_pid"
    } >"$tmp/env"
    echo "bench/query: holding; '. $tmp/env' to reach it, interrupt to stop" >&2
    while kill -0 "$node_pid" 2>/dev/null; do sleep 1; done
    exit 0
fi

mkdir -p "$(dirname "$out")"
: >"$out.jsonl"
echo "bench/query: measuring (${secs}s per run, C=$conc)" >&2
"$bench" query --spec "$tmp/spec.json" --node "$YIWANG_SERVER" --ca "$YIWANG_CA" \
    --cert "$demo/certs/dsj-system.pem" --key "$demo/certs/dsj-system.key" \
    --pg "$YIWANG_TEST_PG_URL" --mysql "$YIWANG_TEST_MYSQL_URL" \
    -c "$conc" --duration "$secs" --warmup "$warmup" --purpose "$purpose" \
    --jsonl "$out.jsonl" >/dev/null
{
    echo "# Query benchmark $(date -u +%FT%TZ), yiwang $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
    echo
    echo "Machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/{print $2}') GiB"
    echo
    echo "Database sources: aggregate_pushdown = $aggregates"
    echo
    "$bench" report "$out.jsonl"
} >"$out.md"
cat "$out.md"
echo "bench/query: results in $out.md and $out.jsonl" >&2
