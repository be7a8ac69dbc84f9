//! The resources the FHIR API serves, with every version, behind one interface and
//! backends: in memory (the default); SQLite (`--store sqlite:PATH`), which
//! survives a restart; PostgreSQL (`--store postgres://…`), which several mocks share. Nothing outside this module knows which one runs.
//!
//! Each write takes the next number of one store-wide sequence. A search remembers
//! the sequence number it ran at (its snapshot) and its later pages read each
//! resource as it was then, so paging is stable while others write. Resources are
//! indexed by the patients whose compartments they are in, the one filter nearly
//! every SMART request has, so a patient's search never scans the whole type, and by
//! their token codes. Each resource has a slot, its place in the order its type's
//! resources were first created: the indexes hold slots, and a search finds its
//! candidates in that order (as HAPI's, by creation).
//!
//! The search engine (`search/`) asks a [`Snapshot`] for candidates and versions and
//! checks every criterion itself, over each version's index rows.

mod memory;
mod sql;

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::index::{Index, Text};
use crate::config::Storage;

/// One version of a resource. A delete is a version too, keeping the last content.
///
/// The resource is kept as the JSON text it is sent as, not as a parsed tree: a
/// read or a search sends the text, and scope checks and searches read the index,
/// so the tree (several times the text's size) would only cost memory.
#[derive(Clone, Debug)]
pub(crate) struct Version {
    pub seq: u64,
    pub version_id: u64,
    pub deleted: bool,
    pub last_updated: DateTime<Utc>,
    kind: Text,
    id: Text,
    /// The resource with `meta.versionId` and `meta.lastUpdated` filled in, serialised
    /// once, when written.
    pub json: Bytes,
    /// Its search values, extracted once, when written (or read back from SQLite).
    pub index: Index,
}

/// A version's weak ETag, `W/"3"`, written on the stack: every read sends one.
#[derive(Clone, Copy)]
pub(crate) struct ETag {
    /// `W/"`, up to 20 digits of a `u64`, and `"`.
    text: [u8; 24],
    len: usize,
}

impl ETag {
    fn of(version_id: u64) -> ETag {
        use std::io::Write;
        let mut text = [0; 24];
        let mut rest = &mut text[..];
        write!(rest, "W/\"{version_id}\"").expect("24 bytes hold any u64's tag");
        let len = 24 - rest.len();
        ETag { text, len }
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text[..self.len]).expect("ASCII")
    }
}

impl serde::Serialize for ETag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Version {
    /// `(type, id)`.
    pub(crate) fn key(&self) -> (&str, &str) {
        (&self.kind, &self.id)
    }

    /// Its ETag, `W/"3"`.
    pub(crate) fn etag(&self) -> ETag {
        ETag::of(self.version_id)
    }

    /// The resource, parsed from its text (which the store wrote, so it parses).
    pub(crate) fn resource(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or_default()
    }

    fn of(record: Record, seq: u64, deleted: bool) -> Version {
        let Record {
            kind,
            id,
            version_id,
            last_updated,
            json,
            index,
        } = record;
        Version {
            seq,
            version_id,
            deleted,
            last_updated,
            kind,
            id,
            json,
            index,
        }
    }
}

/// A resource made ready to store: `meta` filled in, indexed and serialised —
/// the costly part of a write, done before the store's lock is taken. Loading
/// `--data` prepares records on every core (`seed::stream_dir`); the store only files them.
pub struct Record {
    kind: Text,
    id: Text,
    version_id: u64,
    last_updated: DateTime<Utc>,
    json: Bytes,
    index: Index,
}

impl Record {
    /// `resource` as version `version_id` of `kind/id`, written at `last_updated`.
    pub(crate) fn new(
        (kind, id): (&str, &str),
        mut resource: Value,
        version_id: u64,
        last_updated: DateTime<Utc>,
    ) -> Record {
        resource["resourceType"] = json!(kind);
        resource["id"] = json!(id);
        let meta = resource
            .as_object_mut()
            .map(|r| r.entry("meta").or_insert_with(|| json!({})));
        if let Some(meta @ Value::Object(_)) = meta {
            meta["versionId"] = json!(version_id.to_string());
            meta["lastUpdated"] = json!(super::instant(last_updated));
        }
        let index = Index::of(&resource);
        Record {
            kind: Text::new(kind),
            id: Text::new(id),
            version_id,
            last_updated,
            // Copied out at its length: the serialiser's buffer has grown by doubling.
            json: Bytes::copy_from_slice(resource.to_string().as_bytes()),
            index,
        }
    }

    /// The resource's type.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The resource's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The resource as it will be served, `meta` included.
    pub fn resource(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or_default()
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Record({}/{}/_history/{})",
            self.kind, self.id, self.version_id
        )
    }
}

/// Resources of one type that an index names — sorted by slot, each once — for a
/// search to check: see [`Snapshot::resolve`].
#[derive(Debug, Default)]
pub(crate) struct Candidates(Vec<u64>);

impl Candidates {
    fn of(mut slots: Vec<u64>) -> Candidates {
        slots.sort_unstable();
        slots.dedup();
        Candidates(slots)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Why a write did not happen.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteError {
    /// `If-Match` named another version (→ 412).
    VersionConflict {
        current: u64,
    },
    /// Update or delete of something that is not there (→ 404/410).
    NotFound,
    Gone,
}

/// What a read found.
#[derive(Default)]
pub(crate) enum Found {
    Current(Version),
    Deleted(Version),
    #[default]
    Missing,
}

/// Versions handed out one at a time, as a search checks them.
pub(crate) type Versions<'a> = Box<dyn Iterator<Item = &'a Version> + 'a>;

/// The store as one request sees it. Versions are borrowed from the snapshot,
/// which lives as long as the request's work with the store.
pub(crate) trait Snapshot {
    /// The store's sequence number now: a search's snapshot.
    fn seq(&self) -> u64;

    /// `kind/id` as it was at `snapshot` (now if `None`).
    fn find(&self, kind: &str, id: &str, snapshot: Option<u64>) -> Found;

    /// Every version of `kind/id`, oldest first.
    fn versions(&self, kind: &str, id: &str) -> Vec<&Version>;

    /// Every resource of `kind` as it was at `snapshot`, in slot order.
    fn every<'a>(&'a self, kind: &str, snapshot: u64) -> Versions<'a>;

    /// `kind/id` at `snapshot`, unless it did not exist or was deleted then.
    fn at(&self, kind: &str, id: &str, snapshot: u64) -> Option<&Version>;

    /// The resources of `kind` that were ever in the compartment of one of
    /// `patients` or referred to them.
    fn for_patients(&self, kind: &str, patients: &[&str]) -> Candidates;

    /// The resources of `kind` whose `param` ever had one of the token `codes`.
    fn with_codes(&self, kind: &str, param: &str, codes: &[&str]) -> Candidates;

    /// The resources of `kind` with one of `ids`.
    fn with_ids(&self, kind: &str, ids: &[&str]) -> Candidates;

    /// `candidates` of `kind` as they were at `snapshot`, in slot order, less those
    /// that did not exist or were deleted then.
    fn resolve<'a>(&'a self, kind: &str, candidates: Candidates, snapshot: u64) -> Versions<'a>;

    /// Every version of every resource (of `kind`, when given) stored at or after
    /// `since` and up to `snapshot`, newest first: the type and system `_history`.
    fn changes(&self, kind: Option<&str>, since: Option<DateTime<Utc>>, snapshot: u64) -> Vec<&Version>;
}

/// The store inside a transaction: the rules of a write are here, once; a
/// backend only files versions.
pub(crate) trait Writer: Snapshot {
    /// Stores `record` as the next version of its resource, and indexes it.
    fn file(&mut self, record: Record, deleted: bool) -> Version;

    /// The number the next version of `kind/id` gets.
    fn next_version(&self, kind: &str, id: &str) -> u64 {
        match self.find(kind, id, None) {
            Found::Current(v) | Found::Deleted(v) => v.version_id + 1,
            Found::Missing => 1,
        }
    }

    /// Stores `records`, prepared beforehand (see [`Record`]); the same resource
    /// twice is two versions.
    fn file_all(&mut self, records: Vec<Record>) {
        for record in records {
            let next = self.next_version(&record.kind, &record.id);
            let record = match next == record.version_id {
                true => record,
                false => Record::new(
                    (&record.kind, &record.id),
                    record.resource(),
                    next,
                    record.last_updated,
                ),
            };
            self.file(record, false);
        }
    }

    /// Stores a new resource under the id it carries (see [`super::new_id`]).
    fn create(&mut self, kind: &str, resource: Value) -> Version {
        let id = resource["id"].as_str().unwrap_or_default().to_owned();
        self.put(kind, &id, resource, false)
    }

    /// Stores `resource` as the next version of `kind/id` (creating it if absent),
    /// if `if_match` is absent or names the current version. Returns the version and
    /// whether it was created.
    fn update(
        &mut self,
        kind: &str,
        id: &str,
        resource: Value,
        if_match: Option<u64>,
    ) -> Result<(Version, bool), WriteError> {
        let current = match self.find(kind, id, None) {
            Found::Current(v) => Some(v.version_id),
            _ => None,
        };
        if let Some(wanted) = if_match
            && current != Some(wanted)
        {
            return Err(WriteError::VersionConflict {
                current: current.unwrap_or(0),
            });
        }
        Ok((self.put(kind, id, resource, false), current.is_none()))
    }

    fn delete(&mut self, kind: &str, id: &str, if_match: Option<u64>) -> Result<Version, WriteError> {
        let last = match self.find(kind, id, None) {
            Found::Missing => return Err(WriteError::NotFound),
            Found::Deleted(_) => return Err(WriteError::Gone),
            Found::Current(last) => last,
        };
        if let Some(wanted) = if_match
            && wanted != last.version_id
        {
            return Err(WriteError::VersionConflict {
                current: last.version_id,
            });
        }
        Ok(self.put(kind, id, last.resource(), true))
    }

    fn put(&mut self, kind: &str, id: &str, resource: Value, deleted: bool) -> Version {
        let version_id = self.next_version(kind, id);
        self.file(Record::new((kind, id), resource, version_id, Utc::now()), deleted)
    }
}

/// The store could not do what it was asked (→ 503: try again).
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("cannot open the store {storage}: {why}")]
    Open { storage: String, why: String },
    #[error("the store failed: {0}")]
    Failed(String),
    /// The data a new store was being filled with is bad.
    #[error(transparent)]
    Data(#[from] crate::seed::LoadError),
}

pub(crate) struct Store(Backend);

enum Backend {
    Memory(memory::Memory),
    Sqlite(sql::Sql<crate::sqlite::Sqlite>),
    Postgres(Box<sql::Sql<crate::postgres::Postgres>>),
}

impl Store {
    /// The store `storage` names. A new or emptied (`reset`) store is filled by
    /// `seed`, which hands it records as they are ready and says what it did; one
    /// that holds resources already keeps them, and `seed` is not run (`None`).
    /// If `seed` fails, nothing of it is kept.
    pub(crate) fn open<R>(
        storage: &Storage,
        reset: bool,
        seed: impl FnOnce(&mut dyn FnMut(Vec<Record>)) -> Result<R, crate::seed::LoadError>,
    ) -> Result<(Store, Option<R>), StoreError> {
        Ok(match storage {
            Storage::Memory => {
                let (memory, seeded) = memory::Memory::seeded(seed)?;
                (Store(Backend::Memory(memory)), Some(seeded))
            }
            Storage::Sqlite(path) => {
                let sqlite = crate::sqlite::Sqlite { path: path.clone() };
                let (sqlite, seeded) = sql::Sql::open(sqlite, reset, seed)?;
                (Store(Backend::Sqlite(sqlite)), seeded)
            }
            Storage::Postgres(url) => {
                let postgres = crate::postgres::Postgres { url: url.clone() };
                let (postgres, seeded) = sql::Sql::open(postgres, reset, seed)?;
                (Store(Backend::Postgres(Box::new(postgres))), seeded)
            }
        })
    }

    /// Runs `reads` over one snapshot of the store. A failure of the store while
    /// it ran is its result, whatever `reads` made of the answers it had.
    pub(crate) fn read<T, E: From<StoreError>>(
        &self,
        reads: impl FnOnce(&dyn Snapshot) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.0 {
            Backend::Memory(memory) => memory.read(reads),
            Backend::Sqlite(sqlite) => sqlite.read(reads),
            Backend::Postgres(postgres) => postgres.read(reads),
        }
    }

    /// Runs `writes` as one transaction: no search or other write sees it half
    /// done, and if it fails (or the store does), nothing of it stays — a
    /// transaction Bundle is all or nothing (R4 §3.1.0.11.2).
    pub(crate) fn transaction<T, E: From<StoreError>>(
        &self,
        writes: impl FnOnce(&mut dyn Writer) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.0 {
            Backend::Memory(memory) => memory.transaction(writes),
            Backend::Sqlite(sqlite) => sqlite.transaction(writes),
            Backend::Postgres(postgres) => postgres.transaction(writes),
        }
    }

    pub(crate) fn find(&self, kind: &str, id: &str) -> Result<Found, StoreError> {
        self.read(|s| Ok(s.find(kind, id, None)))
    }

    pub(crate) fn vread(&self, kind: &str, id: &str, version_id: u64) -> Result<Option<Version>, StoreError> {
        self.read(|s| {
            Ok(s.versions(kind, id)
                .into_iter()
                .find(|v| v.version_id == version_id)
                .cloned())
        })
    }

    /// The current version of every resource of `kind`.
    pub(crate) fn all(&self, kind: &str) -> Result<Vec<Value>, StoreError> {
        self.read(|s| Ok(s.every(kind, s.seq()).map(Version::resource).collect()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn observation(id: &str, patient: &str, code: &str) -> Value {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
               "subject": {"reference": format!("Patient/{patient}")}})
    }

    fn ids<'a>(versions: impl IntoIterator<Item = &'a Version>) -> Vec<&'a str> {
        versions.into_iter().map(|v| v.key().1).collect()
    }

    /// A SQLite file of its own, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new() -> TempFile {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let name = format!(
                "ccri-mock-store-{}-{}.db",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            TempFile(std::env::temp_dir().join(name))
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    /// A store filled with `records`, if new.
    fn open(storage: &Storage, reset: bool, records: Vec<Record>) -> Result<Store, StoreError> {
        Store::open(storage, reset, |take| {
            take(records);
            Ok(())
        })
        .map(|(store, _)| store)
    }

    /// Each test runs on every backend.
    fn each_backend(test: impl Fn(&Store)) {
        test(&open(&Storage::Memory, false, Vec::new()).unwrap());
        let file = TempFile::new();
        test(&open(&Storage::Sqlite(file.0.clone()), false, Vec::new()).unwrap());
    }

    fn write(store: &Store, writes: impl FnOnce(&mut dyn Writer)) {
        store
            .transaction(|w| {
                writes(w);
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }

    fn read<T>(store: &Store, reads: impl FnOnce(&dyn Snapshot) -> T) -> T {
        store.read(|s| Ok::<_, StoreError>(reads(s))).unwrap()
    }

    #[test]
    fn the_indexes_find_resources_in_the_order_they_were_created() {
        each_backend(|store| {
            write(store, |w| {
                w.create("Observation", observation("b", "1", "x"));
                w.create("Observation", observation("a", "2", "x"));
                w.create("Observation", observation("c", "1", "y"));
                // An update keeps its place, and a new patient's index finds it there.
                w.update("Observation", "b", observation("b", "2", "x"), None)
                    .unwrap();
            });
            read(store, |s| {
                let now = s.seq();
                assert_eq!(ids(s.every("Observation", now)), ["b", "a", "c"]);
                let both = s.for_patients("Observation", &["2", "1"]);
                assert_eq!(ids(s.resolve("Observation", both, now)), ["b", "a", "c"]);
                let x = s.with_codes("Observation", "code", &["x", "x"]);
                assert_eq!(ids(s.resolve("Observation", x, now)), ["b", "a"]);
                let named = s.with_ids("Observation", &["c", "b", "nope"]);
                assert_eq!(ids(s.resolve("Observation", named, now)), ["b", "c"]);
                // Candidates, checked after: before the update, b is found as it was then.
                let before = s.for_patients("Observation", &["2"]);
                let versions: Vec<_> = s
                    .resolve("Observation", before, now - 1)
                    .map(|v| v.version_id)
                    .collect();
                assert_eq!(versions, [1, 1]);
            });
        });
    }

    #[test]
    fn versions_deletes_and_history_read_alike() {
        each_backend(|store| {
            write(store, |w| {
                w.create("Observation", observation("a", "1", "x"));
                w.update("Observation", "a", observation("a", "1", "y"), Some(1))
                    .unwrap();
                assert_eq!(
                    w.update("Observation", "a", observation("a", "1", "z"), Some(1))
                        .unwrap_err(),
                    WriteError::VersionConflict { current: 2 }
                );
                w.delete("Observation", "a", None).unwrap();
                assert_eq!(w.delete("Observation", "a", None).unwrap_err(), WriteError::Gone);
                assert_eq!(
                    w.delete("Observation", "b", None).unwrap_err(),
                    WriteError::NotFound
                );
            });
            read(store, |s| {
                let all: Vec<_> = s
                    .versions("Observation", "a")
                    .iter()
                    .map(|v| (v.version_id, v.deleted))
                    .collect();
                assert_eq!(all, [(1, false), (2, false), (3, true)]);
                assert!(matches!(s.find("Observation", "a", None), Found::Deleted(_)));
                let seq = s.seq();
                assert!(
                    matches!(s.find("Observation", "a", Some(seq - 1)), Found::Current(v) if v.version_id == 2)
                );
                assert!(s.at("Observation", "a", seq).is_none());
                assert_eq!(s.every("Observation", seq).count(), 0);
                let newest_first: Vec<_> = s
                    .changes(Some("Observation"), None, seq)
                    .iter()
                    .map(|v| v.version_id)
                    .collect();
                assert_eq!(newest_first, [3, 2, 1]);
                assert_eq!(s.changes(Some("Patient"), None, seq).len(), 0);
                let later = Some(s.versions("Observation", "a")[1].last_updated);
                assert_eq!(s.changes(None, later, seq).len(), 2);
            });
            let updated = store.vread("Observation", "a", 2).unwrap().unwrap();
            assert_eq!(updated.resource()["meta"]["versionId"], "2");
            assert_eq!(updated.resource()["code"]["coding"][0]["code"], "y");
        });
    }

    #[test]
    fn the_same_resource_twice_in_the_data_is_two_versions() {
        let now = Utc::now();
        let records = || {
            [observation("a", "1", "x"), observation("a", "2", "y")]
                .map(|resource| Record::new(("Observation", "a"), resource, 1, now))
                .into()
        };
        let file = TempFile::new();
        for storage in [Storage::Memory, Storage::Sqlite(file.0.clone())] {
            let store = open(&storage, false, records()).unwrap();
            read(&store, |s| {
                let versions = s.versions("Observation", "a");
                assert_eq!(versions.iter().map(|v| v.version_id).collect::<Vec<_>>(), [1, 2]);
                assert_eq!(versions[1].resource()["meta"]["versionId"], "2");
                assert_eq!(versions[1].resource()["subject"]["reference"], "Patient/2");
            });
        }
    }

    #[test]
    fn a_rolled_back_create_leaves_nothing_and_the_id_can_be_created_again() {
        each_backend(|store| {
            store
                .transaction(|w| {
                    w.create("Observation", observation("a", "1", "x"));
                    Err::<(), _>(StoreError::Failed("on purpose".into()))
                })
                .unwrap_err();
            read(store, |s| {
                let seq = s.seq();
                assert!(matches!(s.find("Observation", "a", None), Found::Missing));
                assert_eq!(s.every("Observation", seq).count(), 0);
                let candidates = s.for_patients("Observation", &["1"]);
                assert_eq!(s.resolve("Observation", candidates, seq).count(), 0);
            });
            write(store, |w| {
                w.create("Observation", observation("a", "1", "x"));
            });
            read(store, |s| {
                assert_eq!(ids(s.every("Observation", s.seq())), ["a"]);
                assert_eq!(s.versions("Observation", "a").len(), 1);
            });
        });
    }

    /// A transaction that reads what it wrote, then fails: the numbers it took are
    /// given again, and what it read must not answer for what is written next.
    #[test]
    fn a_rolled_back_version_never_answers_for_the_next_one() {
        each_backend(|store| {
            store
                .transaction(|w| {
                    w.create("Observation", observation("a", "1", "x"));
                    assert!(matches!(w.find("Observation", "a", None), Found::Current(_)));
                    Err::<(), _>(StoreError::Failed("on purpose".into()))
                })
                .unwrap_err();
            write(store, |w| {
                w.create("Observation", observation("b", "2", "y"));
            });
            read(store, |s| {
                assert!(matches!(s.find("Observation", "a", None), Found::Missing));
                let b = s.at("Observation", "b", s.seq()).expect("b is there");
                assert_eq!(b.key(), ("Observation", "b"));
                assert_eq!(b.resource()["subject"]["reference"], "Patient/2");
            });
        });
    }

    #[test]
    fn a_write_that_panics_leaves_nothing_and_the_store_writable() {
        each_backend(|store| {
            let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                write(store, |w| {
                    w.create("Observation", observation("a", "1", "x"));
                    panic!("on purpose");
                })
            }));
            assert!(panicked.is_err());
            write(store, |w| {
                w.create("Observation", observation("b", "1", "x"));
            });
            read(store, |s| assert_eq!(ids(s.every("Observation", s.seq())), ["b"]));
        });
    }

    #[test]
    fn history_since_a_date_past_2262_is_empty() {
        each_backend(|store| {
            write(store, |w| {
                w.create("Observation", observation("a", "1", "x"));
            });
            let far = "2300-01-01T00:00:00Z".parse().unwrap();
            read(store, |s| {
                assert_eq!(s.changes(None, Some(far), s.seq()).len(), 0)
            });
        });
    }

    #[test]
    fn a_sqlite_store_keeps_its_resources_and_is_seeded_only_when_empty() {
        let file = TempFile::new();
        let storage = Storage::Sqlite(file.0.clone());
        let seed = || {
            vec![Record::new(
                ("Observation", "seed"),
                observation("seed", "1", "x"),
                1,
                Utc::now(),
            )]
        };
        let store = open(&storage, false, seed()).unwrap();
        write(&store, |w| {
            w.create("Observation", observation("mine", "1", "x"));
        });
        drop(store);
        let (reopened, seeded) = Store::open(&storage, false, |_| -> Result<(), _> {
            panic!("a store with resources is not seeded")
        })
        .unwrap();
        assert!(seeded.is_none());
        read(&reopened, |s| {
            assert_eq!(ids(s.every("Observation", s.seq())), ["seed", "mine"])
        });
        drop(reopened);
        let reset = open(&storage, true, seed()).unwrap();
        read(&reset, |s| {
            assert_eq!(ids(s.every("Observation", s.seq())), ["seed"])
        });
    }

    #[test]
    fn a_sqlite_store_of_the_first_schema_is_migrated_and_still_read() {
        let file = TempFile::new();
        let storage = Storage::Sqlite(file.0.clone());
        let store = open(
            &storage,
            false,
            vec![Record::new(
                ("Observation", "a"),
                observation("a", "1", "x"),
                1,
                Utc::now(),
            )],
        )
        .unwrap();
        drop(store);
        // What schema 1 made: no index rows beside the resources.
        let connection = rusqlite::Connection::open(&file.0).unwrap();
        connection
            .execute_batch("ALTER TABLE versions DROP COLUMN idx; PRAGMA user_version = 1;")
            .unwrap();
        drop(connection);
        let store = open(&storage, false, Vec::new()).unwrap();
        read(&store, |s| {
            let found = s.resolve(
                "Observation",
                s.with_codes("Observation", "code", &["x"]),
                s.seq(),
            );
            assert_eq!(ids(found), ["a"]);
        });
        write(&store, |w| {
            w.create("Observation", observation("b", "1", "x"));
        });
        read(&store, |s| {
            assert_eq!(ids(s.every("Observation", s.seq())), ["a", "b"])
        });
        drop(store);
        // A file that has the column but still says schema 1 (a start that stopped
        // between the two, before they were one transaction) opens too.
        let connection = rusqlite::Connection::open(&file.0).unwrap();
        connection.execute_batch("PRAGMA user_version = 1;").unwrap();
        drop(connection);
        let store = open(&storage, false, Vec::new()).unwrap();
        read(&store, |s| {
            assert_eq!(ids(s.every("Observation", s.seq())), ["a", "b"])
        });
    }

    /// The file failing under a running store (here: a table gone): the request's
    /// answer is the failure — a 503 — never an empty result, and a failed write
    /// leaves nothing behind.
    #[test]
    fn a_failing_sqlite_store_answers_503_and_keeps_nothing_half_written() {
        let file = TempFile::new();
        let store = open(&Storage::Sqlite(file.0.clone()), false, Vec::new()).unwrap();
        write(&store, |w| {
            w.create("Observation", observation("a", "1", "x"));
        });
        let other = rusqlite::Connection::open(&file.0).unwrap();
        other.execute_batch("DROP TABLE by_code").unwrap();
        let written = store.transaction(|w| {
            w.create("Observation", observation("b", "1", "y"));
            Ok::<_, StoreError>(())
        });
        assert!(matches!(written, Err(StoreError::Failed(_))), "{written:?}");
        other.execute_batch("DROP TABLE by_patient").unwrap();
        let searched = store.read(|s| {
            let candidates = s.for_patients("Observation", &["1"]);
            Ok::<_, StoreError>(s.resolve("Observation", candidates, s.seq()).count())
        });
        let outcome = crate::fhir::outcome::Outcome::from(searched.unwrap_err());
        assert_eq!(outcome.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        // Reads that do not need the lost tables still work, and b was never stored.
        assert!(matches!(
            store.find("Observation", "a").unwrap(),
            Found::Current(_)
        ));
        assert!(matches!(store.find("Observation", "b").unwrap(), Found::Missing));
    }

    #[test]
    fn a_store_that_cannot_be_opened_says_which_and_why() {
        let error = open(
            &Storage::Sqlite("/proc/no/such/dir/x.db".into()),
            false,
            Vec::new(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            error.starts_with("cannot open the store sqlite:/proc/no/such/dir/x.db: "),
            "{error}"
        );
    }
}
