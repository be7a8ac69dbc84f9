//! What the authorisation server keeps across a restart, with `--store sqlite:PATH`:
//! the signing key (so tokens issued before a restart still verify), registered
//! clients, refresh tokens, revocations (so a revoked token stays revoked) and
//! the ids of client assertions used (so none can be replayed after a restart).
//!
//! The grant store stays the authority while the process runs and writes each
//! change of these through to a table of the store's file, `kept`: one row per
//! entry, its value as JSON, with the entry's expiry so expired rows are pruned
//! as the grant store prunes its own. At start, the grant store reads them back.
//! Short-lived entries (codes, authorizations waiting for a person, launch ids,
//! browser logins) live a few minutes and are not kept: a restart in the middle
//! of a launch means launching again.

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Storage;
use crate::sqlite::{connect, int};

/// The kinds of entry kept. Their names are the table's `kind` column: renaming
/// one forgets what was kept under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum Kept {
    /// The signing key, as PKCS#8, by algorithm.
    SigningKey,
    /// A registered (or adopted) client's settings, by client id.
    Client,
    /// A registered client's RFC 7592 registration, by client id.
    Registration,
    RefreshToken,
    /// A refresh token rotation replaced: using it again revokes its grant.
    ReplacedRefreshToken,
    RevokedGrant,
    RevokedToken,
    /// `client:jti` of a client assertion already used, until its `exp`.
    AssertionId,
}

/// Entries kept in the store's file; with the memory store, nothing is.
#[derive(Clone, Default)]
pub(crate) struct Durable(Option<Arc<Mutex<Connection>>>);

impl Durable {
    /// The table in `storage`'s file.
    pub(crate) fn open(storage: &Storage) -> Result<Durable, String> {
        let path = match storage {
            Storage::Memory => return Ok(Durable(None)),
            Storage::Sqlite(path) => path,
        };
        let refuse = |why: String| format!("cannot open the store {storage}: {why}");
        let connection = connect(path).map_err(refuse)?;
        connection
            .execute_batch(SCHEMA)
            .map_err(|e| refuse(e.to_string()))?;
        Ok(Durable(Some(Arc::new(Mutex::new(connection)))))
    }

    /// Forgets everything kept (`--reset`): the key and every client and token.
    pub(crate) fn forget_everything(&self) -> Result<(), String> {
        match self.with(|c| c.execute("DELETE FROM kept", []).map(drop)) {
            Some(Err(e)) => Err(format!("cannot empty the store: {e}")),
            _ => Ok(()),
        }
    }

    /// Whether anything is kept (not with the memory store).
    pub(crate) fn keeps(&self) -> bool {
        self.0.is_some()
    }

    /// Keeps `value` under `key` until `expires_at` (seconds since the epoch).
    pub(crate) fn keep(&self, kind: Kept, key: &str, value: &impl Serialize, expires_at: u64) {
        let Ok(json) = serde_json::to_string(value) else {
            return;
        };
        self.report(kind, self.with(|c| {
            c.prepare_cached(
                "INSERT INTO kept (kind, key, value, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            )?
            .execute(params![<&str>::from(kind), key, json, int(expires_at)])
            .map(drop)
        }));
    }

    pub(crate) fn forget(&self, kind: Kept, key: &str) {
        self.report(
            kind,
            self.with(|c| {
                c.prepare_cached("DELETE FROM kept WHERE kind = ?1 AND key = ?2")?
                    .execute(params![<&str>::from(kind), key])
                    .map(drop)
            }),
        );
    }

    /// Every live entry of `kind`, as kept. One that no longer reads as a `T` (kept
    /// by another version of the mock) is skipped, and said.
    pub(crate) fn all<T: DeserializeOwned>(&self, kind: Kept, now: u64) -> Vec<(String, T)> {
        let rows = self.with(|c| {
            c.prepare_cached("SELECT key, value FROM kept WHERE kind = ?1 AND expires_at > ?2")?
                .query_map(params![<&str>::from(kind), int(now)], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
        });
        let rows = self.report(kind, rows).unwrap_or_default();
        rows.into_iter()
            .filter_map(|(key, json)| match serde_json::from_str(&json) {
                Ok(value) => Some((key, value)),
                Err(error) => {
                    tracing::warn!(?kind, key, %error, "a kept entry no longer reads; skipped");
                    None
                }
            })
            .collect()
    }

    /// One entry, if kept and live.
    pub(crate) fn one<T: DeserializeOwned>(&self, kind: Kept, key: &str) -> Option<T> {
        let json = self.with(|c| {
            c.prepare_cached("SELECT value FROM kept WHERE kind = ?1 AND key = ?2")?
                .query_row(params![<&str>::from(kind), key], |row| row.get::<_, String>(0))
                .optional()
        });
        serde_json::from_str(&self.report(kind, json)??).ok()
    }

    /// Drops the entries that expired before `now`.
    pub(crate) fn prune(&self, now: u64) {
        let pruned = self.with(|c| {
            c.prepare_cached("DELETE FROM kept WHERE expires_at <= ?1")?
                .execute([int(now)])
                .map(drop)
        });
        if let Some(Err(error)) = pruned {
            tracing::error!(%error, "cannot prune the kept authorisation state");
        }
    }

    fn with<T>(&self, work: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<rusqlite::Result<T>> {
        let connection = self.0.as_ref()?;
        Some(work(&connection.lock().unwrap_or_else(PoisonError::into_inner)))
    }

    /// A failed write leaves the running server as it is; only a restart would
    /// miss the entry. It is logged, not turned into a failed request.
    fn report<T>(&self, kind: Kept, result: Option<rusqlite::Result<T>>) -> Option<T> {
        match result? {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::error!(?kind, %error, "cannot keep the authorisation state in the store");
                None
            }
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kept (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
";
