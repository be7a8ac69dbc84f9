//! PostgreSQL as a [`Database`] (`--store postgres://…`): one database that several
//! ccri-mock processes share.
//!
//! The `postgres` crate: the synchronous face of `tokio-postgres`, for the reason
//! `sql.rs` gives. Each call blocks its thread on the network, so it runs under
//! `block_in_place`, which hands the thread's other tasks to the rest of the
//! runtime meanwhile.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls, Statement};

use crate::config::DatabaseUrl;
use crate::sql::{Cell, Connection, Database, Dialect, Param, Row};

/// How long connecting may take before the store is said to be down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Postgres {
    pub(crate) url: DatabaseUrl,
}

/// A connection, with the statements it has prepared (a statement is prepared
/// once per connection, as rusqlite's cache does for SQLite).
pub(crate) struct PgConnection {
    client: RefCell<Client>,
    statements: RefCell<HashMap<String, Statement>>,
}

impl Database for Postgres {
    type Connection = PgConnection;
    const DIALECT: Dialect = Dialect::Postgres;
    // Each is a server process: a mock has two pools and a writer, so three
    // mocks fit PostgreSQL's default of 100 connections.
    const CONNECTIONS: usize = 16;
    // Two round trips a request saved (BEGIN, COMMIT): a snapshot needs no
    // transaction here (see `fhir/store/sql.rs`).
    const BEGIN_READ: Option<&'static str> = None;
    // The locks are the transaction's, released by COMMIT or ROLLBACK, also when
    // the connection drops; their numbers are this project's, not a table's.
    const BEGIN_WRITE: &'static str = "BEGIN; SELECT pg_advisory_xact_lock(5243710)";
    const BEGIN_GRANTS_WRITE: &'static str = "BEGIN; SELECT pg_advisory_xact_lock(5243711)";

    fn connect(&self) -> Result<PgConnection, String> {
        let mut config: postgres::Config = self.url.expose().parse().map_err(said)?;
        config.connect_timeout(CONNECT_TIMEOUT);
        // A mock that stalls or vanishes inside a transaction must not hold the
        // writers' lock for every other mock: the server ends such a session.
        // Keepalives find a peer gone without a word.
        config.options("-c idle_in_transaction_session_timeout=60s -c statement_timeout=120s");
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        let client = config.connect(NoTls).map_err(said)?;
        Ok(PgConnection {
            client: RefCell::new(client),
            statements: RefCell::default(),
        })
    }

    fn describe(&self) -> String {
        self.url.to_string()
    }

    fn wait<T>(&self, work: impl FnOnce() -> T) -> T {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(runtime) if runtime.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(work)
            }
            // Outside a runtime (start-up, tests of the store) a thread may block.
            // A single-threaded runtime cannot lend its only thread: the binary
            // runs the multi-threaded one.
            _ => work(),
        }
    }

    /// A connection closes by blocking on its own runtime, which panics on a
    /// thread that drives a runtime already (a store dropped as the server
    /// stops): they close on a thread of their own.
    fn close(connections: Vec<PgConnection>) {
        if !connections.is_empty() {
            std::thread::spawn(move || drop(connections));
        }
    }
}

/// A new, empty database `name` on the server of `url`, for one test's server.
#[cfg(feature = "testing")]
pub(crate) fn new_database(url: &DatabaseUrl, name: &str) -> Result<DatabaseUrl, String> {
    let server = Postgres { url: url.clone() };
    server.wait(|| server.connect()?.batch(&format!("CREATE DATABASE {name}")))?;
    Ok(url.of_database(name))
}

impl PgConnection {
    fn statement(&self, sql: &str) -> Result<Statement, String> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.borrow_mut().prepare(sql).map_err(said)?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl Connection for PgConnection {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, String> {
        let statement = self.statement(sql)?;
        let bound: Vec<&(dyn ToSql + Sync)> = params.iter().map(bound).collect();
        let rows = self.client.borrow_mut().query(&statement, &bound).map_err(said)?;
        rows.iter()
            .map(|row| (0..row.len()).map(|i| cell(row, i)).collect())
            .collect()
    }

    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, String> {
        let statement = self.statement(sql)?;
        let bound: Vec<&(dyn ToSql + Sync)> = params.iter().map(bound).collect();
        self.client.borrow_mut().execute(&statement, &bound).map_err(said)
    }

    fn batch(&self, sql: &str) -> Result<(), String> {
        self.client.borrow_mut().batch_execute(sql).map_err(said)
    }
}

/// What went wrong, in the database's words: `postgres::Error` alone says
/// "db error" and keeps the server's message (or the I/O error) as its source.
fn said(e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(&e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

fn bound<'a>(param: &'a Param<'a>) -> &'a (dyn ToSql + Sync) {
    match param {
        Param::Text(text) => text,
        Param::Int(n) => n,
        Param::Bytes(bytes) => bytes,
        Param::Ints(list) => list,
        Param::Texts(list) => list,
    }
}

fn cell(row: &postgres::Row, i: usize) -> Result<Cell, String> {
    let read = said;
    let ty = row.columns()[i].type_();
    Ok(match *ty {
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map_err(read)?
            .map_or(Cell::Null, Cell::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(read)?
            .map_or(Cell::Null, |n| Cell::Int(n.into())),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)
            .map_err(read)?
            .map_or(Cell::Null, Cell::Bytes),
        Type::TEXT | Type::VARCHAR | Type::NAME => row
            .try_get::<_, Option<String>>(i)
            .map_err(read)?
            .map_or(Cell::Null, Cell::Text),
        _ => {
            return Err(format!(
                "column {} is of type {ty}, which the store does not use",
                i + 1
            ));
        }
    })
}
