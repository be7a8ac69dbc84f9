//! What the authorisation server keeps in the store (`--store sqlite:PATH` or
//! `postgres://…`): the signing key, clients, codes, authorizations waiting for a
//! person, browser logins, launches, refresh tokens, revocations and used
//! assertion ids — one row each in a table `kept`, its value as JSON, with its
//! expiry, so expired rows are pruned as the grant store prunes its own.
//!
//! The grant store keeps working from its maps and writes each change through.
//! Every row carries `changed`, the number of the last write to it (writers take
//! turns, so numbers are committed in order), and a forgotten entry stays a row
//! without a value for a while. That lets a grant store catch up with what others
//! wrote: at start, from nothing (a restart); and on PostgreSQL, where other mocks
//! write too, before each use (see `state.rs`) — a revocation made by one mock is
//! seen by the next request any other one answers. What must happen once across
//! mocks (a code redeemed, a launch or an authorization taken, an assertion id
//! used, the first signing key) is decided by one conditional statement here.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Storage;
use crate::postgres::Postgres;
use crate::sql::{Connection, Param, Pool, Row, int};
use crate::sqlite::Sqlite;

/// The kinds of entry kept. Their names are the table's `kind` column: renaming
/// one forgets what was kept under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum Kept {
    /// The signing key, as PKCS#8, by algorithm.
    SigningKey,
    /// A registered (or adopted) client's settings, by client id.
    Client,
    /// A registered client's RFC 7592 registration, by client id.
    Registration,
    /// An authorization code not yet redeemed.
    Code,
    /// A redeemed code: presented again, it revokes its grant.
    UsedCode,
    /// An authorization waiting for a person, by `txn`.
    Pending,
    /// A browser's login, by its cookie.
    Session,
    /// A launch made on the launcher page, by launch id.
    Launch,
    RefreshToken,
    /// A refresh token rotation replaced: using it again revokes its grant.
    ReplacedRefreshToken,
    RevokedGrant,
    RevokedToken,
    /// `client:jti` of a client assertion already used, until its `exp`.
    AssertionId,
}

/// One write to the table, as another grant store catches up with it.
pub(crate) struct Change {
    pub(crate) kind: Kept,
    pub(crate) key: String,
    /// The entry's JSON; `None` once forgotten.
    pub(crate) value: Option<String>,
    pub(crate) expires_at: u64,
    pub(crate) changed: u64,
}

/// The store's table could not be read or written (→ 503, `temporarily_unavailable`).
#[derive(Debug, thiserror::Error)]
#[error("the store failed: {0}")]
pub(crate) struct Unavailable(String);

/// How long a forgotten entry stays a row, at most, for other mocks to see it go.
const FORGOTTEN_FOR_SECS: u64 = 7 * 24 * 60 * 60;

/// Entries kept in the store; with the memory store, nothing is.
#[derive(Clone, Default)]
pub(crate) struct Durable(Option<Arc<Table>>);

enum Table {
    Sqlite(Pool<Sqlite>),
    Postgres(Pool<Postgres>),
}

impl Table {
    /// One transaction that writes, as the only writer of the table.
    fn write<T>(&self, work: impl FnOnce(&dyn Connection) -> Result<T, String>) -> Result<T, String> {
        match self {
            Table::Sqlite(pool) => pool.write(|c| work(c)),
            Table::Postgres(pool) => pool.write(|c| work(c)),
        }
    }

    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Unavailable> {
        match self {
            Table::Sqlite(pool) => pool.query(sql, params),
            Table::Postgres(pool) => pool.query(sql, params),
        }
        .map_err(Unavailable)
    }
}

/// Whether a write replaces what is there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Put {
    Always,
    /// Only where no live entry is.
    IfAbsent,
    /// Only over a live entry: what another mock forgot a moment ago stays forgotten.
    IfLive,
}

impl Durable {
    /// The table in `storage`.
    pub(crate) fn open(storage: &Storage) -> Result<Durable, String> {
        let table = match storage {
            Storage::Memory => return Ok(Durable(None)),
            Storage::Sqlite(path) => Table::Sqlite(Pool::new(Sqlite { path: path.clone() })),
            Storage::Postgres(url) => Table::Postgres(Pool::new(Postgres { url: url.clone() })),
        };
        let sqlite = matches!(table, Table::Sqlite(_));
        table
            .write(|c| {
                if sqlite {
                    migrate_sqlite(c)?;
                }
                match sqlite {
                    true => c.batch(&(SCHEMA.replace("BIGINT", "INTEGER") + " WITHOUT ROWID;" + INDEX)),
                    false => c.batch(&(SCHEMA.to_owned() + ";" + INDEX)),
                }
            })
            .map_err(|why| format!("cannot open the store {storage}: {why}"))?;
        Ok(Durable(Some(Arc::new(table))))
    }

    /// Forgets everything kept (`--reset`): the key and every client and token.
    /// The numbering goes on, so that mocks catching up miss nothing.
    pub(crate) fn forget_everything(&self) -> Result<(), String> {
        self.write(|c| c.execute("DELETE FROM kept", &[]).map(drop))
            .map_err(|e| format!("cannot empty the store: {}", e.0))
    }

    /// Whether anything is kept (not with the memory store).
    pub(crate) fn keeps(&self) -> bool {
        self.0.is_some()
    }

    /// Keeps `value` under `key` until `expires_at` (seconds since the epoch).
    pub(crate) fn keep(
        &self,
        kind: Kept,
        key: &str,
        value: &impl Serialize,
        expires_at: u64,
    ) -> Result<(), Unavailable> {
        self.put_value((kind, key), value, expires_at, Put::Always)
            .map(drop)
    }

    /// Keeps `value` under `key` unless a live entry is there already; true if
    /// this kept it. Of two mocks asking at once, one is told true.
    pub(crate) fn keep_first(
        &self,
        kind: Kept,
        key: &str,
        value: &impl Serialize,
        expires_at: u64,
    ) -> Result<bool, Unavailable> {
        self.put_value((kind, key), value, expires_at, Put::IfAbsent)
    }

    /// Replaces a live entry; false (and nothing kept) if there is none, as when
    /// another mock forgot it a moment ago.
    pub(crate) fn replace(
        &self,
        kind: Kept,
        key: &str,
        value: &impl Serialize,
        expires_at: u64,
    ) -> Result<bool, Unavailable> {
        self.put_value((kind, key), value, expires_at, Put::IfLive)
    }

    /// Writes `value` as `how` allows; whether it did (with the memory store,
    /// always: the grant store's own maps decide).
    fn put_value(
        &self,
        entry: (Kept, &str),
        value: &impl Serialize,
        expires_at: u64,
        how: Put,
    ) -> Result<bool, Unavailable> {
        let json = to_json(value)?;
        self.write(|c| put(c, entry, Some(&json), expires_at, how))
            .map(|written| written || self.0.is_none())
    }

    /// Forgets the entry; true if it was live. Of two mocks taking one entry at
    /// once, one is told true. With the memory store, always true: the grant
    /// store's own maps decide.
    pub(crate) fn take(&self, kind: Kept, key: &str, now: u64) -> Result<bool, Unavailable> {
        self.take_then(kind, key, now, None::<(Kept, &str, &(), u64)>)
    }

    /// [`Self::take`], and if it took the entry, keeps `then` in the same
    /// transaction: no mock sees one without the other.
    pub(crate) fn take_then(
        &self,
        kind: Kept,
        key: &str,
        now: u64,
        then: Option<(Kept, &str, &impl Serialize, u64)>,
    ) -> Result<bool, Unavailable> {
        let then = match then {
            Some((kind, key, value, expires_at)) => Some((kind, key, to_json(value)?, expires_at)),
            None => None,
        };
        self.write(|c| {
            // A forgotten entry stays a row a while, for other mocks to see it go.
            let taken = put(c, (kind, key), None, now + FORGOTTEN_FOR_SECS, Put::IfLive)?;
            if let (true, Some((kind, key, json, expires_at))) = (taken, &then) {
                put(c, (*kind, key), Some(json), *expires_at, Put::Always)?;
            }
            Ok(taken)
        })
        .map(|taken| taken || self.0.is_none())
    }

    /// One entry, if kept and live.
    pub(crate) fn one<T: DeserializeOwned>(&self, kind: Kept, key: &str) -> Result<Option<T>, Unavailable> {
        let Some(table) = &self.0 else {
            return Ok(None);
        };
        let rows = table.query(
            "SELECT value FROM kept WHERE kind = $1 AND key = $2 AND value IS NOT NULL",
            &[Param::Text(kind.into()), Param::Text(key)],
        )?;
        Ok(rows
            .first()
            .and_then(|row| row.first()?.text())
            .and_then(|json| serde_json::from_str(json).ok()))
    }

    /// The number of the latest write, when other processes write too (else
    /// `None`: this process's maps are the truth).
    pub(crate) fn latest_change(&self) -> Result<Option<u64>, Unavailable> {
        let Some(table @ Table::Postgres(_)) = self.0.as_deref() else {
            return Ok(None);
        };
        Ok(Some(counted(&table.query(COUNTER, &[])?)))
    }

    /// The number of the latest write, and every write after number `seen`, in
    /// order, of entries not yet expired at `now`.
    pub(crate) fn changes_since(&self, seen: u64, now: u64) -> Result<(u64, Vec<Change>), Unavailable> {
        let Some(table) = &self.0 else {
            return Ok((0, Vec::new()));
        };
        // The number first: a write committed between the two questions is in the
        // second answer, numbered past it.
        let latest = counted(&table.query(COUNTER, &[])?);
        let rows = table.query(
            "SELECT kind, key, value, expires_at, changed FROM kept
             WHERE changed > $1 AND expires_at > $2 ORDER BY changed",
            &[Param::Int(int(seen)), Param::Int(int(now))],
        )?;
        let changes = rows
            .into_iter()
            .filter_map(|row| {
                let [kind, key, value, expires_at, changed] = <[_; 5]>::try_from(row).ok()?;
                let kind = kind.text()?.parse().ok();
                if kind.is_none() {
                    tracing::warn!("an entry of a kind this mock does not know was skipped");
                }
                Some(Change {
                    kind: kind?,
                    key: key.text()?.to_owned(),
                    value: value.text().map(str::to_owned),
                    expires_at: expires_at.int()?.unsigned_abs(),
                    changed: changed.int()?.unsigned_abs(),
                })
            })
            .collect();
        Ok((latest, changes))
    }

    /// Drops the entries that expired before `now`.
    pub(crate) fn prune(&self, now: u64) {
        let pruned = self.write(|c| {
            c.execute("DELETE FROM kept WHERE expires_at <= $1", &[Param::Int(int(now))])
                .map(drop)
        });
        if let Err(error) = pruned {
            tracing::error!(%error, "cannot prune the kept authorisation state");
        }
    }

    fn write<T: Default>(
        &self,
        work: impl FnOnce(&dyn Connection) -> Result<T, String>,
    ) -> Result<T, Unavailable> {
        match &self.0 {
            Some(table) => table.write(work).map_err(Unavailable),
            None => Ok(T::default()),
        }
    }
}

/// Writes an entry (`None`: forgets it) as `how` allows, numbered by the
/// counter; whether it wrote. Inside a transaction that writes.
fn put(
    c: &dyn Connection,
    (kind, key): (Kept, &str),
    value: Option<&str>,
    expires_at: u64,
    how: Put,
) -> Result<bool, String> {
    let changed = c
        .number("UPDATE kept_counter SET n = n + 1 RETURNING n", &[])?
        .ok_or("the kept table's counter is missing")?;
    let (kind, key) = (Param::Text(kind.into()), Param::Text(key));
    let (expires_at, changed) = (Param::Int(int(expires_at)), Param::Int(changed));
    let written = match (value, how) {
        (None, _) => c.execute(
            "UPDATE kept SET value = NULL, changed = $3, expires_at = CASE WHEN expires_at > $4 THEN $4 ELSE expires_at END
             WHERE kind = $1 AND key = $2 AND value IS NOT NULL",
            &[kind, key, changed, expires_at],
        )?,
        (Some(json), Put::IfLive) => c.execute(
            "UPDATE kept SET value = $3, expires_at = $4, changed = $5
             WHERE kind = $1 AND key = $2 AND value IS NOT NULL",
            &[kind, key, Param::Text(json), expires_at, changed],
        )?,
        (Some(json), Put::Always | Put::IfAbsent) => c.execute(
            match how {
                Put::IfAbsent => {
                    "INSERT INTO kept (kind, key, value, expires_at, changed) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value,
                         expires_at = excluded.expires_at, changed = excluded.changed
                     WHERE kept.value IS NULL"
                }
                _ => {
                    "INSERT INTO kept (kind, key, value, expires_at, changed) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value,
                         expires_at = excluded.expires_at, changed = excluded.changed"
                }
            },
            &[kind, key, Param::Text(json), expires_at, changed],
        )?,
    };
    Ok(written == 1)
}

fn to_json(value: &impl Serialize) -> Result<String, Unavailable> {
    serde_json::to_string(value).map_err(|e| Unavailable(e.to_string()))
}

/// The number of the latest write. A counter of its own, not the table's
/// `max(changed)`: pruning or `--reset` would take that back, and a mock that
/// had seen the larger number would miss the writes numbered again.
const COUNTER: &str = "SELECT n FROM kept_counter";

fn counted(rows: &[Row]) -> u64 {
    rows.first()
        .and_then(|row| row.first()?.int())
        .unwrap_or(0)
        .unsigned_abs()
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kept (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    -- NULL once forgotten.
    value TEXT,
    expires_at BIGINT NOT NULL,
    changed BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
)";

const INDEX: &str = "CREATE INDEX IF NOT EXISTS kept_by_change ON kept (changed);
CREATE TABLE IF NOT EXISTS kept_counter (n BIGINT NOT NULL);
INSERT INTO kept_counter (n) SELECT coalesce((SELECT max(changed) FROM kept), 0)
    WHERE NOT EXISTS (SELECT 1 FROM kept_counter);";

/// A SQLite file made before entries could be forgotten in place (no `changed`,
/// `value` required) has its table made again, entries numbered in the order
/// clients were registered.
fn migrate_sqlite(c: &dyn Connection) -> Result<(), String> {
    let old = c.number(
        "SELECT count(*) FROM pragma_table_info('kept') WHERE name = 'kind'
         AND NOT EXISTS (SELECT 1 FROM pragma_table_info('kept') WHERE name = 'changed')",
        &[],
    )?;
    if old != Some(1) {
        return Ok(());
    }
    c.batch(&format!(
        "ALTER TABLE kept RENAME TO kept_before;
         {} WITHOUT ROWID;
         INSERT INTO kept (kind, key, value, expires_at, changed)
             SELECT kind, key, value, expires_at, row_number() OVER (ORDER BY json_extract(value, '$.since'), kind, key) FROM kept_before;
         DROP TABLE kept_before;",
        SCHEMA.replace("BIGINT", "INTEGER")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers of writes never go back, also when the newest entry expires
    /// and is pruned: a mock that saw it would miss what is written next.
    #[test]
    fn numbers_never_go_back_when_the_newest_entry_is_pruned() {
        let file = std::env::temp_dir().join(format!("ccri-mock-numbers-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&file);
        let durable = Durable::open(&Storage::Sqlite(file.clone())).unwrap();
        durable.keep(Kept::Client, "a", &1, u64::MAX).unwrap();
        durable.keep(Kept::Code, "b", &2, 10).unwrap();
        let (seen, _) = durable.changes_since(0, 0).unwrap();
        assert_eq!(seen, 2);
        durable.prune(100);
        durable.keep(Kept::Client, "c", &3, u64::MAX).unwrap();
        let (latest, after) = durable.changes_since(seen, 100).unwrap();
        let keys: Vec<&str> = after.iter().map(|c| c.key.as_str()).collect();
        assert_eq!((latest, keys), (3, vec!["c"]));
        drop(durable);
        std::fs::remove_file(&file).unwrap();
    }

    /// A file whose `kept` table was made before entries were numbered (and
    /// before a value could be forgotten in place) is read as before, and works.
    #[test]
    fn a_file_of_the_first_kept_table_is_migrated() {
        let file = std::env::temp_dir().join(format!("ccri-mock-kept-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&file);
        let old = rusqlite::Connection::open(&file).unwrap();
        old.execute_batch(
            "CREATE TABLE kept (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                 expires_at INTEGER NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;
             INSERT INTO kept VALUES ('client', 'b', '{\"since\": 2}', 9223372036854775807);
             INSERT INTO kept VALUES ('client', 'a', '{\"since\": 1}', 9223372036854775807);
             INSERT INTO kept VALUES ('revoked_token', 'jti', '99', 9223372036854775807);",
        )
        .unwrap();
        drop(old);
        let durable = Durable::open(&Storage::Sqlite(file.clone())).unwrap();
        let (latest, changes) = durable.changes_since(0, 0).unwrap();
        assert_eq!(latest, 3, "the counter starts where the numbers were");
        let read: Vec<(Kept, &str, u64)> = changes
            .iter()
            .map(|c| (c.kind, c.key.as_str(), c.changed))
            .collect();
        // Clients in the order they came, so the clients page keeps its order.
        assert_eq!(
            read,
            [
                (Kept::RevokedToken, "jti", 1),
                (Kept::Client, "a", 2),
                (Kept::Client, "b", 3)
            ]
        );
        assert!(durable.take(Kept::RevokedToken, "jti", 0).unwrap());
        assert!(!durable.take(Kept::RevokedToken, "jti", 0).unwrap(), "taken once");
        let (_, last) = durable.changes_since(3, 0).unwrap();
        assert_eq!(
            (last.len(), last[0].value.as_deref()),
            (1, None),
            "forgotten in place"
        );
        drop(durable);
        std::fs::remove_file(&file).unwrap();
    }
}
