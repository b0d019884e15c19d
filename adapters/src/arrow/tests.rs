use super::*;
use yiwang_catalog::model::Sensitivity;

fn field(name: &str, field_type: FieldType) -> Field {
    Field {
        name: name.to_string(),
        title: name.to_string(),
        field_type,
        sensitivity: Sensitivity::Public,
        masking: None,
    }
}

#[test]
fn dates_and_times_round_trip() {
    assert_eq!(parse_date("1970-01-01"), Some(0));
    assert_eq!(parse_date("2026-10-01"), Some(20_727));
    assert_eq!(format_date(20_727).as_deref(), Some("2026-10-01"));
    assert_eq!(format_date(-1).as_deref(), Some("1969-12-31"));
    for bad in [
        "2026-02-30",
        "2026-13-01",
        "2026-1-01",
        "2026-10-01 ",
        "20261001",
        "",
    ] {
        assert_eq!(parse_date(bad), None, "{bad}");
    }
    let t = parse_datetime("2026-10-01 22:05").unwrap();
    assert_eq!(parse_datetime("2026-10-01T22:05:00"), Some(t));
    assert_eq!(format_datetime(t).as_deref(), Some("2026-10-01 22:05:00"));
    let frac = parse_datetime("2026-10-01 22:05:07.1234567").unwrap();
    assert_eq!(
        format_datetime(frac).as_deref(),
        Some("2026-10-01 22:05:07.123456")
    );
    assert_eq!(parse_datetime("2026-10-01"), Some(20_727 * MICROS_PER_DAY));
    for bad in [
        "2026-10-01 24:00",
        "2026-10-01 22",
        "2026-10-01 22:00:0",
        "2026-10-01 22:00:00.",
        "2026-10-01 22:00:00Z",
        "2026-10-01_22:00",
    ] {
        assert_eq!(parse_datetime(bad), None, "{bad}");
    }
    assert_eq!(
        format_datetime(-1).as_deref(),
        Some("1969-12-31 23:59:59.999999")
    );
}

#[test]
fn the_date_writer_agrees_with_the_calendar() {
    // Every 37th day from year 0000 to 9999, against the `time` crate.
    for days in (-719_528..2_932_896).step_by(37) {
        let date = date_of(days).unwrap();
        let expected = format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        );
        assert_eq!(
            format_date(days).as_deref(),
            Some(expected.as_str()),
            "{days}"
        );
    }
    assert_eq!(format_date(-719_528).as_deref(), Some("0000-01-01"));
    assert_eq!(format_date(2_932_896).as_deref(), Some("9999-12-31"));
    assert_eq!(format_date(-719_529), None);
    assert_eq!(format_date(2_932_897), None);
    assert_eq!(format_datetime(i64::MAX), None);
    let mut out = b"x".to_vec();
    assert!(!write_datetime(&mut out, i64::MIN));
    assert_eq!(out, b"x", "nothing is written for a time out of range");
    assert_eq!(
        format_datetime(2_932_896 * MICROS_PER_DAY + MICROS_PER_DAY - 1).as_deref(),
        Some("9999-12-31 23:59:59.999999")
    );
}

#[test]
fn builds_batches_and_rejects_values_that_do_not_fit() {
    let fields = vec![
        field("s", FieldType::String),
        field("n", FieldType::Integer),
        field("b", FieldType::Boolean),
        field("d", FieldType::Date),
        field("t", FieldType::Datetime),
    ];
    let schema = arrow_schema(&fields);
    let mut builder = BatchBuilder::new("src", &fields, Arc::clone(&schema));
    let row = [
        Cell::Int(7),
        Cell::Float(3.0),
        Cell::Text("TRUE"),
        Cell::Text("2026-10-01"),
        Cell::Text("2026-10-01 22:00"),
    ];
    for (i, cell) in row.into_iter().enumerate() {
        builder.push(i, cell).unwrap();
    }
    builder.end_row();
    for i in 0..fields.len() {
        builder.push(i, Cell::Null).unwrap();
    }
    builder.end_row();
    let batch = builder.finish().unwrap();
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(json_value(batch.column(0).as_ref(), 0), Json::from("7"));
    assert_eq!(json_value(batch.column(1).as_ref(), 0), Json::from(3));
    assert_eq!(json_value(batch.column(2).as_ref(), 0), Json::Bool(true));
    assert_eq!(
        json_value(batch.column(3).as_ref(), 0),
        Json::from("2026-10-01")
    );
    assert_eq!(
        json_value(batch.column(4).as_ref(), 0),
        Json::from("2026-10-01 22:00:00")
    );
    assert_eq!(json_value(batch.column(4).as_ref(), 1), Json::Null);
    assert!(builder.is_empty());

    let err = builder.push(1, Cell::Float(2.5)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "source 'src' failed: column 'n' holds a fractional number that is not a valid integer"
    );
    assert!(builder.push(2, Cell::Text("yes")).is_err());
    assert!(builder.push(3, Cell::Text("2026-10-01 00:00")).is_err());
}

#[test]
fn a_batch_without_columns_keeps_its_row_count() {
    let mut builder = BatchBuilder::new("src", &[], arrow_schema(&[]));
    builder.end_row();
    builder.end_row();
    assert_eq!(builder.finish().unwrap().num_rows(), 2);
}
