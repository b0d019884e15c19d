//! The tests every SQL server source passes (PostgreSQL, MariaDB/MySQL), run against
//! the real servers of `ops/testdb.sh`. Each test makes its own tables and drops them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use yiwang_adapters::demo::SCENARIO_SHUTDOWN_USCC;
use yiwang_adapters::{AdapterError, ReadRequest, Source};
use yiwang_catalog::filter::parse;
use yiwang_catalog::model::FieldType;

use crate::common::{
    adapter_error, check_trap, context_with, field, query, scenario_fields, scenario_rows,
    scenario_source, sorted, unique,
};
use crate::servers::Server;

/// Generates one `#[tokio::test]` per suite function for a server.
macro_rules! sql_source_tests {
    ($server:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn trap_filters_match_datafusion() {
            crate::sql_suite::trap_filters_match_datafusion($server).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn scenario_queries_match_sqlite() {
            crate::sql_suite::scenario_queries_match_sqlite($server).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn joins_with_a_sqlite_source() {
            crate::sql_suite::joins_with_a_sqlite_source($server).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn records_pages_match_sqlite() {
            crate::sql_suite::records_pages_match_sqlite($server).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn lists_columns() {
            crate::sql_suite::lists_columns($server).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn slow_query_times_out_and_is_cancelled() {
            crate::sql_suite::slow_query_times_out_and_is_cancelled($server).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn reuses_its_connections() {
            crate::sql_suite::reuses_its_connections($server).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn server_down_is_unavailable_quickly() {
            crate::sql_suite::server_down_is_unavailable_quickly($server).await;
        }
    };
}
pub(crate) use sql_source_tests;

pub async fn trap_filters_match_datafusion(server: Server) {
    let table = unique("trap");
    server.create_trap(&table).await;
    let source = server.source("trap-src", 5000);
    let provider = source
        .table_provider(&table, &crate::common::trap_fields())
        .unwrap();
    check_trap(provider, true).await;
    server.drop_tables(&[&table]).await;
}

/// Copies the two scenario tables into the server under unique names.
async fn load_scenario(server: Server) -> (String, String) {
    let enterprises = unique("hazchem");
    let trucks = unique("trucks");
    server
        .create_table(
            &enterprises,
            &scenario_fields("hazchem_enterprises"),
            &scenario_rows("yjj-db", "hazchem_enterprises"),
            false,
        )
        .await;
    server
        .create_table(
            &trucks,
            &scenario_fields("hazmat_truck_checkpoints"),
            &scenario_rows("jtj-db", "hazmat_truck_checkpoints"),
            false,
        )
        .await;
    (enterprises, trucks)
}

pub async fn scenario_queries_match_sqlite(server: Server) {
    let (enterprises, trucks) = load_scenario(server).await;
    let source = server.source("dept-src", 5000);
    let yjj = scenario_source("yjj-db");
    let jtj = scenario_source("jtj-db");
    let e_fields = scenario_fields("hazchem_enterprises");
    let t_fields = scenario_fields("hazmat_truck_checkpoints");
    let ctx = context_with(&[
        ("e", source.table_provider(&enterprises, &e_fields).unwrap()),
        ("t", source.table_provider(&trucks, &t_fields).unwrap()),
        (
            "se",
            yjj.table_provider("hazchem_enterprises", &e_fields)
                .unwrap(),
        ),
        (
            "st",
            jtj.table_provider("hazmat_truck_checkpoints", &t_fields)
                .unwrap(),
        ),
    ]);
    let queries = [
        "SELECT name, status FROM {e}",
        "SELECT * FROM {e}",
        "SELECT uscc, capacity FROM {e} WHERE status = '责令关停'",
        "SELECT name FROM {e} WHERE capacity >= 100000 AND licence_expiry < '2028-01-01'",
        "SELECT name FROM {e} WHERE name LIKE '%化工%' AND remark IS NOT NULL",
        "SELECT record_id, plate, pass_time FROM {t} WHERE consignee_uscc = '91320600MA1P5X7Q2K' \
         AND pass_time >= '2026-10-01 22:00:00'",
        "SELECT count(*) FROM {t} WHERE goods_class IN ('第3类 易燃液体', '第8类 腐蚀性物质')",
        "SELECT record_id FROM {t} WHERE pass_time BETWEEN '2026-10-10 00:00:00' AND '2026-10-10 23:59:59'",
        "SELECT checkpoint, count(*) FROM {t} GROUP BY checkpoint",
        "SELECT record_id FROM {t} WHERE date_part('hour', pass_time) >= 22 \
         OR date_part('hour', pass_time) < 5",
        "SELECT consignee_uscc, count(*) FROM {t} WHERE extract(hour FROM pass_time) = 23 \
         GROUP BY consignee_uscc",
    ];
    for q in queries {
        let (got, scans) = query(&ctx, &q.replace("{e}", "e").replace("{t}", "t"))
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        let (expected, _) = query(&ctx, &q.replace("{e}", "se").replace("{t}", "st"))
            .await
            .unwrap();
        assert_eq!(sorted(got), sorted(expected), "{q}");
        assert_eq!(scans.len(), 1, "{q}");
        if q.contains("WHERE") {
            assert!(scans[0].line.contains(" WHERE "), "{q}: {}", scans[0].line);
            // Every filter here is pushed exactly: only matching rows leave the server.
            assert_eq!(scans[0].rows_read, scans[0].output_rows, "{q}");
        }
    }

    // Projection: only the asked columns are selected.
    let (_, scans) = query(&ctx, "SELECT name FROM e").await.unwrap();
    assert!(!scans[0].line.contains("status"), "{}", scans[0].line);
    // Limit pushdown, alone and under exact filters.
    let (rows, scans) = query(&ctx, "SELECT plate FROM t LIMIT 3").await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(scans[0].line.ends_with("LIMIT 3"), "{}", scans[0].line);
    assert_eq!(scans[0].rows_read, 3);
    let (rows, scans) = query(
        &ctx,
        &format!("SELECT plate FROM t WHERE consignee_uscc = '{SCENARIO_SHUTDOWN_USCC}' LIMIT 2"),
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(scans[0].line.ends_with("LIMIT 2"), "{}", scans[0].line);
    // Not under a filter DataFusion must re-apply.
    let (_, scans) = query(&ctx, "SELECT plate FROM t WHERE upper(plate) = 'X' LIMIT 2")
        .await
        .unwrap();
    assert!(!scans[0].line.contains("LIMIT"), "{}", scans[0].line);
    // Chinese text comes back byte for byte.
    let (rows, _) = query(
        &ctx,
        &format!("SELECT name FROM e WHERE uscc = '{SCENARIO_SHUTDOWN_USCC}'"),
    )
    .await
    .unwrap();
    assert_eq!(rows, [yiwang_adapters::demo::SCENARIO_SHUTDOWN_NAME]);

    server.drop_tables(&[&enterprises, &trucks]).await;
}

pub async fn joins_with_a_sqlite_source(server: Server) {
    let (enterprises, trucks) = load_scenario(server).await;
    let source = server.source("jtj-remote", 5000);
    let yjj = scenario_source("yjj-db");
    let jtj = scenario_source("jtj-db");
    let e_fields = scenario_fields("hazchem_enterprises");
    let t_fields = scenario_fields("hazmat_truck_checkpoints");
    let ctx = context_with(&[
        (
            "e",
            yjj.table_provider("hazchem_enterprises", &e_fields)
                .unwrap(),
        ),
        ("t", source.table_provider(&trucks, &t_fields).unwrap()),
        (
            "st",
            jtj.table_provider("hazmat_truck_checkpoints", &t_fields)
                .unwrap(),
        ),
    ]);
    // The scenario's question: which plant ordered shut still receives trucks at night?
    let q = "SELECT e.name, count(*) AS night_trucks FROM e JOIN {t} AS t ON t.consignee_uscc = e.uscc \
             WHERE e.status = '责令关停' AND t.pass_time >= '2026-10-01 00:00:00' \
             AND (extract(hour FROM t.pass_time) >= 22 OR extract(hour FROM t.pass_time) < 5) \
             GROUP BY e.name";
    let (got, scans) = query(&ctx, &q.replace("{t}", "t")).await.unwrap();
    let (expected, _) = query(&ctx, &q.replace("{t}", "st")).await.unwrap();
    assert_eq!(got, expected);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with(yiwang_adapters::demo::SCENARIO_SHUTDOWN_NAME),
        "{got:?}"
    );
    // Both sides pushed their own conditions.
    assert_eq!(scans.len(), 2);
    assert!(
        scans.iter().all(|s| s.line.contains(" WHERE ")),
        "{scans:?}"
    );
    server.drop_tables(&[&enterprises, &trucks]).await;
}

pub async fn records_pages_match_sqlite(server: Server) {
    let (enterprises, trucks) = load_scenario(server).await;
    let source = server.source("records-src", 5000);
    let jtj = scenario_source("jtj-db");
    let all = scenario_fields("hazmat_truck_checkpoints");
    let columns: Vec<_> = all
        .iter()
        .filter(|f| ["record_id", "plate", "pass_time"].contains(&f.name.as_str()))
        .cloned()
        .collect();
    // consignee_uscc is only in the filter: its type comes from the literal.
    let filter = parse(&format!(
        "consignee_uscc = '{SCENARIO_SHUTDOWN_USCC}' and pass_time >= '2026-10-01 22:00'"
    ))
    .unwrap();
    let read_all = |source: Arc<dyn Source>, table: String| {
        let columns = columns.clone();
        let filter = filter.clone();
        async move {
            let mut rows = Vec::new();
            let mut cursor = None;
            let mut pages = 0;
            loop {
                let page = source
                    .read(ReadRequest {
                        table: table.clone(),
                        columns: columns.clone(),
                        filter: Some(filter.clone()),
                        limit: 7,
                        cursor,
                    })
                    .await
                    .unwrap();
                assert_eq!(page.columns, ["record_id", "plate", "pass_time"]);
                assert!(page.rows.len() <= 7);
                rows.extend(
                    page.rows
                        .into_iter()
                        .map(|r| serde_json::Value::Array(r).to_string()),
                );
                pages += 1;
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            (sorted(rows), pages)
        }
    };
    let (got, pages) = read_all(Arc::clone(&source), trucks.clone()).await;
    let (expected, _) = read_all(
        Arc::new(jtj) as Arc<dyn Source>,
        "hazmat_truck_checkpoints".to_string(),
    )
    .await;
    assert!(pages > 1, "several pages");
    assert_eq!(got, expected);
    // A cursor belongs to its query.
    let first = source
        .read(ReadRequest {
            table: trucks.clone(),
            columns: columns.clone(),
            filter: Some(filter.clone()),
            limit: 1,
            cursor: None,
        })
        .await
        .unwrap();
    let err = source
        .read(ReadRequest {
            table: trucks.clone(),
            columns: columns.clone(),
            filter: None,
            limit: 1,
            cursor: first.next_cursor,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, AdapterError::BadCursor(_)), "{err}");
    server.drop_tables(&[&enterprises, &trucks]).await;
}

pub async fn lists_columns(server: Server) {
    let table = unique("cols");
    server.create_trap(&table).await;
    let source = server.source("cols-src", 5000);
    let columns = source.list_columns(&table).await.unwrap();
    let expected: Vec<(String, FieldType)> = crate::common::trap_fields()
        .into_iter()
        .map(|f| (f.name, f.field_type))
        .collect();
    assert_eq!(columns, expected);
    let err = source.list_columns("no_such_table").await.unwrap_err();
    assert!(matches!(err, AdapterError::NoSuchTable { .. }), "{err}");
    assert_eq!(err.http_status(), 404);
    server.drop_tables(&[&table]).await;
}

/// One query after another runs on pooled sessions: no connection, login or
/// statement preparation per query (MariaDB's pool closed every connection it got back
/// and cost a reconnect per query), and the session stays read-only.
pub async fn reuses_its_connections(server: Server) {
    let view = unique("session");
    let (session, read_only) = match server {
        Server::Postgres => (
            "pg_backend_pid()",
            "current_setting('transaction_read_only')",
        ),
        // A view cannot read @@variables in MySQL, but it can read this table.
        Server::Mysql => (
            "CONNECTION_ID()",
            "(SELECT LOWER(VARIABLE_VALUE) FROM information_schema.SESSION_VARIABLES \
             WHERE VARIABLE_NAME = 'TX_READ_ONLY')",
        ),
    };
    server
        .exec(&[format!(
            "CREATE VIEW {view} AS SELECT {session} AS id, {read_only} AS ro"
        )])
        .await;
    let source = server.source("session-src", 5000);
    let fields = [
        field("id", FieldType::Integer),
        field("ro", FieldType::String),
    ];
    let provider = source.table_provider(&view, &fields).unwrap();
    let ctx = context_with(&[("session", provider)]);
    let mut seen = Vec::new();
    for _ in 0..10 {
        let (rows, _) = query(&ctx, "SELECT id, ro FROM session").await.unwrap();
        seen.extend(rows);
        let page = source
            .read(ReadRequest {
                table: view.clone(),
                columns: fields.to_vec(),
                filter: None,
                limit: 10,
                cursor: None,
            })
            .await
            .unwrap();
        seen.extend(
            page.rows
                .into_iter()
                .map(|r| format!("{}|{}", r[0], r[1].as_str().unwrap_or_default())),
        );
    }
    let sessions: std::collections::BTreeSet<String> = seen
        .iter()
        .map(|r| r.split('|').next().unwrap_or_default().to_string())
        .collect();
    // A connection goes back to the pool a moment after its read, so the next read
    // may open a second one; but none is closed and replaced: never more sessions
    // than the pool holds (4).
    assert!(
        sessions.len() <= 4,
        "{} sessions for 20 reads: {seen:?}",
        sessions.len()
    );
    assert!(
        seen.iter().all(|r| r.ends_with("|on")),
        "the session stays read-only: {seen:?}"
    );
    server.drop_view(&view).await;
}

pub async fn slow_query_times_out_and_is_cancelled(server: Server) {
    let view = unique("slow");
    let sleep = match server {
        Server::Postgres => "pg_sleep(30)::text",
        Server::Mysql => "SLEEP(30)",
    };
    server
        .exec(&[format!("CREATE VIEW {view} AS SELECT {sleep} AS a")])
        .await;
    let source = server.source("slow-src", 500);
    let provider = source
        .table_provider(&view, &[field("a", FieldType::String)])
        .unwrap();
    let ctx = context_with(&[("slow", provider)]);
    let started = Instant::now();
    let err = query(&ctx, "SELECT a FROM slow").await.unwrap_err();
    assert!(
        matches!(adapter_error(&err), AdapterError::Timeout { ref source_id, ms: 500 } if source_id == "slow-src"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The statement no longer runs at the server.
    let running = match server {
        Server::Postgres => format!(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
             AND query LIKE '%{view}%' AND pid <> pg_backend_pid()"
        ),
        Server::Mysql => format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE INFO LIKE '%{view}%' AND ID <> CONNECTION_ID()"
        ),
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let n = server.count(&running).await;
        if n == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} statement(s) still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.drop_view(&view).await;
}

pub async fn server_down_is_unavailable_quickly(server: Server) {
    let port = crate::common::closed_port();
    let secret = "s3cret-Passw0rd";
    let source: Arc<dyn Source> = match server {
        Server::Postgres => Arc::new(
            yiwang_adapters::postgres::PostgresSource::new(
                "down-src",
                &format!("postgres://yiwang@127.0.0.1:{port}/yiwang_test"),
                Some(secret.to_string()),
                2,
                5000,
                None,
            )
            .unwrap(),
        ),
        Server::Mysql => Arc::new(
            yiwang_adapters::mysql::MysqlSource::new(
                "down-src",
                &format!("mysql://yiwang@127.0.0.1:{port}/yiwang_test"),
                Some(secret.to_string()),
                2,
                5000,
            )
            .unwrap(),
        ),
    };
    let provider = source
        .table_provider("anything", &[field("a", FieldType::String)])
        .unwrap();
    let ctx = context_with(&[("t", provider)]);
    let started = Instant::now();
    let err = query(&ctx, "SELECT a FROM t").await.unwrap_err();
    let found = adapter_error(&err);
    assert!(
        matches!(found, AdapterError::Unavailable { ref source_id, .. } if source_id == "down-src"),
        "{found}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!found.to_string().contains(secret));
    assert!(!err.to_string().contains(secret));

    // Wrong credentials on the live server: unavailable, and the password is not told.
    let source: Arc<dyn Source> = match server {
        Server::Postgres => {
            // The test server trusts every user it knows; an unknown role fails.
            let url = crate::common::pg_url().replace("yiwang@", "no_such_role@");
            Arc::new(
                yiwang_adapters::postgres::PostgresSource::new(
                    "auth-src",
                    &url,
                    Some(secret.to_string()),
                    2,
                    5000,
                    None,
                )
                .unwrap(),
            )
        }
        Server::Mysql => {
            let (url, _) = crate::common::mysql_url();
            Arc::new(
                yiwang_adapters::mysql::MysqlSource::new(
                    "auth-src",
                    &url,
                    Some(secret.to_string()),
                    2,
                    5000,
                )
                .unwrap(),
            )
        }
    };
    let provider = source
        .table_provider("anything", &[field("a", FieldType::String)])
        .unwrap();
    let ctx = context_with(&[("t", provider)]);
    let err = query(&ctx, "SELECT a FROM t").await.unwrap_err();
    let found = adapter_error(&err);
    assert!(
        matches!(found, AdapterError::Unavailable { ref source_id, .. } if source_id == "auth-src"),
        "{found}"
    );
    assert!(!found.to_string().contains(secret), "{found}");
    assert!(!err.to_string().contains(secret), "{err}");
    // The records endpoint reports the same.
    let err = source
        .read(ReadRequest {
            table: "anything".to_string(),
            columns: vec![field("a", FieldType::String)],
            filter: None,
            limit: 1,
            cursor: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, AdapterError::Unavailable { .. }), "{err}");
    assert_eq!(err.http_status(), 503);

    // A password in the URL is refused before anything connects.
    let refused = match server {
        Server::Postgres => yiwang_adapters::postgres::PostgresSource::new(
            "url-src",
            &format!("postgres://yiwang:{secret}@127.0.0.1:{port}/db"),
            None,
            1,
            1000,
            None,
        )
        .err(),
        Server::Mysql => yiwang_adapters::mysql::MysqlSource::new(
            "url-src",
            &format!("mysql://yiwang:{secret}@127.0.0.1:{port}/db"),
            None,
            1,
            1000,
        )
        .err(),
    };
    let refused = refused.expect("refused");
    assert!(matches!(refused, AdapterError::Config(_)));
    assert!(!refused.to_string().contains(secret));
}
