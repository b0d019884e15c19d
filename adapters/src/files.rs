//! CSV and Parquet files: one file per table, `<dir>/<table>.csv` or
//! `<dir>/<table>.parquet`, read by DataFusion's own listing table and file formats.
//!
//! DataFusion does the pushdown these formats allow: projection for both, row-group
//! pruning and page filtering from statistics for Parquet, and the limit. The table's
//! schema is the dataset's fields. Parquet columns are matched by name; CSV columns by
//! the header (or, without a header, by position in catalog order), and a CSV file is
//! read with the dataset's types given, not inferred: dates as `YYYY-MM-DD`, times as
//! `YYYY-MM-DD HH:MM:SS[.f]` (Arrow's CSV reader does not take `HH:MM` alone).
//!
//! A missing file is [`AdapterError::Unavailable`]: the department has not delivered it.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::physical_plan::ExecutionPlan;
use futures::future::BoxFuture;
use yiwang_catalog::model::{Field, FieldType};

use crate::arrow::{arrow_schema, arrow_type};
use crate::error::AdapterError;
use crate::provider::{check_fields, checked_table};
use crate::records;
use crate::source::{ReadRequest, ReadResult, Source};

/// The format of a file source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv { delimiter: u8, has_header: bool },
    Parquet,
}

/// A directory of CSV or Parquet files.
pub struct FileSource {
    id: String,
    dir: PathBuf,
    format: FileFormat,
}

impl FileSource {
    pub fn new(id: impl Into<String>, dir: PathBuf, format: FileFormat) -> Self {
        FileSource {
            id: id.into(),
            dir,
            format,
        }
    }

    /// The file of `table`, which must exist.
    fn file(&self, table: &str) -> Result<PathBuf, AdapterError> {
        checked_table(table, '"')?;
        let extension = match self.format {
            FileFormat::Csv { .. } => "csv",
            FileFormat::Parquet => "parquet",
        };
        let path = self.dir.join(format!("{table}.{extension}"));
        if !path.is_file() {
            tracing::warn!(source = %self.id, path = %path.display(), "source file is missing");
            return Err(AdapterError::Unavailable {
                source_id: self.id.clone(),
                message: format!("file '{table}.{extension}' is missing"),
            });
        }
        Ok(path)
    }

    fn failed(&self, err: impl fmt::Display) -> AdapterError {
        AdapterError::Source {
            source_id: self.id.clone(),
            message: err.to_string(),
        }
    }

    /// The columns of the file, named and typed as the file declares them (all text
    /// for CSV).
    fn file_schema(&self, path: &Path) -> Result<SchemaRef, AdapterError> {
        let file = File::open(path).map_err(|e| AdapterError::Unavailable {
            source_id: self.id.clone(),
            message: format!("cannot open the file: {}", e.kind()),
        })?;
        match self.format {
            FileFormat::Csv {
                delimiter,
                has_header,
            } => {
                let (schema, _) = datafusion::arrow::csv::reader::Format::default()
                    .with_header(has_header)
                    .with_delimiter(delimiter)
                    .infer_schema(file, Some(0))
                    .map_err(|e| self.failed(e))?;
                Ok(Arc::new(schema))
            }
            FileFormat::Parquet => ParquetRecordBatchReaderBuilder::try_new(file)
                .map(|b| Arc::clone(b.schema()))
                .map_err(|e| self.failed(e)),
        }
    }

    fn listing(&self, path: &Path, schema: SchemaRef) -> Result<ListingTable, AdapterError> {
        let url = ListingTableUrl::parse(path.to_string_lossy()).map_err(|e| self.failed(e))?;
        let options = match self.format {
            FileFormat::Csv {
                delimiter,
                has_header,
            } => ListingOptions::new(Arc::new(
                CsvFormat::default()
                    .with_has_header(has_header)
                    .with_delimiter(delimiter),
            ))
            .with_file_extension(".csv"),
            FileFormat::Parquet => ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet"),
        };
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        ListingTable::try_new(config).map_err(|e| self.failed(e))
    }
}

impl Source for FileSource {
    fn kind(&self) -> &'static str {
        match self.format {
            FileFormat::Csv { .. } => "csv",
            FileFormat::Parquet => "parquet",
        }
    }

    fn read(&self, req: ReadRequest) -> BoxFuture<'static, Result<ReadResult, AdapterError>> {
        records::read_with(self, &self.id, req)
    }

    fn list_columns(
        &self,
        table: &str,
    ) -> BoxFuture<'static, Result<Vec<(String, FieldType)>, AdapterError>> {
        // Asked for by name: a missing file is a table that does not exist.
        let file = self.file(table).map_err(|e| match e {
            AdapterError::Unavailable { source_id, .. } => AdapterError::NoSuchTable {
                source_id,
                table: table.to_string(),
            },
            other => other,
        });
        let columns = file.and_then(|path| self.file_schema(&path)).map(|schema| {
            schema
                .fields()
                .iter()
                .map(|f| {
                    let field_type = match self.format {
                        FileFormat::Csv { .. } => FieldType::String,
                        FileFormat::Parquet => field_type_of(f.data_type()),
                    };
                    (f.name().clone(), field_type)
                })
                .collect()
        });
        Box::pin(async move { columns })
    }

    /// Reads the file's header (CSV) or footer (Parquet) to match columns by name, so
    /// a missing file or column is reported here, before the query runs.
    fn table_provider(
        &self,
        table: &str,
        fields: &[Field],
    ) -> Result<Arc<dyn TableProvider>, AdapterError> {
        check_fields(fields)?;
        let path = self.file(table)?;
        let schema = arrow_schema(fields);
        if let FileFormat::Csv {
            has_header: false, ..
        } = self.format
        {
            return Ok(Arc::new(self.listing(&path, schema)?));
        }
        let file_schema = self.file_schema(&path)?;
        let mut positions = Vec::with_capacity(fields.len());
        for field in fields {
            let Some(position) = file_schema
                .fields()
                .iter()
                .position(|f| f.name() == &field.name)
            else {
                return Err(self.failed(format!("column '{}' is not in the file", field.name)));
            };
            positions.push(position);
        }
        if self.format == FileFormat::Parquet {
            // Parquet is read by name: the dataset's schema is enough.
            return Ok(Arc::new(self.listing(&path, schema)?));
        }
        // CSV is read by position: read every column of the file, typed where the
        // dataset names it, and put the dataset's columns in catalog order on top.
        let csv_schema = Arc::new(Schema::new(
            file_schema
                .fields()
                .iter()
                .map(|f| {
                    let data_type = fields
                        .iter()
                        .find(|d| &d.name == f.name())
                        .map_or(DataType::Utf8, |d| arrow_type(d.field_type));
                    datafusion::arrow::datatypes::Field::new(f.name(), data_type, true)
                })
                .collect::<Vec<_>>(),
        ));
        let inner = Arc::new(self.listing(&path, csv_schema)?);
        if positions.iter().copied().eq(0..file_schema.fields().len()) {
            return Ok(inner);
        }
        Ok(Arc::new(Reordered {
            inner,
            schema,
            positions,
        }))
    }
}

/// A table whose columns are some of another table's, in another order. Filters name
/// columns, so they pass through unchanged; projections are mapped.
#[derive(Debug)]
struct Reordered {
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
    /// For each column of `schema`, its index in `inner`.
    positions: Vec<usize>,
}

#[async_trait]
impl TableProvider for Reordered {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mapped: Vec<usize> = match projection {
            Some(p) => p.iter().map(|&i| self.positions[i]).collect(),
            None => self.positions.clone(),
        };
        self.inner.scan(state, Some(&mapped), filters, limit).await
    }
}

/// A field type for a Parquet column's Arrow type.
fn field_type_of(t: &DataType) -> FieldType {
    match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => FieldType::Integer,
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => FieldType::Float,
        DataType::Boolean => FieldType::Boolean,
        DataType::Date32 | DataType::Date64 => FieldType::Date,
        DataType::Timestamp(TimeUnit::Second | TimeUnit::Millisecond, _)
        | DataType::Timestamp(TimeUnit::Microsecond | TimeUnit::Nanosecond, _) => {
            FieldType::Datetime
        }
        _ => FieldType::String,
    }
}
