//! The store in one SQLite file (`--store sqlite:PATH`), kept across restarts.
//!
//! Tables mirror the memory store: `versions` (every version, its JSON text, in
//! write order — `seq` is the store-wide sequence), `resources` (id → slot, the
//! creation order), and the two candidate indexes `by_patient` and `by_code`. A
//! search asks SQL for candidates through those indexes and reads their versions;
//! it checks every criterion over the version's index rows, kept beside its JSON
//! (as bytes: reading them back is several times faster than extracting them
//! again), and a bounded cache keeps versions read by `seq`. A committed version
//! never changes and its number is never given again, so only reads fill the
//! cache: they see committed versions alone. A transaction may read its own, whose
//! numbers a rollback gives back (the `AUTOINCREMENT` counter is a table row, and
//! rolls back with the rest).
//!
//! rusqlite, not an async driver: the search engine is synchronous (it walks
//! candidates lazily under one snapshot), SQLite's calls are function calls into
//! the same process that take microseconds, and an async driver would hand each
//! to a thread of its own and back.

use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use typed_arena::Arena;

use super::{Candidates, Found, Record, Snapshot, StoreError, Version, Versions, Writer};
use crate::fhir::index::{Index, Text};
use crate::seed::LoadError;
use crate::sqlite::{connect, int};

/// What `PRAGMA user_version` says of a store this code made. 2: `versions.idx`.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
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

/// How many versions stay parsed and indexed between requests.
const CACHED_VERSIONS: usize = 20_000;

pub(super) struct Sqlite {
    path: String,
    /// SQLite has one writer at a time; writes queue here rather than on its lock.
    writer: Mutex<Connection>,
    /// Connections for reads, one per request that reads at the same moment. A
    /// pool crate would bring timeouts and a thread of its own for what is a stack.
    readers: Mutex<Vec<Connection>>,
    versions: quick_cache::sync::Cache<u64, Version>,
}

impl Sqlite {
    /// Opens (creating, or emptying if `reset`) the store at `path`, and fills it
    /// with `seed`, in one transaction, if it holds no resources.
    pub(super) fn open<R>(
        path: &Path,
        reset: bool,
        seed: impl FnOnce(&mut dyn FnMut(Vec<Record>)) -> Result<R, LoadError>,
    ) -> Result<(Sqlite, Option<R>), StoreError> {
        let shown = path.display().to_string();
        let refuse = |why: String| StoreError::Open {
            storage: format!("sqlite:{shown}"),
            why,
        };
        let writer = connect(path).map_err(refuse)?;
        let made_by: i64 = writer
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| refuse(e.to_string()))?;
        if made_by > SCHEMA_VERSION {
            return Err(refuse(format!(
                "it was made by a newer ccri-mock (schema {made_by}; this one knows {SCHEMA_VERSION})"
            )));
        }
        // One transaction (SQLite's schema changes are transactional): a start
        // killed half-way leaves the file as it was, never half migrated.
        let prepare = || -> rusqlite::Result<()> {
            writer.execute_batch("BEGIN IMMEDIATE")?;
            writer.execute_batch(SCHEMA)?;
            // A store of schema 1 gains the index column; its versions are indexed
            // again as they are read. Asked of the table, not of user_version.
            let indexed: i64 = writer.query_row(
                "SELECT count(*) FROM pragma_table_info('versions') WHERE name = 'idx'",
                [],
                |row| row.get(0),
            )?;
            if indexed == 0 {
                writer.execute_batch("ALTER TABLE versions ADD COLUMN idx BLOB")?;
            }
            writer.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            writer.execute_batch("COMMIT")
        };
        prepare().map_err(|e| {
            let _ = writer.execute_batch("ROLLBACK");
            refuse(e.to_string())
        })?;
        let sqlite = Sqlite {
            path: shown.clone(),
            writer: Mutex::new(writer),
            readers: Mutex::default(),
            versions: quick_cache::sync::Cache::new(CACHED_VERSIONS),
        };
        let empty = sqlite
            .read(|s| Ok::<_, StoreError>(s.seq() == 0))
            .map_err(|e| refuse(e.to_string()))?;
        if !empty && !reset {
            return Ok((sqlite, None));
        }
        // Emptied in the transaction that fills it again: a reset whose data is bad
        // leaves the store as it was.
        let before = match reset {
            true => {
                "DELETE FROM by_code; DELETE FROM by_patient; DELETE FROM versions;
                 DELETE FROM resources; DELETE FROM sqlite_sequence;"
            }
            false => "",
        };
        let seeded = sqlite.within(before, |w| {
            seed(&mut |records| w.file_all(records)).map_err(StoreError::Data)
        })?;
        Ok((sqlite, Some(seeded)))
    }

    pub(super) fn read<T, E: From<StoreError>>(
        &self,
        reads: impl FnOnce(&dyn Snapshot) -> Result<T, E>,
    ) -> Result<T, E> {
        let connection = match self.readers.lock().unwrap_or_else(PoisonError::into_inner).pop() {
            Some(connection) => connection,
            None => connect(Path::new(&self.path)).map_err(StoreError::Failed)?,
        };
        // One read transaction: every question sees the same moment, and the
        // file's locks are taken once, not once a statement.
        let begun = connection
            .prepare_cached("BEGIN")
            .and_then(|mut begin| begin.execute([]));
        let snapshot = Tables::new(&connection, &self.versions, Caching::ReadAndKeep);
        let result = reads(&snapshot);
        let ended = connection
            .prepare_cached("COMMIT")
            .and_then(|mut end| end.execute([]));
        let failure = snapshot.failure.take().or(begun.err()).or(ended.err());
        drop(snapshot);
        // A connection that failed may be broken: it is not kept.
        if failure.is_none() {
            self.readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(connection);
        }
        match failure {
            Some(e) => Err(failed(e).into()),
            None => result,
        }
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
        let connection = self.writer();
        connection.execute_batch("BEGIN IMMEDIATE").map_err(failed)?;
        if let Err(e) = connection.execute_batch(before) {
            let _ = connection.execute_batch("ROLLBACK");
            return Err(failed(e).into());
        }
        let mut tables = Tables::new(&connection, &self.versions, Caching::ReadOnly);
        let result = match std::panic::catch_unwind(AssertUnwindSafe(|| writes(&mut tables))) {
            Ok(result) => result,
            Err(panic) => {
                let _ = connection.execute_batch("ROLLBACK");
                std::panic::resume_unwind(panic);
            }
        };
        let failure = tables.failure.take();
        drop(tables);
        let ending = match (&result, failure) {
            (Ok(_), None) => connection.execute_batch("COMMIT"),
            (_, Some(failure)) => {
                let _ = connection.execute_batch("ROLLBACK");
                return Err(failed(failure).into());
            }
            (Err(_), None) => connection.execute_batch("ROLLBACK"),
        };
        if let Err(e) = ending {
            let _ = connection.execute_batch("ROLLBACK");
            return Err(failed(e).into());
        }
        result
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn failed(e: rusqlite::Error) -> StoreError {
    StoreError::Failed(e.to_string())
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
/// by the caller of [`Sqlite::read`] or [`Sqlite::transaction`]; after it, every
/// question has an empty answer.
struct Tables<'c> {
    connection: &'c Connection,
    cache: &'c quick_cache::sync::Cache<u64, Version>,
    caching: Caching,
    arena: Arena<Version>,
    failure: RefCell<Option<rusqlite::Error>>,
    seq: Cell<Option<u64>>,
}

impl<'c> Tables<'c> {
    fn new(
        connection: &'c Connection,
        cache: &'c quick_cache::sync::Cache<u64, Version>,
        caching: Caching,
    ) -> Self {
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
    fn ok<T>(&self, result: rusqlite::Result<T>) -> Option<T> {
        if self.failure.borrow().is_some() {
            return None;
        }
        result.map_err(|e| *self.failure.borrow_mut() = Some(e)).ok()
    }

    /// The integers `sql` answers with.
    fn numbers(&self, sql: &str, params: impl rusqlite::Params) -> Vec<u64> {
        let rows = self.connection.prepare_cached(sql).and_then(|mut statement| {
            statement
                .query_map(params, |row| row.get::<_, i64>(0))?
                .map(|n| n.map(|n| n.unsigned_abs()))
                .collect::<rusqlite::Result<Vec<u64>>>()
        });
        self.ok(rows).unwrap_or_default()
    }

    /// The one integer `sql` answers with, if any.
    fn number(&self, sql: &str, params: impl rusqlite::Params) -> Option<u64> {
        let found = self.connection.prepare_cached(sql).and_then(|mut statement| {
            statement
                .query_row(params, |row| row.get::<_, Option<i64>>(0))
                .optional()
        });
        self.ok(found).flatten().flatten().map(i64::unsigned_abs)
    }

    /// Version `seq`, from the cache or the table.
    fn load(&self, seq: u64) -> Option<&Version> {
        let version = match self.cache.get(&seq) {
            Some(version) => version,
            None => {
                let version = self.ok(self.read_version(seq))??;
                if self.caching == Caching::ReadAndKeep {
                    self.cache.insert(seq, version.clone());
                }
                version
            }
        };
        Some(self.arena.alloc(version))
    }

    fn read_version(&self, seq: u64) -> rusqlite::Result<Option<Version>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT type, id, version_id, deleted, last_updated, json, idx FROM versions WHERE seq = ?1",
        )?;
        statement
            .query_row([int(seq)], |row| {
                let kind = row.get_ref(0)?.as_str()?;
                let json: Vec<u8> = row.get(5)?;
                let kept = row.get_ref(6)?.as_blob_or_null()?;
                let index = kept
                    .and_then(|bytes| Index::from_bytes(kind, bytes))
                    .unwrap_or_else(|| Index::of(&serde_json::from_slice(&json).unwrap_or_default()));
                Ok(Version {
                    seq,
                    kind: Text::new(kind),
                    id: Text::new(row.get_ref(1)?.as_str()?),
                    version_id: row.get::<_, i64>(2)?.unsigned_abs(),
                    deleted: row.get(3)?,
                    last_updated: DateTime::from_timestamp_nanos(row.get(4)?),
                    index,
                    json: Bytes::from(json),
                })
            })
            .optional()
    }

    /// The seq of `kind/id`'s newest version at `snapshot`.
    fn newest(&self, kind: &str, id: &str, snapshot: u64) -> Option<u64> {
        self.number(
            "SELECT seq FROM versions WHERE type = ?1 AND id = ?2 AND seq <= ?3
             ORDER BY version_id DESC LIMIT 1",
            params![kind, id, int(snapshot)],
        )
    }
}

impl Snapshot for Tables<'_> {
    fn seq(&self) -> u64 {
        if let Some(seq) = self.seq.get() {
            return seq;
        }
        let seq = self
            .number("SELECT seq FROM sqlite_sequence WHERE name = 'versions'", [])
            .unwrap_or(0);
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
        self.numbers(
            "SELECT seq FROM versions WHERE type = ?1 AND id = ?2 ORDER BY version_id",
            params![kind, id],
        )
        .into_iter()
        .filter_map(|seq| self.load(seq))
        .collect()
    }

    fn every<'a>(&'a self, kind: &str, snapshot: u64) -> Versions<'a> {
        let newest = self.numbers(
            "SELECT max(seq) FROM versions WHERE type = ?1 AND seq <= ?2 GROUP BY slot ORDER BY slot",
            params![kind, int(snapshot)],
        );
        Box::new(
            newest
                .into_iter()
                .filter_map(|seq| self.load(seq))
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
                        "SELECT slot FROM by_patient WHERE type = ?1 AND patient = ?2",
                        params![kind, patient],
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
                        "SELECT slot FROM by_code WHERE type = ?1 AND param = ?2 AND code = ?3",
                        params![kind, param, code],
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
                        "SELECT slot FROM resources WHERE type = ?1 AND id = ?2",
                        params![kind, id],
                    )
                })
                .collect(),
        )
    }

    fn resolve<'a>(&'a self, kind: &str, candidates: Candidates, snapshot: u64) -> Versions<'a> {
        let kind = kind.to_owned();
        Box::new(
            candidates
                .0
                .into_iter()
                .filter_map(move |slot| {
                    self.number(
                        "SELECT max(seq) FROM versions WHERE type = ?1 AND slot = ?2 AND seq <= ?3",
                        params![kind, int(slot), int(snapshot)],
                    )
                })
                .filter_map(|seq| self.load(seq))
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
        self.numbers(
            "SELECT seq FROM versions WHERE (?1 IS NULL OR type = ?1) AND seq <= ?2 AND last_updated >= ?3
             ORDER BY seq DESC",
            params![kind, int(snapshot), since],
        )
        .into_iter()
        .filter_map(|seq| self.load(seq))
        .collect()
    }
}

impl Writer for Tables<'_> {
    fn file(&mut self, record: Record, deleted: bool) -> Version {
        let written = (|| {
            let c = self.connection;
            let (kind, id) = (&*record.kind, &*record.id);
            c.prepare_cached("INSERT OR IGNORE INTO resources (type, id) VALUES (?1, ?2)")?
                .execute(params![kind, id])?;
            let slot: i64 = c
                .prepare_cached("SELECT slot FROM resources WHERE type = ?1 AND id = ?2")?
                .query_row(params![kind, id], |row| row.get(0))?;
            c.prepare_cached(
                "INSERT INTO versions (type, id, slot, version_id, deleted, last_updated, json, idx)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                kind,
                id,
                slot,
                int(record.version_id),
                deleted,
                record.last_updated.timestamp_nanos_opt().unwrap_or(i64::MAX),
                &record.json[..],
                record.index.to_bytes(),
            ])?;
            let seq = c.last_insert_rowid().unsigned_abs();
            let index = &record.index;
            let mut by_patient = c.prepare_cached("INSERT OR IGNORE INTO by_patient VALUES (?1, ?2, ?3)")?;
            for patient in index
                .patients()
                .iter()
                .copied()
                .chain(index.referenced_patients())
            {
                by_patient.execute(params![kind, &*patient, slot])?;
            }
            let mut by_code = c.prepare_cached("INSERT OR IGNORE INTO by_code VALUES (?1, ?2, ?3, ?4)")?;
            for (param, code) in index.codes() {
                by_code.execute(params![kind, param, &**code, slot])?;
            }
            Ok(seq)
        })();
        // After a failure the transaction is rolled back whatever happens next;
        // the version returned meanwhile is never stored.
        let seq = self.ok(written).unwrap_or_default();
        self.seq.set(Some(seq));
        Version::of(record, seq, deleted)
    }
}
