//! CSV and Parquet files written in a temporary directory.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use yiwang_adapters::files::{FileFormat, FileSource};
use yiwang_adapters::{AdapterError, ReadRequest, Source};
use yiwang_catalog::filter::parse;
use yiwang_catalog::model::FieldType;

use crate::common::{
    check_trap, context_with, field, query, rows, trap_batch, trap_fields, trap_rows,
};

/// The trap table as CSV, columns in another order than the catalog's, plus a column
/// the dataset does not have.
fn write_csv(dir: &Path) {
    let mut text = String::from("note,t,s,k,b,x,d\n");
    for r in trap_rows() {
        let quoted = |s: Option<&str>| {
            s.map_or(String::new(), |s| format!("\"{}\"", s.replace('"', "\"\"")))
        };
        text.push_str(&format!(
            "n{},{},{},{},{},{},{}\n",
            r.k,
            r.t.unwrap_or_default(),
            quoted(r.s),
            r.k,
            r.b.map(|b| b.to_string()).unwrap_or_default(),
            r.x.map(|x| x.to_string()).unwrap_or_default(),
            r.d.unwrap_or_default(),
        ));
    }
    fs::write(dir.join("trap.csv"), text).unwrap();
}

/// The trap table as Parquet, four rows per row group so statistics can prune.
fn write_parquet(dir: &Path) {
    let batch = trap_batch();
    let file = fs::File::create(dir.join("trap.parquet")).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(4))
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_reads_by_header_with_the_dataset_types() {
    let dir = tempfile::tempdir().unwrap();
    write_csv(dir.path());
    let source = FileSource::new(
        "csv-src",
        dir.path().to_path_buf(),
        FileFormat::Csv {
            delimiter: b',',
            has_header: true,
        },
    );
    check_trap(
        source.table_provider("trap", &trap_fields()).unwrap(),
        false,
    )
    .await;

    let columns = source.list_columns("trap").await.unwrap();
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["note", "t", "s", "k", "b", "x", "d"]);
    assert!(columns.iter().all(|(_, t)| *t == FieldType::String));

    // The records endpoint, paged.
    let req = |cursor| ReadRequest {
        table: "trap".to_string(),
        columns: vec![field("k", FieldType::Integer), field("d", FieldType::Date)],
        filter: Some(parse("s like 'a%' and t >= '2026-10-01 22:00'").unwrap()),
        limit: 2,
        cursor,
    };
    let first = source.read(req(None)).await.unwrap();
    assert_eq!(
        first.rows,
        [
            vec![serde_json::json!(1), serde_json::json!("2026-10-01")],
            vec![serde_json::json!(3), serde_json::Value::Null],
        ]
    );
    let second = source.read(req(first.next_cursor)).await.unwrap();
    assert_eq!(second.rows.len(), 2);
    let third = source.read(req(second.next_cursor)).await.unwrap();
    assert_eq!(
        third.rows,
        [vec![serde_json::json!(9), serde_json::json!("2026-10-15")]]
    );
    assert_eq!(third.next_cursor, None);

    // A column the file lacks, and a file that is not there.
    let err = source
        .table_provider("trap", &[field("missing", FieldType::String)])
        .unwrap_err();
    assert!(matches!(err, AdapterError::Source { .. }), "{err}");
    let err = source.table_provider("absent", &trap_fields()).unwrap_err();
    assert_eq!(
        err,
        AdapterError::Unavailable {
            source_id: "csv-src".to_string(),
            message: "file 'absent.csv' is missing".to_string()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_without_header_is_read_by_position() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("plain.csv"),
        "1;苏F12345;2026-10-01\n2;苏FA0001;\n",
    )
    .unwrap();
    let source = FileSource::new(
        "plain-src",
        dir.path().to_path_buf(),
        FileFormat::Csv {
            delimiter: b';',
            has_header: false,
        },
    );
    let fields = [
        field("id", FieldType::Integer),
        field("plate", FieldType::String),
        field("day", FieldType::Date),
    ];
    let ctx = context_with(&[("p", source.table_provider("plain", &fields).unwrap())]);
    let (got, _) = query(&ctx, "SELECT plate, day FROM p ORDER BY id")
        .await
        .unwrap();
    assert_eq!(got, ["苏F12345|2026-10-01", "苏FA0001|NULL"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_reads_by_name_and_prunes() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(dir.path());
    let source = FileSource::new("pq-src", dir.path().to_path_buf(), FileFormat::Parquet);
    check_trap(
        source.table_provider("trap", &trap_fields()).unwrap(),
        false,
    )
    .await;

    let columns = source.list_columns("trap").await.unwrap();
    let expected: Vec<(String, FieldType)> = trap_fields()
        .into_iter()
        .map(|f| (f.name, f.field_type))
        .collect();
    assert_eq!(columns, expected);

    // A dataset with fewer columns, in another order.
    let fields = [field("x", FieldType::Float), field("s", FieldType::String)];
    let ctx = context_with(&[("t", source.table_provider("trap", &fields).unwrap())]);
    let (got, _) = query(&ctx, "SELECT s, x FROM t WHERE x > 100")
        .await
        .unwrap();
    assert_eq!(got, ["南通恒昌化工有限公司|10000.25"]);

    // The filter reaches the Parquet scan (row groups and pages are pruned by it).
    let ctx = context_with(&[("t", source.table_provider("trap", &trap_fields()).unwrap())]);
    let explained = ctx
        .sql("EXPLAIN SELECT s FROM t WHERE k > 10")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = rows(&explained).join("\n");
    assert!(text.contains("predicate=k@0 > 10"), "{text}");
    assert!(!text.contains("projection=[k, s, d"), "{text}");

    let err = source.table_provider("absent", &fields).unwrap_err();
    assert!(matches!(err, AdapterError::Unavailable { .. }), "{err}");
    let _: Arc<dyn Source> = Arc::new(source);
    // The schema handed to DataFusion is the dataset's.
    assert_eq!(trap_batch().schema().field(3).data_type().clone(), {
        DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None)
    });
}
