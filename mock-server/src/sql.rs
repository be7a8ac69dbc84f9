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

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// A value bound to a statement's parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param<'a> {
    Text(&'a str),
    Int(i64),
    Bytes(&'a [u8]),
    /// A list, for `= ANY($1)` (PostgreSQL's array) or `IN (SELECT value FROM
    /// json_each($1))` (SQLite's, as JSON text).
    Ints(&'a [i64]),
    /// A list of texts, the same way.
    Texts(&'a [&'a str]),
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
    fn dialect(&self) -> Dialect;
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
    /// Connections a pool opens at most.
    const CONNECTIONS: usize;
    /// Begins a transaction for a request's reads, if they take one (see
    /// `fhir/store/sql.rs`).
    const BEGIN_READ: Option<&'static str>;
    /// Begins a transaction that writes resources: one at a time across every
    /// process on the database, so the store's sequence numbers are committed in order.
    const BEGIN_WRITE: &'static str;
    /// The same for the grants' table, whose writers take turns of their own: a
    /// long load of resources on one mock does not hold up logins on the others.
    const BEGIN_GRANTS_WRITE: &'static str;

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
/// moment, up to the database's [`Database::CONNECTIONS`]; past it a request
/// waits for one. Written here: a pool crate (r2d2) brings a thread of its own
/// and knows nothing of the retry `with` does.
pub(crate) struct Pool<D: Database> {
    pub(crate) database: D,
    connections: Mutex<Connections<D::Connection>>,
    returned: Condvar,
}

struct Connections<C> {
    idle: Vec<C>,
    /// Idle and in use.
    open: usize,
}

/// How long a request waits for a connection when all are in use.
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(10);

impl<D: Database> Pool<D> {
    pub(crate) fn new(database: D) -> Self {
        Pool {
            database,
            connections: Mutex::new(Connections {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        }
    }

    fn connections(&self) -> MutexGuard<'_, Connections<D::Connection>> {
        self.connections.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, or room for a new one (`None`), waiting while all are in use.
    fn take(&self) -> Result<Option<D::Connection>, String> {
        let mut connections = self.connections();
        loop {
            if let Some(connection) = connections.idle.pop() {
                return Ok(Some(connection));
            }
            if connections.open < D::CONNECTIONS {
                connections.open += 1;
                return Ok(None);
            }
            let (next, waited) = self
                .returned
                .wait_timeout(connections, WAIT_FOR_CONNECTION)
                .unwrap_or_else(PoisonError::into_inner);
            connections = next;
            if waited.timed_out() && connections.idle.is_empty() && connections.open >= D::CONNECTIONS {
                return Err(format!(
                    "all {} connections to the database are in use",
                    D::CONNECTIONS
                ));
            }
        }
    }

    /// Gives a connection back (`Some`) or drops one (`None`); a dropped one may
    /// be broken, and so may the idle ones: they go too.
    fn give_back(&self, connection: Option<D::Connection>) {
        let mut connections = self.connections();
        match connection {
            Some(connection) => connections.idle.push(connection),
            None => {
                let broken = std::mem::take(&mut connections.idle);
                connections.open -= broken.len() + 1;
            }
        }
        drop(connections);
        self.returned.notify_all();
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
            let begun = match self.take()? {
                Some(pooled) => match first(&pooled) {
                    Ok(begun) => Some((pooled, begun)),
                    Err(_) => {
                        // Its place is taken again at once by the new one below.
                        self.give_back(None);
                        self.connections().open += 1;
                        None
                    }
                },
                None => None,
            };
            let (connection, begun) = match begun {
                Some(begun) => begun,
                None => {
                    let fresh = self
                        .database
                        .connect()
                        .and_then(|c| first(&c).map(|begun| (c, begun)));
                    match fresh {
                        Ok(fresh) => fresh,
                        Err(e) => {
                            self.give_back(None);
                            return Err(e.into());
                        }
                    }
                }
            };
            let result = work(&connection, begun);
            self.give_back(result.is_ok().then_some(connection));
            result
        })
    }

    /// Runs `work` in one transaction that writes the grants' table (see
    /// [`Database::BEGIN_GRANTS_WRITE`]):
    /// committed if it succeeds, else rolled back.
    pub(crate) fn write<T>(
        &self,
        work: impl FnOnce(&D::Connection) -> Result<T, String>,
    ) -> Result<T, String> {
        self.with(
            |c| c.batch(D::BEGIN_GRANTS_WRITE),
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
        let connections = self.connections.get_mut().unwrap_or_else(PoisonError::into_inner);
        D::close(std::mem::take(&mut connections.idle));
    }
}

/// Both databases keep signed 64-bit integers; "no limit" (`u64::MAX`) would not fit.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
