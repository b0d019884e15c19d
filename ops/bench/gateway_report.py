"""Writes the markdown table of ops/bench/gateway.sh from its JSON lines and wrk output.

Usage: gateway_report.py JSONL WRK_TXT REV MACHINE PATH SIZE
"""
import json, re, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
wrk = open(sys.argv[2]).read()
rev, machine, path, size = sys.argv[3:7]
print(f"# Gateway benchmark ({rev})\n")
print(f"{machine}. Records answer `{path}`: {size} bytes. yiwang-bench, HTTP/1.1, one keep-alive connection per client, mutual TLS with the same client certificate for both. Medians of the repeated runs.\n")
print("| clients | system | runs | req/s | p50 ms | p99 ms | server CPU % | errors | req/s vs nginx | added p99 ms |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
groups = {}
for r in rows:
    if "failed" in r:
        print(f"| {r.get('concurrency','')} | {r.get('note','')} | failed: {r['failed'][:80]} | | | | | | | |")
        continue
    groups.setdefault((r["concurrency"], r.get("note", "")), []).append(r)
med = lambda rs, f: statistics.median(f(r) for r in rs)
for (c, system), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "yiwang")):
    ops, p50, p99 = med(rs, lambda r: r["ops_per_s"]), med(rs, lambda r: r["latency_ms"]["p50"]), med(rs, lambda r: r["latency_ms"]["p99"])
    cpu = med(rs, lambda r: (r.get("cpu_pct") or {}).get("servers") or 0)
    ratio = added = ""
    base = groups.get((c, "nginx"))
    if system == "yiwang" and base:
        ratio = f"{ops / med(base, lambda r: r['ops_per_s']):.2f}×"
        added = f"{p99 - med(base, lambda r: r['latency_ms']['p99']):+.2f}"
    print(f"| {c} | {system} | {len(rs)} | {ops:.0f} | {p50:.2f} | {p99:.2f} | {cpu:.0f} | {sum(r['errors'] for r in rs)} | {ratio} | {added} |")
print("\nwrk against the same nginx proxy without client-certificate checking:\n")
print("| connections | req/s | p50 ms | p99 ms |")
print("| ---: | ---: | ---: | ---: |")
def ms(v):
    n, unit = float(re.match(r"[\d.]+", v).group()), re.sub(r"[\d.]", "", v)
    return n * {"us": 0.001, "ms": 1, "s": 1000}[unit]
for block in wrk.split("## wrk")[1:]:
    c = re.search(r"-c(\d+)", block).group(1)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", block)
    p50 = re.search(r"^\s+50%\s+(\S+)", block, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", block, re.M)
    if rps and p50 and p99:
        print(f"| {c} | {float(rps.group(1)):.0f} | {ms(p50.group(1)):.2f} | {ms(p99.group(1)):.2f} |")
    else:
        print(f"| {c} | wrk failed | | |")
