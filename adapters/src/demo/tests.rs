use std::path::Path;

use rusqlite::Connection;

use super::*;

fn open(dir: &Path, file: &str) -> Connection {
    Connection::open_with_flags(dir.join(file), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn fresh() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let created = create_scenario_databases(dir.path()).unwrap();
    let ids: Vec<&str> = created.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["yjj-db", "jtj-db", "gdgs-db"]);
    assert!(created.iter().all(|(_, path)| path.starts_with(dir.path())));
    dir
}

#[test]
fn the_shut_down_plant_is_listed_as_such() {
    let dir = fresh();
    let yjj = open(dir.path(), "yjj.sqlite");
    let (name, address, status, remark): (String, String, String, String) = yjj
        .query_row(
            "SELECT name, address, status, remark FROM hazchem_enterprises WHERE uscc = ?1",
            [SCENARIO_SHUTDOWN_USCC],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(name, SCENARIO_SHUTDOWN_NAME);
    assert_eq!(address, SCENARIO_SHUTDOWN_ADDRESS);
    assert_eq!(status, "责令关停");
    assert!(
        remark.contains("2026") && remark.contains("厂房已出租"),
        "{remark}"
    );
    assert_eq!(count(&yjj, "SELECT count(*) FROM hazchem_enterprises"), 40);
    assert_eq!(
        count(
            &yjj,
            "SELECT count(*) FROM hazchem_enterprises WHERE status = '责令关停'"
        ),
        1
    );
    assert_eq!(
        count(
            &yjj,
            "SELECT count(*) FROM hazchem_enterprises WHERE status = '停产整顿'"
        ),
        3
    );
    assert_eq!(
        count(
            &yjj,
            "SELECT count(DISTINCT uscc) FROM hazchem_enterprises WHERE length(uscc) = 18"
        ),
        40
    );
    assert_eq!(
        count(
            &yjj,
            "SELECT count(*) FROM hazchem_enterprises WHERE length(legal_rep_id) = 18 \
             AND contact_phone GLOB '1[3-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]'"
        ),
        40
    );
    assert_eq!(
        count(&yjj, "SELECT count(*) FROM enforcement_inspections"),
        100
    );
}

#[test]
fn the_shut_down_plant_gets_trucks_at_night_only() {
    let dir = fresh();
    let jtj = open(dir.path(), "jtj.sqlite");
    let night = "(substr(pass_time, 12, 2) >= '22' OR substr(pass_time, 12, 2) < '05')";
    let shut = format!("consignee_uscc = '{SCENARIO_SHUTDOWN_USCC}'");
    let night_entries = count(
        &jtj,
        &format!("SELECT count(*) FROM hazmat_truck_checkpoints WHERE {shut} AND {night}"),
    );
    assert!((20..=40).contains(&night_entries), "{night_entries}");
    assert_eq!(
        count(
            &jtj,
            &format!("SELECT count(*) FROM hazmat_truck_checkpoints WHERE {shut} AND NOT {night}")
        ),
        0
    );
    let total = count(&jtj, "SELECT count(*) FROM hazmat_truck_checkpoints");
    assert!((2500..=3500).contains(&total), "{total}");
    assert_eq!(
        count(
            &jtj,
            "SELECT count(*) FROM hazmat_truck_checkpoints \
             WHERE pass_time NOT BETWEEN '2026-10-01 00:00:00' AND '2026-10-31 23:59:59'"
        ),
        0
    );
    // record_id follows time, and equals the rowid the adapter pages on.
    assert_eq!(
        count(
            &jtj,
            "SELECT count(*) FROM hazmat_truck_checkpoints a JOIN hazmat_truck_checkpoints b \
             ON b.record_id = a.record_id + 1 WHERE b.pass_time < a.pass_time OR a.rowid != a.record_id"
        ),
        0
    );
    assert_eq!(
        count(&jtj, "SELECT count(*) FROM driver_qualifications"),
        200
    );
}

#[test]
fn the_shut_down_plant_uses_power_mostly_at_night() {
    let dir = fresh();
    let gdgs = open(dir.path(), "gdgs.sqlite");
    let (total, night_avg, day_avg): (f64, f64, f64) = gdgs
        .query_row(
            "SELECT sum(kwh), \
                    avg(CASE WHEN substr(hour, 12, 2) >= '22' OR substr(hour, 12, 2) < '05' THEN kwh END), \
                    avg(CASE WHEN substr(hour, 12, 2) BETWEEN '08' AND '17' THEN kwh END) \
             FROM enterprise_hourly_power WHERE uscc = ?1",
            [SCENARIO_SHUTDOWN_USCC],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(total > 10_000.0, "{total}");
    assert!(night_avg > 4.0 * day_avg, "{night_avg} vs {day_avg}");
    assert_eq!(
        count(&gdgs, "SELECT count(*) FROM enterprise_hourly_power"),
        40 * 31 * 24
    );
    assert_eq!(
        count(
            &gdgs,
            "SELECT count(DISTINCT account_no) FROM enterprise_hourly_power"
        ),
        40
    );
    assert_eq!(
        count(&gdgs, "SELECT count(*) FROM resident_power_accounts"),
        200
    );
}

#[test]
fn one_cross_department_query_finds_exactly_the_shut_down_plant() {
    let dir = fresh();
    let conn = Connection::open_in_memory().unwrap();
    for (schema, file) in [
        ("yjj", "yjj.sqlite"),
        ("jtj", "jtj.sqlite"),
        ("gdgs", "gdgs.sqlite"),
    ] {
        let uri = dir.path().join(file);
        conn.execute("ATTACH DATABASE ?1 AS ?2", (uri.to_str().unwrap(), schema))
            .unwrap();
    }
    let found: Vec<(String, String)> = conn
        .prepare(
            "WITH night_trucks AS (
                 SELECT consignee_uscc AS uscc, count(*) AS n FROM jtj.hazmat_truck_checkpoints
                 WHERE substr(pass_time, 12, 2) >= '22' OR substr(pass_time, 12, 2) < '05'
                 GROUP BY consignee_uscc),
             night_power AS (
                 SELECT uscc, sum(kwh) AS kwh FROM gdgs.enterprise_hourly_power
                 WHERE substr(hour, 12, 2) >= '22' OR substr(hour, 12, 2) < '05'
                 GROUP BY uscc)
             SELECT e.uscc, e.name FROM yjj.hazchem_enterprises e
             JOIN night_trucks t ON t.uscc = e.uscc
             JOIN night_power p ON p.uscc = e.uscc
             WHERE e.status IN ('责令关停', '停产整顿') AND t.n > 0 AND p.kwh > 1000",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        found,
        [(
            SCENARIO_SHUTDOWN_USCC.to_string(),
            SCENARIO_SHUTDOWN_NAME.to_string()
        )]
    );
    // The suspended plants are quiet: no night trucks, next to no power.
    let quiet = count(
        &conn,
        "SELECT count(*) FROM yjj.hazchem_enterprises e WHERE e.status = '停产整顿' \
         AND NOT EXISTS (SELECT 1 FROM jtj.hazmat_truck_checkpoints t WHERE t.consignee_uscc = e.uscc \
             AND (substr(t.pass_time, 12, 2) >= '22' OR substr(t.pass_time, 12, 2) < '05')) \
         AND (SELECT sum(kwh) FROM gdgs.enterprise_hourly_power p WHERE p.uscc = e.uscc) < 2000",
    );
    assert_eq!(quiet, 3);
}

#[test]
fn sensitive_columns_carry_a_masking_rule() {
    for table in scenario_tables() {
        assert!(
            SCENARIO_SOURCES
                .iter()
                .any(|s| s.source_id == table.source_id)
        );
        for column in &table.columns {
            assert_eq!(
                column.sensitivity == Sensitivity::Sensitive,
                column.masking.is_some(),
                "{}.{}",
                table.table,
                column.name
            );
        }
    }
    let names: Vec<&str> = scenario_tables().iter().map(|t| t.table).collect();
    assert_eq!(
        names,
        [
            "hazchem_enterprises",
            "enforcement_inspections",
            "hazmat_truck_checkpoints",
            "driver_qualifications",
            "enterprise_hourly_power",
            "resident_power_accounts"
        ]
    );
}

#[test]
fn creation_is_idempotent_and_deterministic() {
    let first = fresh();
    let second = fresh();
    let files = ["yjj.sqlite", "jtj.sqlite", "gdgs.sqlite"];
    let read = |dir: &Path, file: &str| std::fs::read(dir.join(file)).unwrap();
    for file in files {
        assert!(
            read(first.path(), file) == read(second.path(), file),
            "{file} differs between two fresh runs"
        );
    }
    let modified = |file: &str| {
        std::fs::metadata(first.path().join(file))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before: Vec<_> = files.iter().map(|f| modified(f)).collect();
    create_scenario_databases(first.path()).unwrap();
    let after: Vec<_> = files.iter().map(|f| modified(f)).collect();
    assert_eq!(before, after, "a second run rewrote a database");
    let listing: Vec<String> = std::fs::read_dir(first.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listing.len(), 3, "stray files: {listing:?}");
}

#[test]
fn a_file_without_the_tables_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jtj.sqlite"), b"not a database").unwrap();
    create_scenario_databases(dir.path()).unwrap();
    let jtj = open(dir.path(), "jtj.sqlite");
    assert_eq!(
        count(&jtj, "SELECT count(*) FROM driver_qualifications"),
        200
    );
}
