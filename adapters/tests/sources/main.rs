//! Every source kind against real parts: the demo SQLite databases, the PostgreSQL and
//! MariaDB servers of `ops/testdb.sh` (`YIWANG_TEST_PG_URL`, `YIWANG_TEST_MYSQL_URL`),
//! CSV and Parquet files, and a local HTTPS API. One test binary, so DataFusion is
//! linked once.

mod common;
mod files;
mod http_json;
mod servers;
mod sql_suite;
mod sqlite;

mod postgres {
    crate::sql_suite::sql_source_tests!(crate::servers::Server::Postgres);
}

mod mysql {
    crate::sql_suite::sql_source_tests!(crate::servers::Server::Mysql);
}
