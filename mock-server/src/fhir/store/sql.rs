//! The store in SQL: one SQLite file (`--store sqlite:PATH`), kept across
//! restarts, or a PostgreSQL database (`--store postgres://…`) that several mocks
//! share. The same statements run on both (see `crate::sql`).
//!
//! Tables mirror the memory store: `versions` (every version, its JSON text, in
//! write order — `seq` is the store-wide sequence), `resources` (id → slot, the
//! creation order), and the two candidate indexes `by_patient` and `by_code`. A
//! search asks SQL for candidates through those indexes and reads their versions;
//! it checks every criterion over the version's index rows, kept beside its JSON
//! (as bytes: reading them back is several times faster than extracting them
//! again), and a bounded cache keeps versions read by `seq`.
//!
//! Writers take turns (`Database::BEGIN_WRITE`: SQLite's one writer, a lock of
//! PostgreSQL's that every process takes), so versions are committed in `seq`
//! order and a snapshot (every `seq` up to a number) is a moment of the store:
//! once `max(seq)` is seen, every version up to it is committed, and a request's
//! questions, each bounded by its snapshot, agree without a transaction around
//! them (PostgreSQL reads take none; SQLite's take one for its file locks). A
//! committed version never changes and its number is never given again, so only
//! reads fill the cache: they see committed versions alone. A transaction may read
//! its own, whose numbers a rollback gives back (SQLite's `AUTOINCREMENT` counter
//! is a table row, and rolls back with the rest).

use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use typed_arena::Arena;

use super::{Candidates, Found, Record, Snapshot, StoreError, Version, Versions, Writer};
use crate::fhir::index::{Index, Text};
use crate::seed::LoadError;
use crate::sql::{self, Connection, Database, Dialect, Param, Pool, int};

/// The schema this code makes and reads. 2: `versions.idx`.
const SCHEMA_VERSION: i64 = 2;

const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS resources (
    slot INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    UNIQUE (type, id)
);
CREATE TABLE IF NOT EXISTS versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    slot INTEGER NOT NULL,
    version_id INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    json BLOB NOT NULL,
    -- The index rows (Index::to_bytes); NULL in a store made before them.
    idx BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS versions_of_resource ON versions (type, id, version_id);
CREATE INDEX IF NOT EXISTS versions_in_slot ON versions (type, slot);
CREATE TABLE IF NOT EXISTS by_patient (
    type TEXT NOT NULL,
    patient TEXT NOT NULL,
    slot INTEGER NOT NULL,
    PRIMARY KEY (type, patient, slot)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS by_code (
    type TEXT NOT NULL,
    param TEXT NOT NULL,
    code TEXT NOT NULL,
    slot INTEGER NOT NULL,
    PRIMARY KEY (type, param, code, slot)
) WITHOUT ROWID;
";

/// The same tables in PostgreSQL's words; `schema` holds the version, which
/// SQLite keeps in `PRAGMA user_version`.
const POSTGRES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema (version BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    slot BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    UNIQUE (type, id)
);
CREATE TABLE IF NOT EXISTS versions (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    slot BIGINT NOT NULL,
    version_id BIGINT NOT NULL,
    deleted BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    json BYTEA NOT NULL,
    idx BYTEA
);
CREATE UNIQUE INDEX IF NOT EXISTS versions_of_resource ON versions (type, id, version_id);
CREATE INDEX IF NOT EXISTS versions_in_slot ON versions (type, slot);
CREATE TABLE IF NOT EXISTS by_patient (
    type TEXT NOT NULL,
    patient TEXT NOT NULL,
    slot BIGINT NOT NULL,
    PRIMARY KEY (type, patient, slot)
);
CREATE TABLE IF NOT EXISTS by_code (
    type TEXT NOT NULL,
    param TEXT NOT NULL,
    code TEXT NOT NULL,
    slot BIGINT NOT NULL,
    PRIMARY KEY (type, param, code, slot)
);
";

/// The store's sequence number now.
const LATEST: &str = "SELECT max(seq) FROM versions";

/// Candidates resolved, and versions read, with one question.
const RESOLVED_AT_ONCE: usize = 100;

/// How many versions stay parsed and indexed between requests.
const CACHED_VERSIONS: usize = 20_000;

pub(super) struct Sql<D: Database> {
    /// Writes queue here rather than on the database's lock.
    writer: Mutex<Option<D::Connection>>,
    readers: Pool<D>,
    versions: quick_cache::sync::Cache<u64, Version>,
}

impl<D: Database> Sql<D> {
    /// Opens (creating, or emptying if `reset`) the store in `database`, and fills
    /// it with `seed`, in one transaction, if it holds no resources.
    pub(super) fn open<R>(
        database: D,
        reset: bool,
        seed: impl FnOnce(&mut dyn FnMut(Vec<Record>)) -> Result<R, LoadError>,
    ) -> Result<(Self, Option<R>), StoreError> {
        let storage = database.describe();
        let refuse = |why: String| StoreError::Open {
            storage: storage.clone(),
            why,
        };
        let writer = database.wait(|| {
            let writer = database.connect()?;
            prepare::<D>(&writer)?;
            Ok(writer)
        });
        let store = Sql {
            writer: Mutex::new(Some(writer.map_err(refuse)?)),
            readers: Pool::new(database),
            versions: quick_cache::sync::Cache::new(CACHED_VERSIONS),
        };
        // Emptied in the transaction that fills it again: a reset whose data is bad
        // leaves the store as it was. Asked inside it, so that of two mocks starting
        // on one empty database, one fills it.
        let before = match reset {
            true => {
                "DELETE FROM by_code; DELETE FROM by_patient; DELETE FROM versions; DELETE FROM resources;"
            }
            false => "",
        };
        let seeded = store.within(before, |w| match reset || w.seq() == 0 {
            true => seed(&mut |records| w.file_all(records))
                .map(Some)
                .map_err(StoreError::Data),
            false => Ok(None),
        })?;
        Ok((store, seeded))
    }

    pub(super) fn read<T, E: From<StoreError>>(
        &self,
        reads: impl FnOnce(&dyn Snapshot) -> Result<T, E>,
    ) -> Result<T, E> {
        // The store's sequence number first: every read asks for it (a search's
        // snapshot), and a connection the database dropped while it was idle
        // fails here, before `reads` ran, and is replaced (see `Pool::with`).
        let first = |connection: &D::Connection| {
            if let Some(begin) = D::BEGIN_READ {
                connection.batch(begin)?;
            }
            connection.number(LATEST, &[])
        };
        self.readers
            .with(first, |connection, seq| {
                let snapshot = Tables::new(connection, &self.versions, Caching::ReadAndKeep);
                snapshot.seq.set(Some(seq.unwrap_or(0).unsigned_abs()));
                let result = reads(&snapshot);
                let failure = snapshot.failure.take();
                drop(snapshot);
                let ended = match D::BEGIN_READ {
                    Some(_) => connection.batch("COMMIT"),
                    None => Ok(()),
                };
                failure.map_or(ended, Err)?;
                Ok(result)
            })
            .unwrap_or_else(|e: String| Err(StoreError::Failed(e).into()))
    }

    /// Runs `writes` in one SQL transaction: committed if it succeeds, else
    /// rolled back — also when it panics, so the next transaction finds the
    /// connection free.
    pub(super) fn transaction<T, E: From<StoreError>>(
        &self,
        writes: impl FnOnce(&mut dyn Writer) -> Result<T, E>,
    ) -> Result<T, E> {
        self.within("", writes)
    }

    /// [`Self::transaction`], running the SQL `before` first, inside it.
    fn within<T, E: From<StoreError>>(
        &self,
        before: &str,
        writes: impl FnOnce(&mut dyn Writer) -> Result<T, E>,
    ) -> Result<T, E> {
        let database = &self.readers.database;
        let mut writer = self.writer();
        database.wait(|| {
            // A connection that failed, or that the database dropped while it was
            // idle (it fails to begin), is made again: the database may be back.
            let begin = |connection: D::Connection| connection.batch(D::BEGIN_WRITE).map(|()| connection);
            let connection = match writer.take().map(begin) {
                Some(Ok(connection)) => connection,
                _ => database.connect().and_then(begin).map_err(StoreError::Failed)?,
            };
            let result = self.write_on(&connection, before, writes);
            if !matches!(&result, Err(Written::Failed(_))) {
                *writer = Some(connection);
            }
            result.map_err(|failed| match failed {
                Written::Failed(e) => StoreError::Failed(e).into(),
                Written::Refused(e) => e,
            })
        })
    }

    /// `writes` in the transaction begun on `connection`.
    fn write_on<T, E>(
        &self,
        connection: &D::Connection,
        before: &str,
        writes: impl FnOnce(&mut dyn Writer) -> Result<T, E>,
    ) -> Result<T, Written<E>> {
        let rollback = |e: String| {
            let _ = connection.batch("ROLLBACK");
            Written::Failed(e)
        };
        if !before.is_empty() {
            connection.batch(before).map_err(rollback)?;
        }
        let mut tables = Tables::new(connection, &self.versions, Caching::ReadOnly);
        let result = match std::panic::catch_unwind(AssertUnwindSafe(|| writes(&mut tables))) {
            Ok(result) => result,
            Err(panic) => {
                let _ = connection.batch("ROLLBACK");
                std::panic::resume_unwind(panic);
            }
        };
        if let Some(failure) = tables.failure.take() {
            return Err(rollback(failure));
        }
        drop(tables);
        match result {
            Ok(done) => connection.batch("COMMIT").map(|()| done).map_err(rollback),
            Err(refused) => {
                connection.batch("ROLLBACK").map_err(Written::Failed)?;
                Err(Written::Refused(refused))
            }
        }
    }

    fn writer(&self) -> MutexGuard<'_, Option<D::Connection>> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<D: Database> Drop for Sql<D> {
    fn drop(&mut self) {
        let writer = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        D::close(writer.into_iter().collect());
    }
}

/// A row of `versions` (`seq`, then the columns of a [`Version`]).
fn version_of(row: sql::Row) -> Result<Version, String> {
    let [seq, kind, id, version_id, deleted, last_updated, json, kept] =
        <[sql::Cell; 8]>::try_from(row).map_err(|_| "a version row of another shape".to_owned())?;
    let seq = seq.int().unwrap_or_default().unsigned_abs();
    let (Some(kind), Some(id), Some(json)) = (kind.text(), id.text(), json.into_bytes()) else {
        return Err(format!("version {seq} is damaged"));
    };
    let index = kept
        .into_bytes()
        .and_then(|bytes| Index::from_bytes(kind, &bytes))
        .unwrap_or_else(|| Index::of(&serde_json::from_slice(&json).unwrap_or_default()));
    Ok(Version {
        seq,
        kind: Text::new(kind),
        id: Text::new(id),
        version_id: version_id.int().unwrap_or_default().unsigned_abs(),
        deleted: deleted.int().unwrap_or_default() != 0,
        last_updated: DateTime::from_timestamp_nanos(last_updated.int().unwrap_or_default()),
        index,
        json: Bytes::from(json),
    })
}

/// Why a write transaction did not commit: the store failed, or the writes
/// themselves said no.
enum Written<E> {
    Failed(String),
    Refused(E),
}

/// Makes the tables if missing and brings an older schema up to this one, in one
/// transaction (a start killed half-way leaves the store as it was), as the
/// only writer (two mocks starting on one database take turns).
fn prepare<D: Database>(c: &D::Connection) -> Result<(), String> {
    c.batch(D::BEGIN_WRITE)?;
    let prepared = (|| {
        let made_by = match D::DIALECT {
            Dialect::Sqlite => c.number("PRAGMA user_version", &[])?,
            Dialect::Postgres => {
                c.batch(POSTGRES_SCHEMA)?;
                c.number("SELECT max(version) FROM schema", &[])?
            }
        }
        .unwrap_or(0);
        if made_by > SCHEMA_VERSION {
            return Err(format!(
                "it was made by a newer ccri-mock (schema {made_by}; this one knows {SCHEMA_VERSION})"
            ));
        }
        match D::DIALECT {
            Dialect::Sqlite => {
                c.batch(SQLITE_SCHEMA)?;
                // A store of schema 1 gains the index column; its versions are
                // indexed again as they are read. Asked of the table, not of
                // user_version.
                let indexed = c.number(
                    "SELECT count(*) FROM pragma_table_info('versions') WHERE name = 'idx'",
                    &[],
                )?;
                if indexed == Some(0) {
                    c.batch("ALTER TABLE versions ADD COLUMN idx BLOB")?;
                }
                c.batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            }
            Dialect::Postgres => {
                c.execute("DELETE FROM schema", &[])?;
                c.execute(
                    "INSERT INTO schema (version) VALUES ($1)",
                    &[Param::Int(SCHEMA_VERSION)],
                )
                .map(drop)
            }
        }
    })();
    match prepared.and_then(|()| c.batch("COMMIT")) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = c.batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Whether the versions a [`Tables`] reads go into the shared cache (see the
/// module's doc).
#[derive(Clone, Copy, PartialEq)]
enum Caching {
    ReadAndKeep,
    ReadOnly,
}

/// One connection's view of the tables, for one request. Versions read are
/// kept in an arena for the request's length, so they can be lent out as the
/// memory store lends its own. The first SQL failure is kept, answered for
/// by the caller of [`Sql::read`] or [`Sql::transaction`]; after it, every
/// question has an empty answer.
struct Tables<'c, C: Connection> {
    connection: &'c C,
    cache: &'c quick_cache::sync::Cache<u64, Version>,
    caching: Caching,
    arena: Arena<Version>,
    failure: RefCell<Option<String>>,
    seq: Cell<Option<u64>>,
}

impl<'c, C: Connection> Tables<'c, C> {
    fn new(connection: &'c C, cache: &'c quick_cache::sync::Cache<u64, Version>, caching: Caching) -> Self {
        Tables {
            connection,
            cache,
            caching,
            arena: Arena::new(),
            failure: RefCell::default(),
            seq: Cell::default(),
        }
    }

    /// `result`'s value, or `None` after keeping its error.
    fn ok<T>(&self, result: Result<T, String>) -> Option<T> {
        if self.failure.borrow().is_some() {
            return None;
        }
        result.map_err(|e| *self.failure.borrow_mut() = Some(e)).ok()
    }

    /// The integers `sql` answers with.
    fn numbers(&self, sql: &str, params: &[Param<'_>]) -> Vec<u64> {
        let rows = self.ok(self.connection.query(sql, params)).unwrap_or_default();
        rows.iter()
            .filter_map(|row| row.first()?.int())
            .map(i64::unsigned_abs)
            .collect()
    }

    /// The one integer `sql` answers with, if any.
    fn number(&self, sql: &str, params: &[Param<'_>]) -> Option<u64> {
        self.ok(self.connection.number(sql, params))
            .flatten()
            .map(i64::unsigned_abs)
    }

    /// Version `seq`, from the cache or the table.
    fn load(&self, seq: u64) -> Option<&Version> {
        self.load_all(&[seq]).pop()
    }

    /// Versions `seqs`, in that order, from the cache or else all from the table
    /// at once: with a database over the network, one round trip, not one each.
    fn load_all(&self, seqs: &[u64]) -> Vec<&Version> {
        let mut found: Vec<Option<Version>> = seqs.iter().map(|seq| self.cache.get(seq)).collect();
        let missing: Vec<i64> = seqs
            .iter()
            .zip(&found)
            .filter(|(_, cached)| cached.is_none())
            .map(|(seq, _)| int(*seq))
            .collect();
        if !missing.is_empty() {
            let read = self.ok(self.read_versions(&missing)).unwrap_or_default();
            for version in read {
                if self.caching == Caching::ReadAndKeep {
                    self.cache.insert(version.seq, version.clone());
                }
                if let Some(at) = seqs.iter().position(|seq| *seq == version.seq) {
                    found[at] = Some(version);
                }
            }
        }
        found
            .into_iter()
            .flatten()
            .map(|version| &*self.arena.alloc(version))
            .collect()
    }

    fn read_versions(&self, seqs: &[i64]) -> Result<Vec<Version>, String> {
        let sql = match self.connection.dialect() {
            Dialect::Sqlite => {
                "SELECT seq, type, id, version_id, deleted, last_updated, json, idx FROM versions
                 WHERE seq IN (SELECT value FROM json_each($1))"
            }
            Dialect::Postgres => {
                "SELECT seq, type, id, version_id, deleted, last_updated, json, idx FROM versions
                 WHERE seq = ANY($1)"
            }
        };
        let rows = self.connection.query(sql, &[Param::Ints(seqs)])?;
        rows.into_iter().map(version_of).collect()
    }

    /// The newest version of each of `slots` at `snapshot`, in slot order.
    fn newest_in_slots(&self, kind: &str, slots: &[i64], snapshot: u64) -> Vec<u64> {
        let sql = match self.connection.dialect() {
            Dialect::Sqlite => {
                "SELECT max(seq) FROM versions WHERE type = $1 AND seq <= $2
                 AND slot IN (SELECT value FROM json_each($3)) GROUP BY slot ORDER BY slot"
            }
            Dialect::Postgres => {
                "SELECT max(seq) FROM versions WHERE type = $1 AND seq <= $2
                 AND slot = ANY($3) GROUP BY slot ORDER BY slot"
            }
        };
        self.numbers(
            sql,
            &[Param::Text(kind), Param::Int(int(snapshot)), Param::Ints(slots)],
        )
    }

    /// The seq of `kind/id`'s newest version at `snapshot`.
    fn newest(&self, kind: &str, id: &str, snapshot: u64) -> Option<u64> {
        self.number(
            "SELECT seq FROM versions WHERE type = $1 AND id = $2 AND seq <= $3
             ORDER BY version_id DESC LIMIT 1",
            &[Param::Text(kind), Param::Text(id), Param::Int(int(snapshot))],
        )
    }
}

impl<C: Connection> Snapshot for Tables<'_, C> {
    fn seq(&self) -> u64 {
        if let Some(seq) = self.seq.get() {
            return seq;
        }
        let seq = self.number(LATEST, &[]).unwrap_or(0);
        self.seq.set(Some(seq));
        seq
    }

    fn find(&self, kind: &str, id: &str, snapshot: Option<u64>) -> Found {
        match self
            .newest(kind, id, snapshot.unwrap_or(u64::MAX))
            .and_then(|seq| self.load(seq))
        {
            Some(v) if v.deleted => Found::Deleted(v.clone()),
            Some(v) => Found::Current(v.clone()),
            None => Found::Missing,
        }
    }

    fn versions(&self, kind: &str, id: &str) -> Vec<&Version> {
        self.load_all(&self.numbers(
            "SELECT seq FROM versions WHERE type = $1 AND id = $2 ORDER BY version_id",
            &[Param::Text(kind), Param::Text(id)],
        ))
    }

    fn every<'a>(&'a self, kind: &str, snapshot: u64) -> Versions<'a> {
        let newest = self.numbers(
            "SELECT max(seq) FROM versions WHERE type = $1 AND seq <= $2 GROUP BY slot ORDER BY slot",
            &[Param::Text(kind), Param::Int(int(snapshot))],
        );
        let chunks: Vec<Vec<u64>> = newest.chunks(RESOLVED_AT_ONCE).map(<[u64]>::to_vec).collect();
        Box::new(
            chunks
                .into_iter()
                .flat_map(|chunk| self.load_all(&chunk))
                .filter(|v| !v.deleted),
        )
    }

    fn at(&self, kind: &str, id: &str, snapshot: u64) -> Option<&Version> {
        self.newest(kind, id, snapshot)
            .and_then(|seq| self.load(seq))
            .filter(|v| !v.deleted)
    }

    fn for_patients(&self, kind: &str, patients: &[&str]) -> Candidates {
        Candidates::of(
            patients
                .iter()
                .flat_map(|patient| {
                    self.numbers(
                        "SELECT slot FROM by_patient WHERE type = $1 AND patient = $2",
                        &[Param::Text(kind), Param::Text(patient)],
                    )
                })
                .collect(),
        )
    }

    fn with_codes(&self, kind: &str, param: &str, codes: &[&str]) -> Candidates {
        Candidates::of(
            codes
                .iter()
                .flat_map(|code| {
                    self.numbers(
                        "SELECT slot FROM by_code WHERE type = $1 AND param = $2 AND code = $3",
                        &[Param::Text(kind), Param::Text(param), Param::Text(code)],
                    )
                })
                .collect(),
        )
    }

    fn with_ids(&self, kind: &str, ids: &[&str]) -> Candidates {
        Candidates::of(
            ids.iter()
                .filter_map(|id| {
                    self.number(
                        "SELECT slot FROM resources WHERE type = $1 AND id = $2",
                        &[Param::Text(kind), Param::Text(id)],
                    )
                })
                .collect(),
        )
    }

    fn resolve<'a>(&'a self, kind: &str, candidates: Candidates, snapshot: u64) -> Versions<'a> {
        let kind = kind.to_owned();
        let slots: Vec<i64> = candidates.0.into_iter().map(int).collect();
        // A few questions for many candidates, lazily: a search that has its page
        // asks no further.
        let chunks: Vec<Vec<i64>> = slots.chunks(RESOLVED_AT_ONCE).map(<[i64]>::to_vec).collect();
        Box::new(
            chunks
                .into_iter()
                .flat_map(move |chunk| self.load_all(&self.newest_in_slots(&kind, &chunk, snapshot)))
                .filter(|v| !v.deleted),
        )
    }

    fn changes(&self, kind: Option<&str>, since: Option<DateTime<Utc>>, snapshot: u64) -> Vec<&Version> {
        // Past what nanoseconds since 1970 can count (the years 1677 to 2262): before
        // or after every version.
        let since = since.map_or(i64::MIN, |since| {
            since
                .timestamp_nanos_opt()
                .unwrap_or(if since.timestamp() < 0 { i64::MIN } else { i64::MAX })
        });
        let (snapshot, since) = (Param::Int(int(snapshot)), Param::Int(since));
        let seqs = match kind {
            Some(kind) => self.numbers(
                "SELECT seq FROM versions WHERE seq <= $1 AND last_updated >= $2 AND type = $3
                 ORDER BY seq DESC",
                &[snapshot, since, Param::Text(kind)],
            ),
            None => self.numbers(
                "SELECT seq FROM versions WHERE seq <= $1 AND last_updated >= $2 ORDER BY seq DESC",
                &[snapshot, since],
            ),
        };
        self.load_all(&seqs)
    }
}

impl<C: Connection> Writer for Tables<'_, C> {
    fn file(&mut self, record: Record, deleted: bool) -> Version {
        let written = match self.connection.dialect() {
            Dialect::Sqlite => file_in_steps(self.connection, &record, deleted),
            Dialect::Postgres => file_at_once(self.connection, &record, deleted),
        };
        // After a failure the transaction is rolled back whatever happens next;
        // the version returned meanwhile is never stored.
        let seq = self.ok(written).unwrap_or_default();
        self.seq.set(Some(seq));
        Version::of(record, seq, deleted)
    }

    /// One question, not a read of the newest version: loading asks it of every
    /// resource.
    fn next_version(&self, kind: &str, id: &str) -> u64 {
        self.number(
            "SELECT max(version_id) FROM versions WHERE type = $1 AND id = $2",
            &[Param::Text(kind), Param::Text(id)],
        )
        .map_or(1, |newest| newest + 1)
    }
}

/// A version's row, its resource's slot and its candidate index rows, a
/// statement each: SQLite's statements are calls into this process.
fn file_in_steps(c: &dyn Connection, record: &Record, deleted: bool) -> Result<u64, String> {
    let (kind, id) = (Param::Text(&record.kind), Param::Text(&record.id));
    c.execute(
        "INSERT OR IGNORE INTO resources (type, id) VALUES ($1, $2)",
        &[kind, id],
    )?;
    let slot = c
        .number(
            "SELECT slot FROM resources WHERE type = $1 AND id = $2",
            &[kind, id],
        )?
        .ok_or("a resource's slot vanished")?;
    let index = record.index.to_bytes();
    c.execute(
        "INSERT INTO versions (type, id, slot, version_id, deleted, last_updated, json, idx)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            kind,
            id,
            Param::Int(slot),
            Param::Int(int(record.version_id)),
            Param::Int(deleted.into()),
            Param::Int(nanos(record)),
            Param::Bytes(&record.json),
            Param::Bytes(&index),
        ],
    )?;
    let seq = c
        .number("SELECT last_insert_rowid()", &[])?
        .ok_or("no sequence number for a version")?;
    let (patients, codes) = candidate_rows(record);
    for patient in patients {
        c.execute(
            "INSERT OR IGNORE INTO by_patient (type, patient, slot) VALUES ($1, $2, $3)",
            &[kind, Param::Text(patient), Param::Int(slot)],
        )?;
    }
    for (param, code) in codes.0.iter().zip(&codes.1) {
        c.execute(
            "INSERT OR IGNORE INTO by_code (type, param, code, slot) VALUES ($1, $2, $3, $4)",
            &[kind, Param::Text(param), Param::Text(code), Param::Int(slot)],
        )?;
    }
    Ok(seq.unsigned_abs())
}

/// The same in one statement (PostgreSQL's writing CTEs, the index rows as
/// arrays): each statement is a round trip to the database.
fn file_at_once(c: &dyn Connection, record: &Record, deleted: bool) -> Result<u64, String> {
    let index = record.index.to_bytes();
    let (patients, (params, codes)) = candidate_rows(record);
    let seq = c
        .number(
            "WITH r AS (
                 INSERT INTO resources (type, id) VALUES ($1, $2)
                 ON CONFLICT (type, id) DO UPDATE SET id = excluded.id RETURNING slot
             ), v AS (
                 INSERT INTO versions (type, id, slot, version_id, deleted, last_updated, json, idx)
                 SELECT $1, $2, slot, $3, $4, $5, $6, $7 FROM r RETURNING seq, slot
             ), p AS (
                 INSERT INTO by_patient (type, patient, slot)
                 SELECT $1, patient, slot FROM v, unnest($8::text[]) AS patient ON CONFLICT DO NOTHING
             ), c AS (
                 INSERT INTO by_code (type, param, code, slot)
                 SELECT $1, param, code, slot FROM v, unnest($9::text[], $10::text[]) AS i (param, code)
                 ON CONFLICT DO NOTHING
             )
             SELECT seq FROM v",
            &[
                Param::Text(&record.kind),
                Param::Text(&record.id),
                Param::Int(int(record.version_id)),
                Param::Int(deleted.into()),
                Param::Int(nanos(record)),
                Param::Bytes(&record.json),
                Param::Bytes(&index),
                Param::Texts(&patients),
                Param::Texts(&params),
                Param::Texts(&codes),
            ],
        )?
        .ok_or("no sequence number for a version")?;
    Ok(seq.unsigned_abs())
}

/// When a version was written, in nanoseconds since 1970 (what the column keeps).
fn nanos(record: &Record) -> i64 {
    record.last_updated.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// The patients and the (parameter, code) pairs a version is found by.
fn candidate_rows(record: &Record) -> (Vec<&str>, (Vec<&str>, Vec<&str>)) {
    let index = &record.index;
    let patients = index.patients().iter().map(Text::as_str);
    let referenced = index.referenced_patients().map(|p| p.as_str());
    (
        patients.chain(referenced).collect(),
        index.codes().map(|(param, code)| (param, code.as_str())).unzip(),
    )
}
