use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::json;
use yiwang_catalog::filter::parse;
use yiwang_catalog::model::Sensitivity;

use super::*;
use crate::demo::{SCENARIO_SHUTDOWN_NAME, SCENARIO_SHUTDOWN_USCC, create_scenario_databases};
use crate::source::{ReadRequest, Source, SourceConfig, Sources};

/// The demo databases in a fresh directory, configured as the gateway would.
fn demo_sources() -> (tempfile::TempDir, Sources) {
    let dir = tempfile::tempdir().unwrap();
    let created = create_scenario_databases(&dir.path().join("data")).unwrap();
    let cfg: BTreeMap<String, SourceConfig> = created
        .into_iter()
        .map(|(id, path)| {
            let relative = path.strip_prefix(dir.path()).unwrap().to_path_buf();
            let source = SourceConfig::Sqlite {
                path: relative,
                pool_size: None,
                timeout_ms: None,
                aggregate_pushdown: None,
            };
            (id, source)
        })
        .collect();
    let sources = Sources::from_config(&cfg, dir.path()).unwrap();
    (dir, sources)
}

fn columns_of(table: &str, names: &[&str]) -> Vec<Field> {
    let all = crate::demo::scenario_tables()
        .into_iter()
        .find(|t| t.table == table)
        .unwrap()
        .columns;
    names
        .iter()
        .map(|n| all.iter().find(|f| f.name == *n).unwrap().clone())
        .collect()
}

fn request(table: &str, names: &[&str], filter: Option<&str>, limit: usize) -> ReadRequest {
    ReadRequest {
        table: table.to_string(),
        columns: columns_of(table, names),
        filter: filter.map(|f| parse(f).unwrap()),
        limit,
        cursor: None,
    }
}

/// A database of one's own, for cases the demo data does not cover.
fn custom_source(sql: &str, timeout_ms: u64) -> (tempfile::TempDir, SqliteSource) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custom.sqlite");
    Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    let source = SqliteSource::new("custom-db", path, 2, timeout_ms);
    (dir, source)
}

fn plain(name: &str, field_type: FieldType) -> Field {
    Field {
        name: name.to_string(),
        title: name.to_string(),
        field_type,
        sensitivity: Sensitivity::Public,
        masking: None,
    }
}

#[tokio::test]
async fn reads_selected_columns_in_the_order_asked() {
    let (_dir, sources) = demo_sources();
    let yjj = sources.require("yjj-db").unwrap();
    assert_eq!(yjj.kind(), "sqlite");
    let page = yjj
        .read(request(
            "hazchem_enterprises",
            &["capacity", "name", "status"],
            None,
            100,
        ))
        .await
        .unwrap();
    assert_eq!(page.columns, ["capacity", "name", "status"]);
    assert_eq!(page.rows.len(), 40);
    assert_eq!(page.next_cursor, None);
    assert!(page.rows.iter().all(|r| r.len() == 3 && r[0].is_i64()));
    assert!(page.rows.contains(&vec![
        json!(30000),
        json!(SCENARIO_SHUTDOWN_NAME),
        json!("责令关停")
    ]));
}

#[tokio::test]
async fn every_filter_operator_selects_the_rows_it_describes() {
    let (_dir, sources) = demo_sources();
    let yjj = sources.get("yjj-db").unwrap();
    let names = ["name", "status", "capacity", "remark"];
    let all = yjj
        .read(request("hazchem_enterprises", &names, None, 100))
        .await
        .unwrap()
        .rows;
    type Pred = fn(&[serde_json::Value]) -> bool;
    let cap = |r: &[serde_json::Value]| r[2].as_i64().unwrap();
    let cases: Vec<(&str, Pred)> = vec![
        ("status = '责令关停'", |r| r[1] == "责令关停"),
        ("status != '正常生产'", |r| r[1] != "正常生产"),
        ("status <> '正常生产'", |r| r[1] != "正常生产"),
        ("capacity < 100000", |r| r[2].as_i64().unwrap() < 100_000),
        ("capacity <= 30000", |r| r[2].as_i64().unwrap() <= 30_000),
        ("capacity > 100000", |r| r[2].as_i64().unwrap() > 100_000),
        ("capacity >= 30000", |r| r[2].as_i64().unwrap() >= 30_000),
        ("capacity > 100000.5", |r| r[2].as_i64().unwrap() > 100_000),
        ("capacity between 30000 and 150000", |r| {
            (30_000..=150_000).contains(&r[2].as_i64().unwrap())
        }),
        ("status in ('停产整顿', '责令关停')", |r| {
            r[1] != "正常生产"
        }),
        ("status not in ('停产整顿', '责令关停')", |r| {
            r[1] == "正常生产"
        }),
        ("remark is null", |r| r[3].is_null()),
        ("remark is not null", |r| !r[3].is_null()),
        ("name like '%恒昌%'", |r| r[0] == SCENARIO_SHUTDOWN_NAME),
        ("name not like '南通%'", |r| {
            !r[0].as_str().unwrap().starts_with("南通")
        }),
        ("not (status = '正常生产' or remark is null)", |r| {
            r[1] != "正常生产" && !r[3].is_null()
        }),
        (
            "status = '正常生产' and capacity > 200000 or status = '责令关停'",
            |r| (r[1] == "正常生产" && r[2].as_i64().unwrap() > 200_000) || r[1] == "责令关停",
        ),
    ];
    assert!(all.iter().any(|r| cap(r) > 100_000) && all.iter().any(|r| cap(r) < 100_000));
    for (filter, pred) in cases {
        let expected: Vec<_> = all.iter().filter(|r| pred(r)).cloned().collect();
        assert!(!expected.is_empty(), "{filter} should match something");
        let got = yjj
            .read(request("hazchem_enterprises", &names, Some(filter), 100))
            .await
            .unwrap()
            .rows;
        assert_eq!(got, expected, "{filter}");
    }
}

#[tokio::test]
async fn a_string_literal_cannot_inject_sql() {
    let (_dir, sources) = demo_sources();
    let yjj = sources.get("yjj-db").unwrap();
    for filter in [
        "name = 'x'' or 1=1 --'",
        "name = 'x''; drop table hazchem_enterprises; --'",
        "name in ('a'') or (''1''=''1')",
        "name like ''' or ''%''=''%'",
    ] {
        let page = yjj
            .read(request("hazchem_enterprises", &["name"], Some(filter), 100))
            .await
            .unwrap();
        assert!(page.rows.is_empty(), "{filter}");
    }
    let still_there = yjj
        .read(request("hazchem_enterprises", &["name"], None, 100))
        .await
        .unwrap();
    assert_eq!(still_there.rows.len(), 40);
}

#[tokio::test]
async fn cursor_pages_are_disjoint_and_cover_everything() {
    let (_dir, sources) = demo_sources();
    let jtj = sources.get("jtj-db").unwrap();
    let filter =
        format!("consignee_uscc = '{SCENARIO_SHUTDOWN_USCC}' and pass_time >= '2026-10-01'");
    let all = jtj
        .read(request(
            "hazmat_truck_checkpoints",
            &["record_id", "pass_time"],
            Some(&filter),
            1000,
        ))
        .await
        .unwrap()
        .rows;
    assert!(all.len() > 20);
    for limit in [1, 7, all.len() / 2, all.len(), all.len() + 1] {
        let mut seen = Vec::new();
        let mut req = request(
            "hazmat_truck_checkpoints",
            &["record_id", "pass_time"],
            Some(&filter),
            limit,
        );
        let mut pages = 0;
        loop {
            let page = jtj.read(req.clone()).await.unwrap();
            pages += 1;
            assert!(page.rows.len() <= limit);
            assert!(!page.rows.is_empty());
            seen.extend(page.rows);
            match page.next_cursor {
                Some(cursor) => req.cursor = Some(cursor),
                None => break,
            }
        }
        assert_eq!(seen, all, "limit {limit}");
        assert_eq!(pages, all.len().div_ceil(limit), "limit {limit}");
        let ids: BTreeSet<i64> = seen.iter().map(|r| r[0].as_i64().unwrap()).collect();
        assert_eq!(ids.len(), all.len(), "pages overlap at limit {limit}");
    }
}

#[tokio::test]
async fn a_tampered_or_foreign_cursor_is_rejected() {
    let (_dir, sources) = demo_sources();
    let yjj = sources.get("yjj-db").unwrap();
    let first = yjj
        .read(request("hazchem_enterprises", &["name"], None, 10))
        .await
        .unwrap();
    let cursor = first.next_cursor.unwrap();
    let mut tampered = cursor.clone();
    tampered.replace_range(0..2, "zz");
    for bad in [
        tampered,
        format!("{cursor}x"),
        "not a cursor".into(),
        String::new(),
    ] {
        let mut req = request("hazchem_enterprises", &["name"], None, 10);
        req.cursor = Some(bad.clone());
        let err = yjj.read(req).await.unwrap_err();
        assert!(matches!(err, AdapterError::BadCursor(_)), "{bad}: {err}");
        assert_eq!(err.http_status(), 400);
    }
    let mut other_filter = request("hazchem_enterprises", &["name"], Some("capacity > 0"), 10);
    other_filter.cursor = Some(cursor);
    assert!(matches!(
        yjj.read(other_filter).await,
        Err(AdapterError::BadCursor(_))
    ));
}

#[tokio::test]
async fn a_missing_file_is_unavailable_until_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BTreeMap::from([(
        "late-db".to_string(),
        SourceConfig::Sqlite {
            path: "late.sqlite".into(),
            pool_size: Some(1),
            timeout_ms: Some(1000),
            aggregate_pushdown: None,
        },
    )]);
    let sources = Sources::from_config(&cfg, dir.path()).unwrap();
    let source = sources.get("late-db").unwrap();
    let req = ReadRequest {
        table: "t".into(),
        columns: vec![plain("x", FieldType::Integer)],
        filter: None,
        limit: 10,
        cursor: None,
    };
    let err = source.read(req.clone()).await.unwrap_err();
    assert!(matches!(err, AdapterError::Unavailable { .. }), "{err}");
    assert_eq!((err.http_status(), err.code()), (503, "source_unavailable"));
    assert!(!err.to_string().contains(dir.path().to_str().unwrap()));
    // Reading never creates the file.
    assert!(!dir.path().join("late.sqlite").exists());

    Connection::open(dir.path().join("late.sqlite"))
        .unwrap()
        .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    let page = source.read(req).await.unwrap();
    assert_eq!(page.rows, [[json!(1)], [json!(2)]]);
}

#[tokio::test]
async fn a_slow_query_times_out_and_the_source_keeps_working() {
    // An endless recursive CTE behind a view; the view names its counter `rowid` so
    // the paging query can order by it.
    let (_dir, source) = custom_source(
        "CREATE VIEW slow AS WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) \
         SELECT n AS rowid, n AS x FROM c; \
         CREATE TABLE fast (x INTEGER); INSERT INTO fast VALUES (7);",
        300,
    );
    let req = |table: &str| ReadRequest {
        table: table.into(),
        columns: vec![plain("x", FieldType::Integer)],
        filter: Some(parse("x < 0").unwrap()),
        limit: 10,
        cursor: None,
    };
    let started = Instant::now();
    let err = source.read(req("slow")).await.unwrap_err();
    assert_eq!(
        err,
        AdapterError::Timeout {
            source_id: "custom-db".into(),
            ms: 300
        }
    );
    assert_eq!((err.http_status(), err.code()), (504, "source_timeout"));
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut ok = req("fast");
    ok.filter = None;
    for _ in 0..3 {
        assert_eq!(source.read(ok.clone()).await.unwrap().rows, [[json!(7)]]);
    }
}

#[tokio::test]
async fn values_convert_by_storage_class_and_field_type() {
    let (_dir, source) = custom_source(
        "CREATE TABLE v (flag BOOLEAN, flag_text TEXT, n INTEGER, r REAL, t TEXT, b BLOB, z TEXT);
         INSERT INTO v VALUES (1, 'false', -5, 2.5, '苏F·A1234', x'00ff10', NULL);
         INSERT INTO v VALUES (0, 'TRUE', 9007199254740993, 1e300, '', x'', NULL);",
        1000,
    );
    let page = source
        .read(ReadRequest {
            table: "v".into(),
            columns: vec![
                plain("flag", FieldType::Boolean),
                plain("flag_text", FieldType::Boolean),
                plain("n", FieldType::Integer),
                plain("r", FieldType::Float),
                plain("t", FieldType::String),
                plain("b", FieldType::String),
                plain("z", FieldType::String),
            ],
            filter: Some(parse("flag = true or flag = false").unwrap()),
            limit: 10,
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(
        page.rows,
        [
            vec![
                json!(true),
                json!(false),
                json!(-5),
                json!(2.5),
                json!("苏F·A1234"),
                json!("AP8Q"),
                json!(null)
            ],
            vec![
                json!(false),
                json!(true),
                json!(9_007_199_254_740_993_i64),
                json!(1e300),
                json!(""),
                json!(""),
                json!(null)
            ],
        ]
    );
    let only_true = source
        .read(ReadRequest {
            table: "v".into(),
            columns: vec![plain("n", FieldType::Integer)],
            filter: Some(parse("flag = true").unwrap()),
            limit: 10,
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(only_true.rows, [[json!(-5)]]);
}

#[tokio::test]
async fn bad_requests_and_missing_tables_are_errors() {
    let (_dir, sources) = demo_sources();
    let yjj = sources.get("yjj-db").unwrap();
    for (table, limit) in [("hazchem_enterprises; --", 10), ("hazchem_enterprises", 0)] {
        let mut req = request("hazchem_enterprises", &["name"], None, limit);
        req.table = table.into();
        let err = yjj.read(req).await.unwrap_err();
        assert!(matches!(err, AdapterError::InvalidRequest(_)), "{err}");
    }
    let mut too_many = request("hazchem_enterprises", &["name"], None, MAX_LIMIT + 1);
    assert!(yjj.read(too_many.clone()).await.is_err());
    too_many.table = "no_such_table".into();
    too_many.limit = 1;
    let err = yjj.read(too_many).await.unwrap_err();
    assert!(matches!(err, AdapterError::Source { .. }), "{err}");
    assert_eq!(err.http_status(), 502);
    let mut bad_column = request("hazchem_enterprises", &["name"], None, 1);
    bad_column
        .columns
        .push(plain("no_such_column", FieldType::String));
    assert!(matches!(
        yjj.read(bad_column.clone()).await,
        Err(AdapterError::Source { .. })
    ));
    // Not even in a filter: a quoted unknown name is never read as a string.
    bad_column.columns.pop();
    bad_column.filter = Some(parse("no_such_column = 'no_such_column'").unwrap());
    assert!(matches!(
        yjj.read(bad_column).await,
        Err(AdapterError::Source { .. })
    ));
    assert!(yjj.list_columns("no_such_table").await.is_err());
    assert!(matches!(
        sources.require("nope"),
        Err(AdapterError::UnknownSource(_))
    ));
}

#[tokio::test]
async fn list_columns_reports_declared_types() {
    let (_dir, sources) = demo_sources();
    for table in crate::demo::scenario_tables() {
        let source = sources.get(table.source_id).unwrap();
        let columns = source.list_columns(table.table).await.unwrap();
        let expected: Vec<(String, FieldType)> = table
            .columns
            .iter()
            .map(|f| (f.name.clone(), f.field_type))
            .collect();
        assert_eq!(columns, expected, "{}", table.table);
    }
    assert_eq!(field_type_of("VARCHAR(18)"), FieldType::String);
    assert_eq!(field_type_of("bigint"), FieldType::Integer);
    assert_eq!(field_type_of("DECIMAL(10,2)"), FieldType::Float);
    assert_eq!(field_type_of("TIMESTAMP"), FieldType::Datetime);
    assert_eq!(field_type_of(""), FieldType::String);
}

#[tokio::test]
async fn concurrent_reads_share_a_small_pool() {
    let (_dir, sources) = demo_sources();
    let source: Arc<dyn Source> = sources.get("gdgs-db").unwrap();
    let filter = format!("uscc = '{SCENARIO_SHUTDOWN_USCC}' and hour >= '2026-10-15'");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            tokio::spawn(source.read(request(
                "enterprise_hourly_power",
                &["hour", "kwh"],
                Some(&filter),
                1000,
            )))
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().rows.len(), 17 * 24);
    }
}

#[test]
fn config_deserializes_and_validates() {
    let cfg: BTreeMap<String, SourceConfig> = serde_json::from_value(json!({
        "yjj-db": {"kind": "sqlite", "path": "data/yjj.sqlite"},
        "abs": {"kind": "sqlite", "path": "/srv/x.sqlite", "pool_size": 2, "timeout_ms": 100},
    }))
    .unwrap();
    let sources = Sources::from_config(&cfg, Path::new("/etc/yiwang")).unwrap();
    assert_eq!(sources.ids(), ["abs", "yjj-db"]);
    assert_eq!(
        format!("{sources:?}"),
        r#"{"abs": "sqlite", "yjj-db": "sqlite"}"#
    );
    let typo = serde_json::from_value::<SourceConfig>(
        json!({"kind": "sqlite", "path": "x", "pool-size": 2}),
    );
    assert!(typo.is_err());
    assert!(
        serde_json::from_value::<SourceConfig>(json!({"kind": "oracle", "path": "x"})).is_err()
    );
    for bad in [
        json!({"bad id!": {"kind": "sqlite", "path": "x"}}),
        json!({"ok": {"kind": "sqlite", "path": "x", "pool_size": 0}}),
        json!({"ok": {"kind": "sqlite", "path": "x", "timeout_ms": 0}}),
    ] {
        let cfg: BTreeMap<String, SourceConfig> = serde_json::from_value(bad).unwrap();
        let err = Sources::from_config(&cfg, Path::new(".")).unwrap_err();
        assert!(matches!(err, AdapterError::Config(_)), "{err}");
    }
}
