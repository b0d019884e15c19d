//! The PostgreSQL and MariaDB/MySQL test servers: creating, filling and dropping the
//! uniquely named tables of one test, with the drivers directly.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use yiwang_adapters::Source;
use yiwang_adapters::mysql::MysqlSource;
use yiwang_adapters::postgres::PostgresSource;
use yiwang_catalog::model::{Field, FieldType};

use crate::common::{TrapRow, mysql_url, pg_url, trap_fields, trap_rows};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    Mysql,
}

/// Rows per INSERT statement.
const CHUNK: usize = 500;

impl Server {
    /// A source on this server with the given time limit.
    pub fn source(self, id: &str, timeout_ms: u64) -> Arc<dyn Source> {
        match self {
            Server::Postgres => {
                Arc::new(PostgresSource::new(id, &pg_url(), None, 4, timeout_ms, None).unwrap())
            }
            Server::Mysql => {
                let (url, password) = mysql_url();
                Arc::new(MysqlSource::new(id, &url, Some(password), 4, timeout_ms).unwrap())
            }
        }
    }

    /// Runs statements on a fresh connection of the test's own.
    pub async fn exec(self, statements: &[String]) {
        match self {
            Server::Postgres => {
                let client = pg_client().await;
                for s in statements {
                    client
                        .batch_execute(s)
                        .await
                        .unwrap_or_else(|e| panic!("{s}: {e}"));
                }
            }
            Server::Mysql => {
                let mut conn = my_conn().await;
                for s in statements {
                    conn.query_drop(s)
                        .await
                        .unwrap_or_else(|e| panic!("{s}: {e}"));
                }
                conn.disconnect().await.unwrap();
            }
        }
    }

    /// The first column of the first row of `sql`, as a number.
    pub async fn count(self, sql: &str) -> i64 {
        match self {
            Server::Postgres => pg_client().await.query_one(sql, &[]).await.unwrap().get(0),
            Server::Mysql => {
                let mut conn = my_conn().await;
                let n: Option<i64> = conn.query_first(sql).await.unwrap();
                conn.disconnect().await.unwrap();
                n.unwrap_or_default()
            }
        }
    }

    fn column_type(self, t: FieldType, exact_decimal: bool) -> &'static str {
        match (self, t) {
            (Server::Postgres, FieldType::String) => "varchar(200)",
            (Server::Postgres, FieldType::Integer) => "bigint",
            (Server::Postgres, FieldType::Float) if exact_decimal => "numeric(14, 2)",
            (Server::Postgres, FieldType::Float) => "double precision",
            (Server::Postgres, FieldType::Boolean) => "boolean",
            (Server::Postgres, FieldType::Date) => "date",
            (Server::Postgres, FieldType::Datetime) => "timestamp",
            // The server's default collation: case- and accent-insensitive, PAD SPACE.
            (Server::Mysql, FieldType::String) => "VARCHAR(200)",
            (Server::Mysql, FieldType::Integer) => "BIGINT",
            (Server::Mysql, FieldType::Float) if exact_decimal => "DECIMAL(14, 2)",
            (Server::Mysql, FieldType::Float) => "DOUBLE",
            (Server::Mysql, FieldType::Boolean) => "BOOLEAN",
            (Server::Mysql, FieldType::Date) => "DATE",
            (Server::Mysql, FieldType::Datetime) => "DATETIME(6)",
        }
    }

    fn quote(self, name: &str) -> String {
        match self {
            Server::Postgres => format!("\"{name}\""),
            Server::Mysql => format!("`{name}`"),
        }
    }

    /// Creates `table` with a column per field and inserts `rows` (values as text,
    /// converted by the server).
    pub async fn create_table(
        self,
        table: &str,
        fields: &[Field],
        rows: &[Vec<Option<String>>],
        exact_decimal: bool,
    ) {
        let columns: Vec<String> = fields
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    self.quote(&f.name),
                    self.column_type(f.field_type, exact_decimal)
                )
            })
            .collect();
        self.exec(&[format!(
            "CREATE TABLE {} ({})",
            self.quote(table),
            columns.join(", ")
        )])
        .await;
        for chunk in rows.chunks(CHUNK) {
            self.insert(table, fields, chunk).await;
        }
    }

    async fn insert(self, table: &str, fields: &[Field], rows: &[Vec<Option<String>>]) {
        match self {
            Server::Postgres => {
                let mut n = 0;
                let values: Vec<String> = rows
                    .iter()
                    .map(|_| {
                        let marks: Vec<String> = fields
                            .iter()
                            .map(|f| {
                                n += 1;
                                format!("${n}::text::{}", self.column_type(f.field_type, false))
                            })
                            .collect();
                        format!("({})", marks.join(", "))
                    })
                    .collect();
                let sql = format!("INSERT INTO \"{table}\" VALUES {}", values.join(", "));
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = rows
                    .iter()
                    .flatten()
                    .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                pg_client().await.execute(&sql, &params).await.unwrap();
            }
            Server::Mysql => {
                let marks = format!("({})", vec!["?"; fields.len()].join(", "));
                let sql = format!(
                    "INSERT INTO `{table}` VALUES {}",
                    vec![marks; rows.len()].join(", ")
                );
                let params: Vec<mysql_async::Value> = rows
                    .iter()
                    .flatten()
                    .map(|v| match v {
                        Some(text) => mysql_async::Value::Bytes(text.clone().into_bytes()),
                        None => mysql_async::Value::NULL,
                    })
                    .collect();
                let mut conn = my_conn().await;
                conn.exec_drop(sql, params).await.unwrap();
                conn.disconnect().await.unwrap();
            }
        }
    }

    /// The trap table, with a NUMERIC/DECIMAL float column so the cast is exercised.
    pub async fn create_trap(self, table: &str) {
        let rows: Vec<Vec<Option<String>>> = trap_rows().iter().map(|r| self.trap_row(r)).collect();
        self.create_table(table, &trap_fields(), &rows, true).await;
    }

    fn trap_row(self, r: &TrapRow) -> Vec<Option<String>> {
        let boolean = |b: bool| match self {
            Server::Postgres => b.to_string(),
            Server::Mysql => u8::from(b).to_string(),
        };
        vec![
            Some(r.k.to_string()),
            r.s.map(str::to_string),
            r.d.map(str::to_string),
            r.t.map(str::to_string),
            r.x.map(|x| x.to_string()),
            r.b.map(boolean),
        ]
    }

    pub async fn drop_tables(self, tables: &[&str]) {
        let statements: Vec<String> = tables
            .iter()
            .map(|t| format!("DROP TABLE IF EXISTS {}", self.quote(t)))
            .collect();
        self.exec(&statements).await;
    }

    pub async fn drop_view(self, view: &str) {
        self.exec(&[format!("DROP VIEW IF EXISTS {}", self.quote(view))])
            .await;
    }
}

pub async fn pg_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL server is up");
    tokio::spawn(connection);
    client
}

pub async fn my_conn() -> mysql_async::Conn {
    let url = std::env::var("YIWANG_TEST_MYSQL_URL").expect("YIWANG_TEST_MYSQL_URL");
    mysql_async::Conn::from_url(url)
        .await
        .expect("the test MySQL server is up")
}
