//! SQLite through DataFusion, on the demo scenario databases.

use std::collections::BTreeMap;
use std::sync::Arc;

use yiwang_adapters::demo::{SCENARIO_SHUTDOWN_NAME, SCENARIO_SHUTDOWN_USCC};
use yiwang_adapters::sqlite::SqliteSource;
use yiwang_adapters::{AdapterError, Source, SourceConfig, Sources};
use yiwang_catalog::model::FieldType;

use crate::common::{
    adapter_error, aggregated_at_source, check_trap, context_with, field, query, rows,
    scenario_fields, scenario_source, sorted, trap_fields, trap_rows,
};

/// The rows of a direct rusqlite query, formatted like DataFusion's.
fn direct(source_id: &str, sql: &str) -> Vec<String> {
    let source = scenario_source(source_id);
    let conn = rusqlite::Connection::open(source.path()).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let width = stmt.column_count();
    stmt.query_map([], |row| {
        let values: Vec<String> = (0..width)
            .map(|i| match row.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => "NULL".to_string(),
                rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                rusqlite::types::ValueRef::Real(x) => x.to_string(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8(t.to_vec()).unwrap(),
                rusqlite::types::ValueRef::Blob(_) => unreachable!(),
            })
            .collect();
        Ok(values.join("|"))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datafusion_over_sqlite_equals_direct_queries() {
    let jtj = scenario_source("jtj-db");
    let yjj = scenario_source("yjj-db");
    let ctx = context_with(&[
        (
            "trucks",
            jtj.table_provider(
                "hazmat_truck_checkpoints",
                &scenario_fields("hazmat_truck_checkpoints"),
            )
            .unwrap(),
        ),
        (
            "enterprises",
            yjj.table_provider(
                "hazchem_enterprises",
                &scenario_fields("hazchem_enterprises"),
            )
            .unwrap(),
        ),
    ]);
    let cases = [
        (
            format!(
                "SELECT record_id, plate FROM trucks WHERE consignee_uscc = '{SCENARIO_SHUTDOWN_USCC}' \
                 AND goods_class LIKE '第3类%'"
            ),
            format!(
                "SELECT record_id, plate FROM hazmat_truck_checkpoints WHERE consignee_uscc = '{SCENARIO_SHUTDOWN_USCC}' \
                 AND goods_class GLOB '第3类*'"
            ),
        ),
        (
            "SELECT name, capacity FROM enterprises WHERE capacity BETWEEN 50000 AND 200000 AND status <> '正常生产'"
                .to_string(),
            "SELECT name, capacity FROM hazchem_enterprises WHERE capacity BETWEEN 50000 AND 200000 AND status <> '正常生产'"
                .to_string(),
        ),
        (
            "SELECT uscc FROM enterprises WHERE licence_expiry < '2027-06-01' OR remark IS NULL".to_string(),
            "SELECT uscc FROM hazchem_enterprises WHERE licence_expiry < '2027-06-01' OR remark IS NULL"
                .to_string(),
        ),
    ];
    for (df_sql, sqlite_sql) in &cases {
        let (got, scans) = query(&ctx, df_sql).await.unwrap();
        let expected = direct(
            if df_sql.contains("trucks") {
                "jtj-db"
            } else {
                "yjj-db"
            },
            sqlite_sql,
        );
        assert!(!expected.is_empty(), "{sqlite_sql}");
        assert_eq!(sorted(got), sorted(expected), "{df_sql}");
        assert!(scans[0].line.contains(" WHERE "), "{}", scans[0].line);
        assert_eq!(scans[0].rows_read, scans[0].output_rows);
    }

    // Times: the night passes at the shut plant. SQLite stores times as text, so the
    // time comparison is pushed as a day range and DataFusion checks the rest.
    let q = format!(
        "SELECT record_id, pass_time FROM trucks WHERE consignee_uscc = '{SCENARIO_SHUTDOWN_USCC}' \
         AND pass_time >= '2026-10-05 22:00:00' AND pass_time < '2026-10-06 05:00:00'"
    );
    let (got, scans) = query(&ctx, &q).await.unwrap();
    let expected = direct(
        "jtj-db",
        &format!(
            "SELECT record_id, pass_time FROM hazmat_truck_checkpoints WHERE consignee_uscc = '{SCENARIO_SHUTDOWN_USCC}' \
             AND pass_time >= '2026-10-05 22:00:00' AND pass_time < '2026-10-06 05:00:00'"
        ),
    );
    assert_eq!(sorted(got), sorted(expected));
    assert!(
        scans[0].line.contains("\"pass_time\" COLLATE BINARY >= ?"),
        "{}",
        scans[0].line
    );

    // EXPLAIN shows the statement with its WHERE clause and the projection.
    let explained = ctx
        .sql(&format!(
            "EXPLAIN SELECT plate FROM trucks WHERE consignee_uscc = '{SCENARIO_SHUTDOWN_USCC}' LIMIT 5"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = rows(&explained).join("\n");
    assert!(
        text.contains(
            "SqlExec: source=jtj-db, request=SELECT \"plate\" FROM \"hazmat_truck_checkpoints\" \
             WHERE (\"consignee_uscc\" COLLATE BINARY = ?) LIMIT 5"
        ),
        "{text}"
    );

    // The enterprise the scenario is about reads back in Chinese.
    let (names, _) = query(
        &ctx,
        &format!("SELECT name FROM enterprises WHERE uscc = '{SCENARIO_SHUTDOWN_USCC}'"),
    )
    .await
    .unwrap();
    assert_eq!(names, [SCENARIO_SHUTDOWN_NAME]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_filters_match_datafusion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trap.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE trap (k INTEGER, s TEXT, d DATE, t DATETIME, x REAL, b BOOLEAN)",
    )
    .unwrap();
    for r in trap_rows() {
        // Times in the forms SQLite databases hold them: without seconds, with 'T'.
        let t = r.t.map(|t| match r.k {
            1 => "2026-10-01 22:00".to_string(),
            5 => t.replace(' ', "T"),
            _ => t.to_string(),
        });
        conn.execute(
            "INSERT INTO trap VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![r.k, r.s, r.d, t, r.x, r.b],
        )
        .unwrap();
    }
    drop(conn);
    let source = SqliteSource::new("trap-db", path, 2, 5000);
    check_trap(source.table_provider("trap", &trap_fields()).unwrap(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_database_is_unavailable_inside_datafusion() {
    let dir = tempfile::tempdir().unwrap();
    let source = SqliteSource::new("gone-db", dir.path().join("gone.sqlite"), 1, 1000);
    let provider = source
        .table_provider("t", &[field("a", FieldType::String)])
        .unwrap();
    let ctx = context_with(&[("t", provider)]);
    let err = query(&ctx, "SELECT a FROM t").await.unwrap_err();
    assert_eq!(
        adapter_error(&err),
        AdapterError::Unavailable {
            source_id: "gone-db".to_string(),
            message: "database file is missing".to_string()
        }
    );
    assert!(
        err.to_string()
            .contains("source 'gone-db' is unavailable: database file is missing"),
        "{err}"
    );
    // Bad names are refused before anything runs.
    assert!(matches!(
        source.table_provider("t; drop", &[field("a", FieldType::String)]),
        Err(AdapterError::InvalidRequest(_))
    ));
    assert!(matches!(
        source.table_provider("t", &[field("a\"", FieldType::String)]),
        Err(AdapterError::InvalidRequest(_))
    ));
    let _: Arc<dyn Source> = Arc::new(source);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_scan_is_interrupted_at_the_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.sqlite");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE VIEW slow AS WITH RECURSIVE c(x) AS \
             (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) \
             SELECT max(x) AS a FROM c",
        )
        .unwrap();
    let source = SqliteSource::new("slow-db", path, 1, 200);
    let ctx = context_with(&[(
        "slow",
        source
            .table_provider("slow", &[field("a", FieldType::Integer)])
            .unwrap(),
    )]);
    let started = std::time::Instant::now();
    let err = query(&ctx, "SELECT a FROM slow").await.unwrap_err();
    assert_eq!(
        adapter_error(&err),
        AdapterError::Timeout {
            source_id: "slow-db".to_string(),
            ms: 200
        }
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // The connection is usable again at once.
    let err = query(&ctx, "SELECT a FROM slow").await.unwrap_err();
    assert!(matches!(adapter_error(&err), AdapterError::Timeout { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_pushdown_is_a_per_source_setting() {
    let path = scenario_source("jtj-db").path().to_path_buf();
    let table = "hazmat_truck_checkpoints";
    let q = "SELECT checkpoint, count(*) FROM t GROUP BY checkpoint";
    let mut answers = Vec::new();
    for (setting, at_source) in [("", true), ("aggregate_pushdown = false", false)] {
        let cfg: SourceConfig =
            toml::from_str(&format!("kind = \"sqlite\"\npath = {path:?}\n{setting}")).unwrap();
        let sources = Sources::from_config(
            &BTreeMap::from([("jtj-db".to_string(), cfg)]),
            std::path::Path::new("/"),
        )
        .unwrap();
        let provider = sources
            .require("jtj-db")
            .unwrap()
            .table_provider(table, &scenario_fields(table))
            .unwrap();
        let ctx = context_with(&[("t", provider)]);
        let (got, scans) = query(&ctx, q).await.unwrap();
        assert_eq!(scans.len(), 1);
        assert_eq!(
            aggregated_at_source(&scans[0]),
            at_source,
            "{setting}: {scans:?}"
        );
        if !at_source {
            // Every row of the table leaves the source, and DataFusion groups them.
            let all = direct("jtj-db", &format!("SELECT count(*) FROM {table}"));
            assert_eq!(scans[0].rows_read.to_string(), all[0]);
        }
        answers.push(sorted(got));
    }
    assert_eq!(answers[0], answers[1]);
    assert!(!answers[0].is_empty());
}
