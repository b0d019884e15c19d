#!/usr/bin/env python3
"""Writes yiwang.json, the Grafana dashboard for the metrics of /metrics.

Run it after changing the panels: python3 ops/grafana/make_dashboard.py
The test `dashboard_queries_name_only_exported_metrics` checks that every metric the
dashboard queries is one a node exports.
"""
import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}
panels = []
y = 0


def row(title):
    global y
    panels.append({"type": "row", "title": title, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "id": len(panels) + 1})
    y += 1


def panel(title, targets, x, w=8, h=8, unit="short", kind="timeseries", desc=""):
    panels.append({
        "id": len(panels) + 1,
        "type": kind,
        "title": title,
        "description": desc,
        "datasource": DS,
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{"datasource": DS, "expr": e, "legendFormat": l, "refId": chr(65 + i)}
                    for i, (e, l) in enumerate(targets)],
    })


def next_line(h=8):
    global y
    y += h


I = '{instance=~"$instance"}'
S = 'instance=~"$instance"'

row("Requests")
panel("Requests/s by route and status",
      [(f'sum by (route, status) (rate(yiwang_http_requests_total{I}[$__rate_interval]))', "{{route}} {{status}}")],
      0, unit="reqps")
panel("Requests/s by department",
      [(f'sum by (dept) (rate(yiwang_http_requests_total{I}[$__rate_interval]))', "{{dept}}")],
      8, unit="reqps")
panel("Latency p50 / p99 by route",
      [(f'histogram_quantile(0.99, sum by (le, route) (rate(yiwang_http_request_seconds_bucket{I}[$__rate_interval])))', "p99 {{route}}"),
       (f'histogram_quantile(0.5, sum by (le, route) (rate(yiwang_http_request_seconds_bucket{I}[$__rate_interval])))', "p50 {{route}}")],
      16, unit="s")
next_line()
panel("Errors (5xx) and refusals (429)",
      [(f'sum by (route) (rate(yiwang_http_requests_total{{{S}, status=~"5.."}}[$__rate_interval]))', "5xx {{route}}"),
       (f'rate(yiwang_rate_limited_total{I}[$__rate_interval])', "429 rate limited {{instance}}")],
      0, unit="reqps")
panel("Policy decisions by outcome",
      [(f'sum by (action, decision) (rate(yiwang_policy_decisions_total{I}[$__rate_interval]))', "{{action}} {{decision}}")],
      8, unit="ops", desc="Audited decisions; deny = refused by policy")
panel("Source rows read and source errors",
      [(f'sum by (source) (rate(yiwang_source_rows_read_total{I}[$__rate_interval]))', "rows {{source}}"),
       (f'sum by (source) (rate(yiwang_source_errors_total{I}[$__rate_interval]))', "errors {{source}}")],
      16, unit="short")
next_line()

row("Raft")
panel("Role", [(f'max by (instance, state) (yiwang_raft_state{I}) == 1', "{{instance}} {{state}}")],
      0, w=6, kind="table")
panel("Term and leader",
      [(f'yiwang_raft_term{I}', "term {{instance}}"), (f'yiwang_raft_leader{I}', "leader seen by {{instance}}")],
      6, w=6)
panel("Apply lag and replication lag (entries)",
      [(f'yiwang_raft_apply_lag{I}', "apply lag {{instance}}"),
       (f'yiwang_raft_replication_lag{I}', "peer {{peer}} behind leader {{instance}}")],
      12, w=6)
panel("Applied index / last log index",
      [(f'yiwang_raft_last_applied{I}', "applied {{instance}}"), (f'yiwang_raft_last_log_index{I}', "log {{instance}}")],
      18, w=6)
next_line()
panel("Leader: ms since quorum acknowledged",
      [(f'yiwang_raft_millis_since_quorum_ack{I} >= 0', "{{instance}}")], 0, w=8, unit="ms")
panel("Search documents", [(f'yiwang_search_documents{I}', "{{instance}}")], 8, w=8)
panel("TLS: handshake failures/s, reload failures",
      [(f'rate(yiwang_tls_handshake_failures_total{I}[$__rate_interval])', "handshake failures {{instance}}"),
       (f'increase(yiwang_tls_reloads_total{{{S}, result="failed"}}[1h])', "reload failures (1h) {{instance}}")],
      16, w=8)
next_line()

row("Audit trail")
panel("Durable audit records/s",
      [(f'rate(yiwang_audit_records_total{I}[$__rate_interval])', "records {{instance}}"),
       (f'rate(yiwang_audit_commits_total{I}[$__rate_interval])', "group commits {{instance}}")],
      0, unit="ops")
panel("fsync and wait p99",
      [(f'histogram_quantile(0.99, sum by (le, instance) (rate(yiwang_audit_fsync_seconds_bucket{I}[$__rate_interval])))', "fsync p99 {{instance}}"),
       (f'histogram_quantile(0.99, sum by (le, instance) (rate(yiwang_audit_wait_seconds_bucket{I}[$__rate_interval])))', "request wait p99 {{instance}}")],
      8, unit="s")
panel("Queue depth and write failures",
      [(f'yiwang_audit_queue_depth{I}', "queued {{instance}}"),
       (f'increase(yiwang_audit_write_failures_total{I}[$__rate_interval])', "failures {{instance}}")],
      16, desc="Any failure means data requests were refused with 503 (see /readyz)")
next_line()
panel("Node certificate: days left",
      [(f'(yiwang_tls_certificate_not_after_seconds{I} - time()) / 86400', "{{instance}}")],
      0, w=8, unit="d", kind="stat")
panel("Revoked certificates listed", [(f'yiwang_tls_revoked_certificates{I}', "{{instance}}")], 8, w=8, kind="stat")
next_line()

dashboard = {
    "title": "yiwang",
    "uid": "yiwang-overview",
    "tags": ["yiwang"],
    "timezone": "browser",
    "schemaVersion": 39,
    "version": 1,
    "refresh": "30s",
    "time": {"from": "now-6h", "to": "now"},
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
        {"name": "instance", "type": "query", "datasource": DS, "label": "Node",
         "query": "label_values(yiwang_raft_term, instance)", "includeAll": True, "multi": True,
         "current": {"text": "All", "value": "$__all"}, "refresh": 2},
    ]},
    "panels": panels,
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "yiwang.json")
with open(out, "w") as f:
    json.dump(dashboard, f, indent=2, ensure_ascii=False)
    f.write("\n")
print(f"wrote {out}: {sum(1 for p in panels if p['type'] != 'row')} panels")
