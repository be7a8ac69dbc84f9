//! What the stores on SQL share, whichever database holds them: parameters and
//! answers as plain values, the two databases behind one small trait, and a
//! stack of idle connections.
//!
//! Written here, not taken from a crate: the stores need three calls (query,
//! execute, a batch), and the crate that spans SQLite and PostgreSQL (sqlx) is
//! async, which the search engine is not — it walks candidates lazily under one
//! snapshot and borrows versions from it. Each database keeps its own
//! well-kept driver (rusqlite, postgres) underneath.
//!
//! Statements are written once for both, with PostgreSQL's `$1` parameters
//! (SQLite's connection reads them as `?1`).

use std::sync::{Mutex, PoisonError};

/// A value bound to a statement's parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param<'a> {
    Text(&'a str),
    Int(i64),
    Bytes(&'a [u8]),
}

/// One value of a row read.
#[derive(Debug)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Cell {
    pub(crate) fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(text) => Some(text),
            _ => None,
        }
    }

    pub(crate) fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Cell::Bytes(bytes) => Some(bytes),
            Cell::Text(text) => Some(text.into_bytes()),
            _ => None,
        }
    }
}

pub(crate) type Row = Vec<Cell>;

/// A connection to either database. Errors are the database's message.
pub(crate) trait Connection {
    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, String>;
    /// The rows changed.
    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, String>;
    /// Statements with no parameters, separated by `;`.
    fn batch(&self, sql: &str) -> Result<(), String>;

    /// The first column of the first row, as an integer.
    fn number(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<i64>, String> {
        Ok(self
            .query(sql, params)?
            .first()
            .and_then(|row| row.first())
            .and_then(Cell::int))
    }
}

/// Where the SQL differs between the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A database the stores can live in.
pub(crate) trait Database: Send + Sync + 'static {
    type Connection: Connection + Send + 'static;
    const DIALECT: Dialect;
    /// Begins a transaction whose reads all see one moment.
    const BEGIN_READ: &'static str;
    /// Begins a transaction that writes: one at a time across every process on
    /// the database, so the store's sequence numbers are committed in order.
    const BEGIN_WRITE: &'static str;

    fn connect(&self) -> Result<Self::Connection, String>;

    /// The store as `--store` names it, with no password.
    fn describe(&self) -> String;

    /// Runs `work`, which waits for the database, where a thread may wait.
    fn wait<T>(&self, work: impl FnOnce() -> T) -> T;

    /// Closes connections no longer wanted, wherever the store is dropped.
    fn close(connections: Vec<Self::Connection>) {
        drop(connections);
    }
}

/// Connections not in use, one per request that used the database at the same
/// moment. A pool crate would bring timeouts and a thread of its own for what is
/// a stack.
pub(crate) struct Pool<D: Database> {
    pub(crate) database: D,
    idle: Mutex<Vec<D::Connection>>,
}

impl<D: Database> Pool<D> {
    pub(crate) fn new(database: D) -> Self {
        Pool {
            database,
            idle: Mutex::default(),
        }
    }

    /// Runs `first`, then `work` with its answer, on an idle connection or a new
    /// one. A connection left idle while the database restarted fails at its
    /// first statement: then the idle ones, broken alike, are dropped and `first`
    /// runs once more on a new connection, so the request that finds them does
    /// not fail. A connection whose work failed is not kept either.
    pub(crate) fn with<F, T, E: From<String>>(
        &self,
        first: impl Fn(&D::Connection) -> Result<F, String>,
        work: impl FnOnce(&D::Connection, F) -> Result<T, E>,
    ) -> Result<T, E> {
        self.database.wait(|| {
            let idle = || self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let pooled = idle().pop();
            let (connection, begun) = match pooled.map(|c| {
                let begun = first(&c);
                (c, begun)
            }) {
                Some((connection, Ok(begun))) => (connection, begun),
                _ => {
                    idle().clear();
                    let connection = self.database.connect()?;
                    let begun = first(&connection)?;
                    (connection, begun)
                }
            };
            let result = work(&connection, begun);
            match result.is_ok() {
                true => idle().push(connection),
                false => idle().clear(),
            }
            result
        })
    }

    /// Runs `work` in one transaction that writes (see [`Database::BEGIN_WRITE`]):
    /// committed if it succeeds, else rolled back.
    pub(crate) fn write<T>(
        &self,
        work: impl FnOnce(&D::Connection) -> Result<T, String>,
    ) -> Result<T, String> {
        self.with(
            |c| c.batch(D::BEGIN_WRITE),
            |c, ()| match work(c).and_then(|done| c.batch("COMMIT").map(|()| done)) {
                Ok(done) => Ok(done),
                Err(e) => {
                    let _ = c.batch("ROLLBACK");
                    Err(e)
                }
            },
        )
    }

    /// The rows `sql` answers with, outside a transaction.
    pub(crate) fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, String> {
        self.with(|c| c.query(sql, params), |_, rows| Ok(rows))
    }
}

impl<D: Database> Drop for Pool<D> {
    fn drop(&mut self) {
        D::close(std::mem::take(
            self.idle.get_mut().unwrap_or_else(PoisonError::into_inner),
        ));
    }
}

/// Both databases keep signed 64-bit integers; "no limit" (`u64::MAX`) would not fit.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
