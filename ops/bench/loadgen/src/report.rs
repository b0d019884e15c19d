//! Markdown output: one row per run, and the side-by-side comparison of a whole
//! benchmark with yiwang/etcd ratios.

use serde_json::Value;

pub const ROW_HEADER: &str = "| system | op | C | req/s | items/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | CPU % servers | CPU % loadgen | CPU % machine | server CPU µs/item |\n\
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn op_label(r: &Value) -> String {
    let op = r["op"].as_str().unwrap_or("?");
    let mut s = match op {
        "bulk" | "txn" => format!("{op}×{}", r["items_per_request"]),
        _ => op.to_string(),
    };
    if r["stale"].as_bool() == Some(true) {
        s.push_str(" (stale)");
    }
    s
}

pub fn row(r: &Value) -> String {
    if let Some(why) = r["failed"].as_str() {
        let why: String = why.chars().take(160).collect();
        return format!(
            "| {} | {} | {} | failed: {} |||||||||||\n",
            r["system"].as_str().unwrap_or("?"),
            op_label(r),
            r["concurrency"],
            why.replace('|', "/").replace('\n', " ")
        );
    }
    let l = &r["latency_ms"];
    let cpu = &r["cpu_pct"];
    format!(
        "| {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
        r["system"].as_str().unwrap_or("?"),
        op_label(r),
        r["concurrency"],
        f(&r["ops_per_s"]),
        f(&r["items_per_s"]),
        f(&l["p50"]),
        f(&l["p99"]),
        f(&l["p999"]),
        f(&l["max"]),
        r["errors"],
        f(&cpu["servers"]),
        f(&cpu["loadgen"]),
        f(&cpu["machine"]),
        f(&r["server_cpu_us_per_item"]),
    )
}

/// The last (linearizable) result of `system`/`op` at `c`.
fn find<'a>(results: &'a [Value], system: &str, op: &str, c: u64) -> Option<&'a Value> {
    results.iter().rev().find(|r| {
        r["system"] == system
            && r["op"] == op
            && r["concurrency"].as_u64() == Some(c)
            && r["stale"].as_bool() != Some(true)
    })
}

fn cell(r: Option<&Value>, items: bool) -> (String, String) {
    match r {
        Some(r) if r["failed"].is_string() => ("failed".into(), "–".into()),
        Some(r) => {
            let rate = if items {
                f(&r["items_per_s"])
            } else {
                f(&r["ops_per_s"])
            };
            let l = &r["latency_ms"];
            let errors = r["errors"].as_u64().unwrap_or(0);
            let e = if errors > 0 {
                format!(" ({errors} errors)")
            } else {
                String::new()
            };
            (
                format!("{rate:.0}{e}"),
                format!("{:.2} / {:.2}", f(&l["p50"]), f(&l["p99"])),
            )
        }
        None => ("–".into(), "–".into()),
    }
}

fn rate(r: Option<&Value>, items: bool) -> Option<f64> {
    r.filter(|r| !r["failed"].is_string()).map(|r| {
        if items {
            f(&r["items_per_s"])
        } else {
            f(&r["ops_per_s"])
        }
    })
}

/// The comparison table, then every run in detail.
pub fn table(results: &[Value]) -> String {
    let mut cs: Vec<u64> = results
        .iter()
        .filter_map(|r| r["concurrency"].as_u64())
        .collect();
    cs.sort_unstable();
    cs.dedup();
    // (label, yiwang op, per item?, etcd op, per item?)
    let pairs: [(&str, &str, bool, &str, bool); 4] = [
        ("write: register vs put", "register", false, "put", false),
        (
            "bulk write, items/s: bulk vs txn",
            "bulk",
            true,
            "txn",
            true,
        ),
        (
            "bulk datasets/s vs single puts/s",
            "bulk",
            true,
            "put",
            false,
        ),
        (
            "linearizable read: read vs get",
            "read",
            false,
            "get",
            false,
        ),
    ];
    let mut out = String::new();
    out.push_str("| C | workload | yiwang /s | yiwang p50 / p99 ms | etcd /s | etcd p50 / p99 ms | yiwang / etcd |\n");
    out.push_str("| ---: | --- | ---: | ---: | ---: | ---: | ---: |\n");
    for &c in &cs {
        for (label, yop, yitems, eop, eitems) in pairs {
            let y = find(results, "yiwang", yop, c);
            let e = find(results, "etcd", eop, c);
            if y.is_none() && e.is_none() {
                continue;
            }
            let (yr, yl) = cell(y, yitems);
            let (er, el) = cell(e, eitems);
            let ratio = match (rate(y, yitems), rate(e, eitems)) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                _ => "–".into(),
            };
            out.push_str(&format!(
                "| {c} | {label} | {yr} | {yl} | {er} | {el} | {ratio} |\n"
            ));
        }
    }
    out.push_str("\nEvery run:\n\n");
    out.push_str(ROW_HEADER);
    for r in results {
        out.push_str(&row(r));
    }
    out
}
