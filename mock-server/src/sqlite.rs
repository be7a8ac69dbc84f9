//! What every user of a SQLite store file shares: how a connection is opened.

use std::path::Path;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

/// A connection to the store file at `path`, made (with its directory) if missing.
pub(crate) fn connect(path: &Path) -> Result<Connection, String> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    configure(&connection).map_err(|e| e.to_string())?;
    Ok(connection)
}

fn configure(connection: &Connection) -> rusqlite::Result<()> {
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

/// SQLite keeps signed 64-bit integers; "no limit" (`u64::MAX`) would not fit.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
