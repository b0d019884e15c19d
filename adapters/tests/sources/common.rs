//! Helpers shared by the source tests: the demo scenario, the test servers, running a
//! DataFusion query and looking at what its scans sent to the source, and the "trap"
//! table whose rows catch collation, case, padding, NULL and time-format differences.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion::prelude::SessionContext;
use yiwang_adapters::sqlite::SqliteSource;
use yiwang_adapters::{AdapterError, arrow_schema, demo};
use yiwang_catalog::model::{Field, FieldType, Sensitivity};

pub fn field(name: &str, field_type: FieldType) -> Field {
    Field {
        name: name.to_string(),
        title: name.to_string(),
        field_type,
        sensitivity: Sensitivity::Public,
        masking: None,
    }
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run via ops/test.sh, or `ops/testdb.sh start DIR && . DIR/env`")
    })
}

/// `postgres://yiwang@127.0.0.1:PORT/yiwang_test` (trust authentication).
pub fn pg_url() -> String {
    required_env("YIWANG_TEST_PG_URL")
}

/// The MySQL URL without its password, and the password.
pub fn mysql_url() -> (String, String) {
    let mut url = reqwest::Url::parse(&required_env("YIWANG_TEST_MYSQL_URL"))
        .expect("YIWANG_TEST_MYSQL_URL is a URL");
    let password = url.password().unwrap_or_default().to_string();
    url.set_password(None).expect("can drop the password");
    (url.to_string(), password)
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The demo scenario databases, created once per process (and reused across runs).
pub fn scenario_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("adapters-demo");
        demo::create_scenario_databases(&dir).expect("demo databases");
        dir
    })
    .clone()
}

/// The SQLite source `yjj-db`, `jtj-db` or `gdgs-db` of the scenario.
pub fn scenario_source(source_id: &str) -> SqliteSource {
    let file = demo::SCENARIO_SOURCES
        .iter()
        .find(|s| s.source_id == source_id)
        .expect("a scenario source")
        .file;
    SqliteSource::new(source_id, scenario_dir().join(file), 4, 5000)
}

/// The catalog fields of a scenario table.
pub fn scenario_fields(table: &str) -> Vec<Field> {
    demo::scenario_tables()
        .into_iter()
        .find(|t| t.table == table)
        .expect("a scenario table")
        .columns
}

/// Every row of a scenario table as text (NULL as `None`), in rowid order.
pub fn scenario_rows(source_id: &str, table: &str) -> Vec<Vec<Option<String>>> {
    let path = scenario_source(source_id).path().to_path_buf();
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
        .unwrap();
    let width = stmt.column_count();
    stmt.query_map([], |row| {
        (0..width)
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => None,
                    rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
                    rusqlite::types::ValueRef::Real(x) => Some(x.to_string()),
                    rusqlite::types::ValueRef::Text(t) => {
                        Some(String::from_utf8(t.to_vec()).unwrap())
                    }
                    rusqlite::types::ValueRef::Blob(_) => panic!("no blobs in the demo"),
                })
            })
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// What one scan of a source did.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The plan node's `EXPLAIN` line, with the SQL or HTTP request.
    pub line: String,
    pub rows_read: usize,
    pub output_rows: usize,
}

fn scans(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<Scan>) {
    if matches!(plan.name(), "SqlExec" | "HttpJsonExec") {
        let metrics = plan.metrics().unwrap_or_default();
        out.push(Scan {
            line: displayable(plan.as_ref())
                .one_line()
                .to_string()
                .trim_end()
                .to_string(),
            rows_read: metrics.sum_by_name("rows_read").map_or(0, |v| v.as_usize()),
            output_rows: metrics.output_rows().unwrap_or(0),
        });
    }
    for child in plan.children() {
        scans(child, out);
    }
}

/// Runs `sql` and returns its rows (formatted, `|`-separated, in result order) and
/// the source scans it made.
pub async fn query(
    ctx: &SessionContext,
    sql: &str,
) -> Result<(Vec<String>, Vec<Scan>), DataFusionError> {
    let plan = ctx.sql(sql).await?.create_physical_plan().await?;
    let batches = collect(Arc::clone(&plan), ctx.task_ctx()).await?;
    let mut found = Vec::new();
    scans(&plan, &mut found);
    Ok((rows(&batches), found))
}

pub fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter<'_>> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for row in 0..batch.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out
}

pub fn sorted(mut rows: Vec<String>) -> Vec<String> {
    rows.sort();
    rows
}

/// The adapter error inside a failed query, which must be there.
pub fn adapter_error(err: &DataFusionError) -> AdapterError {
    yiwang_adapters::adapter_error(err).unwrap_or_else(|| panic!("no adapter error in {err}"))
}

pub fn context_with(tables: &[(&str, Arc<dyn TableProvider>)]) -> SessionContext {
    let ctx = SessionContext::new();
    ctx.add_optimizer_rule(Arc::new(yiwang_adapters::AggregatePushdown));
    for (name, table) in tables {
        ctx.register_table(*name, Arc::clone(table)).unwrap();
    }
    ctx
}

// ---------------------------------------------------------------------------------
// The trap table.

/// One row of the trap table; times as written in most sources.
pub struct TrapRow {
    pub k: i64,
    pub s: Option<&'static str>,
    pub d: Option<&'static str>,
    pub t: Option<&'static str>,
    pub x: Option<f64>,
    pub b: Option<bool>,
}

pub fn trap_fields() -> Vec<Field> {
    vec![
        field("k", FieldType::Integer),
        field("s", FieldType::String),
        field("d", FieldType::Date),
        field("t", FieldType::Datetime),
        field("x", FieldType::Float),
        field("b", FieldType::Boolean),
    ]
}

pub fn trap_rows() -> Vec<TrapRow> {
    let row = |k, s, d, t, x, b| TrapRow { k, s, d, t, x, b };
    vec![
        row(
            1,
            Some("abc"),
            Some("2026-10-01"),
            Some("2026-10-01 22:00:00"),
            Some(1.5),
            Some(true),
        ),
        row(
            2,
            Some("ABC"),
            Some("2026-10-02"),
            Some("2026-10-01 21:59:59"),
            Some(-2.0),
            Some(false),
        ),
        row(
            3,
            Some("abd"),
            None,
            Some("2026-10-01 22:00:01"),
            Some(0.0),
            None,
        ),
        row(4, Some("Abc"), Some("2025-12-31"), None, None, Some(true)),
        row(
            5,
            Some("南通恒昌化工有限公司"),
            Some("2026-10-01"),
            Some("2026-10-02 00:00:00"),
            Some(10000.25),
            Some(false),
        ),
        row(
            6,
            None,
            Some("2026-01-01"),
            Some("2026-09-30 23:59:59"),
            Some(3.0),
            Some(true),
        ),
        row(
            7,
            Some("abc "),
            Some("2026-10-31"),
            Some("2026-10-31 23:00:00"),
            Some(2.25),
            Some(false),
        ),
        row(
            8,
            Some("a_c"),
            Some("2026-10-15"),
            Some("2026-10-15 12:30:00"),
            Some(7.0),
            Some(true),
        ),
        row(
            9,
            Some("a%c"),
            Some("2026-10-15"),
            Some("2026-10-15 12:30:00.500000"),
            Some(7.5),
            Some(false),
        ),
        row(
            10,
            Some("ab"),
            Some("2024-02-29"),
            Some("2024-02-29 00:00:00"),
            Some(-0.5),
            Some(false),
        ),
        row(
            11,
            Some("e"),
            Some("2026-10-01"),
            Some("2026-10-01 08:00:00"),
            Some(1.0),
            Some(true),
        ),
        row(
            12,
            Some("é"),
            Some("2026-10-01"),
            Some("2026-10-01 08:00:00"),
            Some(1.0),
            Some(true),
        ),
        row(
            13,
            Some("南_通"),
            Some("2026-10-01"),
            Some("2026-10-01 23:59:59"),
            Some(99.0),
            None,
        ),
    ]
}

/// The trap rows as a DataFusion batch: the ground truth every source must match.
pub fn trap_batch() -> RecordBatch {
    let rows = trap_rows();
    let text = |f: &dyn Fn(&TrapRow) -> Option<&'static str>| {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>())) as ArrayRef
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.k).collect::<Vec<_>>(),
        )),
        text(&|r| r.s),
        cast(&text(&|r| r.d), &DataType::Date32).unwrap(),
        cast(
            &text(&|r| r.t),
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )
        .unwrap(),
        Arc::new(Float64Array::from(
            rows.iter().map(|r| r.x).collect::<Vec<_>>(),
        )),
        Arc::new(BooleanArray::from(
            rows.iter().map(|r| r.b).collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(arrow_schema(&trap_fields()), columns).unwrap()
}

/// Filters whose results catch a source that differs from DataFusion: byte order
/// against collations, case, trailing spaces, accents, `_` and `%` as data, NULLs,
/// time precision and formats. `true` when a SQL source is expected to push it.
pub const TRAP_FILTERS: &[(&str, bool)] = &[
    ("s = 'abc'", true),
    ("s <> 'abc'", true),
    ("s < 'abd'", true),
    ("s > 'abc'", true),
    ("s >= 'ab'", true),
    ("s > 'Z'", true),
    ("s BETWEEN 'a' AND 'b'", true),
    ("s IN ('abc', 'e')", true),
    ("s NOT IN ('abc', 'ABC')", true),
    // Longer lists stay lists (DataFusion turns short ones into ORs).
    ("s IN ('abc', 'e', 'ab', 'a_c', 'zzz', '南_通')", true),
    ("s NOT IN ('abc', 'e', 'ab', 'a_c', 'zzz', 'ABC')", true),
    (
        "d NOT IN (DATE '2026-10-01', DATE '2025-12-31', DATE '2024-02-29', DATE '2026-10-15')",
        true,
    ),
    ("k IN (1, 3, 5, 7, 9, 11)", true),
    ("s = 'e'", true),
    ("s LIKE 'a%'", true),
    ("s LIKE 'a_c'", true),
    ("s NOT LIKE 'A%'", true),
    ("s LIKE '%通%'", true),
    ("s LIKE '南_通'", true),
    ("s LIKE 'abc'", true),
    ("s IS NULL", true),
    ("s IS NOT NULL", true),
    ("NOT (s = 'abc')", true),
    ("s = 'abc' OR k > 11", true),
    ("d = DATE '2026-10-01'", true),
    ("d < '2026-01-01'", true),
    ("d BETWEEN '2026-01-01' AND '2026-10-01'", true),
    ("d IN (DATE '2026-10-01', DATE '2025-12-31')", true),
    ("d <> DATE '2026-10-01'", true),
    ("t >= '2026-10-01 22:00:00'", true),
    ("t > '2026-10-01 22:00:00'", true),
    ("t < TIMESTAMP '2026-10-01 22:00:00'", true),
    ("t <= '2026-10-02 00:00:00'", true),
    ("t = '2026-10-01 22:00:00'", true),
    ("t = '2026-10-15 12:30:00.5'", true),
    (
        "t BETWEEN '2026-10-01 08:00:00' AND '2026-10-01 22:00:00'",
        true,
    ),
    ("t <> '2026-10-01 22:00:00'", false),
    ("x > 1", true),
    ("x <= 0", true),
    ("x = 10000.25", true),
    ("k IN (1, 3, 5)", true),
    ("k NOT IN (2)", true),
    ("NOT (k BETWEEN 2 AND 4)", true),
    ("b = true", true),
    ("b", true),
    ("NOT b", true),
    ("b <> false", true),
    ("b IS NULL", true),
    ("k > 3 AND s LIKE 'a%'", true),
    ("s ILIKE 'ABC'", false),
    ("upper(s) = 'ABC'", false),
    ("s LIKE 'a\\%c'", false),
];

/// Aggregations of the trap rows, and whether every SQL dialect computes them at the
/// source (the others are checked for the right answer only: some dialects push
/// them, some leave them to DataFusion).
pub const TRAP_AGGREGATES: &[(&str, bool)] = &[
    // Case, trailing space, accents and NULL are groups of their own.
    ("SELECT s, count(*) FROM {t} GROUP BY s", true),
    (
        "SELECT d, count(x), sum(x), min(x), max(x), sum(k), min(k), max(k) FROM {t} GROUP BY d",
        true,
    ),
    ("SELECT min(s), max(s), count(s), count(*) FROM {t}", true),
    // No rows: one row with count 0 and NULLs.
    (
        "SELECT count(*), sum(k), max(s) FROM {t} WHERE k > 100",
        true,
    ),
    (
        "SELECT s, sum(k) AS total FROM {t} WHERE k < 10 AND s <> 'abc' GROUP BY s",
        true,
    ),
    (
        "SELECT k, count(*) FROM {t} GROUP BY k HAVING count(*) > 0",
        true,
    ),
    (
        "SELECT s, count(*) AS n FROM {t} GROUP BY s ORDER BY n DESC, s LIMIT 3",
        true,
    ),
    ("SELECT d, avg(k), avg(x) FROM {t} GROUP BY d", false),
    ("SELECT t, count(*) FROM {t} GROUP BY t", false),
    (
        "SELECT b, count(*), min(t), max(d) FROM {t} GROUP BY b",
        false,
    ),
    ("SELECT count(DISTINCT s) FROM {t}", false),
    (
        "SELECT upper(s), count(*) FROM {t} GROUP BY upper(s)",
        false,
    ),
    ("SELECT x, count(*) FROM {t} GROUP BY x", false),
    (
        "SELECT count(*) FROM (SELECT s, count(*) FROM {t} GROUP BY s) AS g",
        false,
    ),
    (
        "SELECT s, count(*) FROM {t} WHERE upper(s) = 'ABC' GROUP BY s",
        false,
    ),
];

/// Whether a scan's statement computes an aggregate at the source.
pub fn aggregated_at_source(scan: &Scan) -> bool {
    ["GROUP BY", "COUNT(", "SUM(", "MIN(", "MAX(", "AVG("]
        .iter()
        .any(|f| scan.line.contains(f))
}

/// Runs every trap filter against `table` and against the ground truth; the keys
/// must match. For SQL sources (`sql`), filters marked pushable must appear in the
/// statement's WHERE clause.
pub async fn check_trap(table: Arc<dyn TableProvider>, sql: bool) {
    let truth =
        Arc::new(MemTable::try_new(trap_batch().schema(), vec![vec![trap_batch()]]).unwrap())
            as Arc<dyn TableProvider>;
    let ctx = context_with(&[("truth", truth), ("src", table)]);
    let mut failures = BTreeMap::new();
    for (filter, pushable) in TRAP_FILTERS {
        let (expected, _) = query(
            &ctx,
            &format!("SELECT k FROM truth WHERE {filter} ORDER BY k"),
        )
        .await
        .unwrap();
        let (got, scans) = query(
            &ctx,
            &format!("SELECT k FROM src WHERE {filter} ORDER BY k"),
        )
        .await
        .unwrap_or_else(|e| panic!("{filter}: {e}"));
        if got != expected {
            failures.insert(*filter, format!("got {got:?}, expected {expected:?}"));
        }
        if sql && *pushable && !scans.iter().any(|s| s.line.contains(" WHERE ")) {
            failures.insert(*filter, format!("not pushed: {scans:?}"));
        }
    }
    for (q, pushable) in TRAP_AGGREGATES {
        let (expected, _) = query(&ctx, &q.replace("{t}", "truth")).await.unwrap();
        let (got, scans) = query(&ctx, &q.replace("{t}", "src"))
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        if sorted(got.clone()) != sorted(expected.clone()) {
            failures.insert(*q, format!("got {got:?}, expected {expected:?}"));
        }
        if sql && *pushable && !scans.iter().all(aggregated_at_source) {
            failures.insert(*q, format!("not aggregated at the source: {scans:?}"));
        }
        // What a source aggregates, it aggregates exactly: HAVING and ORDER BY aside,
        // only the groups leave it.
        for scan in scans.iter().filter(|s| aggregated_at_source(s)) {
            if scan.rows_read != scan.output_rows {
                failures.insert(
                    *q,
                    format!("rows read {} vs {}", scan.rows_read, scan.output_rows),
                );
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Every column reads back exactly.
    let (expected, _) = query(&ctx, "SELECT * FROM truth ORDER BY k").await.unwrap();
    let (got, _) = query(&ctx, "SELECT * FROM src ORDER BY k").await.unwrap();
    assert_eq!(got, expected);
}
