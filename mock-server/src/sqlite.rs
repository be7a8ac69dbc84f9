//! SQLite as a [`Database`]: one file (`--store sqlite:PATH`), in this process.

use std::borrow::Cow;
use std::path::PathBuf;

use rusqlite::OpenFlags;
use rusqlite::config::DbConfig;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};

use crate::sql::{Cell, Connection, Database, Dialect, Param, Row};

/// The store file at `path`.
pub(crate) struct Sqlite {
    pub(crate) path: PathBuf,
}

impl Database for Sqlite {
    type Connection = rusqlite::Connection;
    const DIALECT: Dialect = Dialect::Sqlite;
    // Each reads the file in this process: as many as requests at once.
    const CONNECTIONS: usize = 256;
    // The file's locks are taken once, not once a statement.
    const BEGIN_READ: Option<&'static str> = Some("BEGIN");
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    // One file, one writer: SQLite serialises them whatever they write.
    const BEGIN_GRANTS_WRITE: &'static str = "BEGIN IMMEDIATE";

    /// A connection to the file, made (with its directory) if missing.
    fn connect(&self) -> Result<rusqlite::Connection, String> {
        let path = &self.path;
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let connection = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| e.to_string())?;
        configure(&connection).map_err(|e| e.to_string())?;
        Ok(connection)
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    /// SQLite's calls are function calls of microseconds: they run where they are.
    fn wait<T>(&self, work: impl FnOnce() -> T) -> T {
        work()
    }
}

fn configure(connection: &rusqlite::Connection) -> rusqlite::Result<()> {
    // WAL: readers never wait for the writer. NORMAL: a commit survives the
    // process being killed (not the machine losing power), at a fraction of FULL's cost.
    connection.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;",
    )?;
    // Without it, a statement whose parameters feed the query planner (most of
    // ours, with the bundled build's STAT4) is prepared again on every run: that
    // was two thirds of a patient search's time.
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    connection.set_prepared_statement_cache_capacity(32);
    Ok(())
}

impl Connection for rusqlite::Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, String> {
        let run = || -> rusqlite::Result<Vec<Row>> {
            let mut statement = self.prepare_cached(&numbered(sql))?;
            let columns = statement.column_count();
            let mut rows = statement.query(rusqlite::params_from_iter(params.iter().map(bound)))?;
            let mut read = Vec::new();
            while let Some(row) = rows.next()? {
                read.push(
                    (0..columns)
                        .map(|i| row.get_ref(i).map(cell))
                        .collect::<rusqlite::Result<Row>>()?,
                );
            }
            Ok(read)
        };
        run().map_err(|e| e.to_string())
    }

    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, String> {
        self.prepare_cached(&numbered(sql))
            .and_then(|mut statement| statement.execute(rusqlite::params_from_iter(params.iter().map(bound))))
            .map(|changed| changed as u64)
            .map_err(|e| e.to_string())
    }

    fn batch(&self, sql: &str) -> Result<(), String> {
        // The transaction statements run on every request: prepared once.
        if matches!(sql, "BEGIN" | "COMMIT" | "ROLLBACK") {
            return Connection::execute(self, sql, &[]).map(drop);
        }
        self.execute_batch(sql).map_err(|e| e.to_string())
    }
}

/// The statement with PostgreSQL's `$1` written as SQLite's `?1`. SQLite reads
/// `$1` too, but as a name, numbered in the order names first appear.
fn numbered(sql: &str) -> Cow<'_, str> {
    let numbered =
        |i: usize, bytes: &[u8]| bytes[i] == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
    let bytes = sql.as_bytes();
    if !(0..bytes.len()).any(|i| numbered(i, bytes)) {
        return Cow::Borrowed(sql);
    }
    // Byte for byte: every statement runs through here.
    let written: Vec<u8> = (0..bytes.len())
        .map(|i| if numbered(i, bytes) { b'?' } else { bytes[i] })
        .collect();
    Cow::Owned(String::from_utf8(written).unwrap_or_else(|_| sql.to_owned()))
}

fn bound<'a>(param: &'a Param<'a>) -> ToSqlOutput<'a> {
    match param {
        Param::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
        Param::Int(n) => ToSqlOutput::Owned(Value::Integer(*n)),
        Param::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        Param::Ints(list) => ToSqlOutput::Owned(Value::Text(serde_json::json!(list).to_string())),
        Param::Texts(list) => ToSqlOutput::Owned(Value::Text(serde_json::json!(list).to_string())),
    }
}

fn cell(value: ValueRef<'_>) -> Cell {
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(n) => Cell::Int(n),
        // Never stored; read as text so that a mistake shows.
        ValueRef::Real(x) => Cell::Text(x.to_string()),
        ValueRef::Text(text) => Cell::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => Cell::Bytes(bytes.to_vec()),
    }
}
