//! The resources the FHIR API serves, in memory, with every version.
//!
//! Each write takes the next number of one store-wide sequence. A search remembers
//! the sequence number it ran at (its snapshot) and its later pages read each
//! resource as it was then, so paging is stable while others write. Resources are
//! indexed by the patients whose compartments they are in, the one filter nearly every
//! SMART request has, so a patient's search never scans the whole type, and by
//! their token codes.
//!
//! Each resource of a type has a slot, its place in the order the type's resources
//! were first created: the indexes hold slots, not ids, so a search turns its
//! candidates into versions without looking an id up, and finds them in that
//! order (as HAPI's, by creation). Slots are never reused by another id.

use std::collections::{HashMap, HashSet};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use smallvec::SmallVec;

use super::index::{Index, Text};

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
    /// Its search values, extracted once, when written.
    pub index: Index,
}

impl Version {
    /// `(type, id)`.
    pub(crate) fn key(&self) -> (&str, &str) {
        (&self.kind, &self.id)
    }

    /// Its ETag, `W/"3"`.
    pub(crate) fn etag(&self) -> String {
        format!("W/\"{}\"", self.version_id)
    }

    /// The resource, parsed from its text (which the store wrote, so it parses).
    pub(crate) fn resource(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or_default()
    }
}

/// A resource made ready to store: `meta` filled in, indexed and serialised —
/// the costly part of a write, done before the store's lock is taken. Loading
/// `--data` prepares records on every core (`seed::load_dir`); the store only files them.
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

/// A resource's place among those of its type (see the module's doc).
type Slot = u32;

#[derive(Default)]
struct TypeData {
    /// slot → versions, oldest first (none after a rolled-back create). Most
    /// resources have one version, kept in the slot itself: a search walks its
    /// candidates in slot order through memory read ahead of it.
    resources: Vec<SmallVec<[Version; 1]>>,
    /// id → slot.
    slots: HashMap<Text, Slot>,
    /// patient id → slots of resources that were ever in their compartment or
    /// referred to them, ascending: the candidates of a patient's search, checked
    /// exactly after.
    by_patient: HashMap<Text, Vec<Slot>>,
    /// token parameter → code → slots of resources that ever had it, in no order,
    /// perhaps repeated: the candidates of a token search (`code=4548-4`), checked
    /// exactly after. Not `_id`: the slots map answers that.
    by_code: HashMap<&'static str, HashMap<Text, Vec<Slot>>>,
}

impl TypeData {
    fn versions(&self, id: &str) -> &[Version] {
        self.slots
            .get(id)
            .map(|&slot| self.resources[slot as usize].as_slice())
            .unwrap_or_default()
    }
}

/// Resources of one type that an index names — sorted by slot, each once — for a
/// search to check: see [`Inner::resolve`].
#[derive(Debug, Default)]
pub(crate) struct Candidates(Vec<Slot>);

impl Candidates {
    fn of(mut slots: Vec<Slot>) -> Candidates {
        slots.sort_unstable();
        slots.dedup();
        Candidates(slots)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[derive(Default)]
pub(crate) struct Inner {
    seq: u64,
    types: HashMap<String, TypeData>,
}

#[derive(Default)]
pub(crate) struct Store {
    inner: RwLock<Inner>,
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
pub(crate) enum Found {
    Current(Version),
    Deleted(Version),
    Missing,
}

impl Store {
    /// A store holding `records`, prepared beforehand (see [`Record`]).
    pub(crate) fn with_records(records: impl IntoIterator<Item = Record>) -> Self {
        let store = Store::default();
        {
            let mut inner = store.write();
            for record in records {
                let next = inner.next_version(&record.kind, &record.id);
                // The same resource twice in the data: the later is its next version.
                let record = match next == record.version_id {
                    true => record,
                    false => Record::new(
                        (&record.kind, &record.id),
                        record.resource(),
                        next,
                        record.last_updated,
                    ),
                };
                inner.file(record, false);
            }
        }
        store
    }

    pub(crate) fn read_lock(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The current version of `kind/id`, if it exists and is not deleted.
    pub(crate) fn read(&self, kind: &str, id: &str) -> Option<Value> {
        match self.read_lock().find(kind, id, None) {
            Found::Current(version) => Some(version.resource()),
            _ => None,
        }
    }

    pub(crate) fn find(&self, kind: &str, id: &str) -> Found {
        self.read_lock().find(kind, id, None)
    }

    pub(crate) fn vread(&self, kind: &str, id: &str, version_id: u64) -> Option<Version> {
        self.read_lock()
            .versions(kind, id)
            .iter()
            .find(|v| v.version_id == version_id)
            .cloned()
    }

    /// The current version of every resource of `kind`.
    pub(crate) fn all(&self, kind: &str) -> Vec<Value> {
        self.read_lock()
            .every(kind, u64::MAX)
            .map(Version::resource)
            .collect()
    }

    /// Runs `writes` under the write lock, so no search or other write sees it half
    /// done. If it fails, every version it stored is removed again: the store is as
    /// it was (a transaction Bundle is all or nothing, R4 §3.1.0.11.2).
    pub(crate) fn transaction<T, E>(&self, writes: impl FnOnce(&mut Inner) -> Result<T, E>) -> Result<T, E> {
        let mut inner = self.write();
        let start = inner.seq;
        let result = writes(&mut inner);
        if result.is_err() {
            inner.roll_back(start);
        }
        result
    }
}

impl Inner {
    /// The store's sequence number now: a search's snapshot.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Stores a new resource under the id it carries (see [`super::new_id`]).
    pub(crate) fn create(&mut self, kind: &str, resource: Value) -> Version {
        let id = resource["id"].as_str().unwrap_or_default().to_owned();
        self.put(kind, &id, resource, false)
    }

    /// Stores `resource` as the next version of `kind/id` (creating it if absent),
    /// if `if_match` is absent or names the current version. Returns the version and
    /// whether it was created.
    pub(crate) fn update(
        &mut self,
        kind: &str,
        id: &str,
        resource: Value,
        if_match: Option<u64>,
    ) -> Result<(Version, bool), WriteError> {
        let current = self
            .versions(kind, id)
            .last()
            .filter(|v| !v.deleted)
            .map(|v| v.version_id);
        if let Some(wanted) = if_match
            && current != Some(wanted)
        {
            return Err(WriteError::VersionConflict {
                current: current.unwrap_or(0),
            });
        }
        Ok((self.put(kind, id, resource, false), current.is_none()))
    }

    pub(crate) fn delete(
        &mut self,
        kind: &str,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<Version, WriteError> {
        let last = self
            .versions(kind, id)
            .last()
            .cloned()
            .ok_or(WriteError::NotFound)?;
        if last.deleted {
            return Err(WriteError::Gone);
        }
        if let Some(wanted) = if_match
            && wanted != last.version_id
        {
            return Err(WriteError::VersionConflict {
                current: last.version_id,
            });
        }
        Ok(self.put(kind, id, last.resource(), true))
    }

    /// Removes every version stored after `seq`. Entries they added to `by_patient`
    /// stay: it holds candidates, each checked against the store when read.
    fn roll_back(&mut self, seq: u64) {
        for data in self.types.values_mut() {
            for versions in &mut data.resources {
                versions.retain(|v| v.seq <= seq);
            }
        }
        self.seq = seq;
    }

    /// Every version of every resource (of `kind`, when given) stored at or after
    /// `since` and up to `snapshot`, newest first: the type and system `_history`.
    pub(crate) fn changes(
        &self,
        kind: Option<&str>,
        since: Option<DateTime<Utc>>,
        snapshot: u64,
    ) -> Vec<&Version> {
        let mut found: Vec<&Version> = self
            .types
            .iter()
            .filter(|(name, _)| kind.is_none_or(|k| k == name.as_str()))
            .flat_map(|(_, data)| data.resources.iter().flatten())
            .filter(|v| v.seq <= snapshot && since.is_none_or(|since| v.last_updated >= since))
            .collect();
        found.sort_unstable_by_key(|v| std::cmp::Reverse(v.seq));
        found
    }

    /// Every version of `kind/id`, oldest first.
    pub(crate) fn versions(&self, kind: &str, id: &str) -> &[Version] {
        self.types.get(kind).map(|t| t.versions(id)).unwrap_or_default()
    }

    /// The number the next version of `kind/id` gets.
    fn next_version(&self, kind: &str, id: &str) -> u64 {
        self.versions(kind, id).last().map_or(1, |v| v.version_id + 1)
    }

    /// `kind/id` as it was at `snapshot` (now if `None`).
    pub(crate) fn find(&self, kind: &str, id: &str, snapshot: Option<u64>) -> Found {
        let limit = snapshot.unwrap_or(u64::MAX);
        match self.versions(kind, id).iter().rev().find(|v| v.seq <= limit) {
            Some(v) if v.deleted => Found::Deleted(v.clone()),
            Some(v) => Found::Current(v.clone()),
            None => Found::Missing,
        }
    }

    /// Every resource of `kind` as it was at `snapshot`, in slot order.
    pub(crate) fn every<'a>(&'a self, kind: &str, snapshot: u64) -> impl Iterator<Item = &'a Version> + 'a {
        self.types
            .get(kind)
            .into_iter()
            .flat_map(|data| &data.resources)
            .filter_map(move |versions| at(versions, snapshot))
    }

    /// `kind/id` at `snapshot`, unless it did not exist or was deleted then.
    pub(crate) fn at(&self, kind: &str, id: &str, snapshot: u64) -> Option<&Version> {
        at(self.versions(kind, id), snapshot)
    }

    /// The resources of `kind` that were ever in the compartment of one of
    /// `patients` or referred to them.
    pub(crate) fn for_patients<'p>(
        &self,
        kind: &str,
        patients: impl IntoIterator<Item = &'p str>,
    ) -> Candidates {
        let Some(data) = self.types.get(kind) else {
            return Candidates::default();
        };
        let mut patients = patients
            .into_iter()
            .filter_map(|patient| data.by_patient.get(patient));
        match (patients.next(), patients.next()) {
            (None, _) => Candidates::default(),
            // The common case, sorted already.
            (Some(one), None) => Candidates(one.clone()),
            (Some(one), Some(two)) => {
                Candidates::of(one.iter().chain(two).chain(patients.flatten()).copied().collect())
            }
        }
    }

    /// The resources of `kind` whose `param` ever had one of the token `codes`.
    pub(crate) fn with_codes<'c>(
        &self,
        kind: &str,
        param: &str,
        codes: impl IntoIterator<Item = &'c str>,
    ) -> Candidates {
        let Some(by_code) = self.types.get(kind).and_then(|t| t.by_code.get(param)) else {
            return Candidates::default();
        };
        Candidates::of(
            codes
                .into_iter()
                .filter_map(|code| by_code.get(code))
                .flatten()
                .copied()
                .collect(),
        )
    }

    /// The resources of `kind` with one of `ids`.
    pub(crate) fn with_ids<'i>(&self, kind: &str, ids: impl IntoIterator<Item = &'i str>) -> Candidates {
        let Some(data) = self.types.get(kind) else {
            return Candidates::default();
        };
        Candidates::of(
            ids.into_iter()
                .filter_map(|id| data.slots.get(id))
                .copied()
                .collect(),
        )
    }

    /// `candidates` of `kind` as they were at `snapshot`, in slot order, less those
    /// that did not exist or were deleted then.
    pub(crate) fn resolve<'a, 'c>(
        &'a self,
        kind: &str,
        candidates: &'c Candidates,
        snapshot: u64,
    ) -> impl Iterator<Item = &'a Version> + use<'a, 'c> {
        let resources = self
            .types
            .get(kind)
            .map(|t| t.resources.as_slice())
            .unwrap_or_default();
        candidates
            .0
            .iter()
            .filter_map(move |&slot| at(resources.get(slot as usize)?, snapshot))
    }

    fn put(&mut self, kind: &str, id: &str, resource: Value, deleted: bool) -> Version {
        let version_id = self.next_version(kind, id);
        self.file(Record::new((kind, id), resource, version_id, Utc::now()), deleted)
    }

    /// Stores `record` as the next version of its resource, and indexes it by
    /// patient and code.
    fn file(&mut self, record: Record, deleted: bool) -> Version {
        let Record {
            kind,
            id,
            version_id,
            last_updated,
            json,
            index,
        } = record;
        self.seq += 1;
        let data = self.types.entry(kind.to_string()).or_default();
        // A slot is 4 bytes in every index entry; 2^32 resources of one type would
        // need hundreds of gigabytes before this could fail.
        let next = Slot::try_from(data.resources.len()).expect("fewer than 2^32 resources of a type");
        let slot = *data.slots.entry(id).or_insert(next);
        if slot == next {
            data.resources.push(SmallVec::new());
        }
        let versions = &mut data.resources[slot as usize];
        let patients = index
            .patients()
            .iter()
            .copied()
            .chain(index.referenced_patients());
        for patient in patients {
            let slots = data.by_patient.entry(patient).or_default();
            // Mostly the newest slot, at the end.
            if let Err(at) = slots.binary_search(&slot) {
                slots.insert(at, slot);
            }
        }
        // Each code once per resource: the previous version's codes are there already.
        let previous = versions.last().map(|v| v.index.clone());
        let known: HashSet<(&str, &Text)> = previous.iter().flat_map(|p| p.codes()).collect();
        for (param, code) in index.codes() {
            if !known.contains(&(param, code)) {
                data.by_code
                    .entry(param)
                    .or_default()
                    .entry(*code)
                    .or_default()
                    .push(slot);
            }
        }
        let version = Version {
            seq: self.seq,
            version_id,
            deleted,
            last_updated,
            kind,
            id,
            json,
            index,
        };
        versions.push(version.clone());
        version
    }
}

/// The version of `versions` at `snapshot`, unless the resource did not exist or
/// was deleted then.
fn at(versions: &[Version], snapshot: u64) -> Option<&Version> {
    versions
        .iter()
        .rev()
        .find(|v| v.seq <= snapshot)
        .filter(|v| !v.deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation(id: &str, patient: &str, code: &str) -> Value {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
               "subject": {"reference": format!("Patient/{patient}")}})
    }

    fn ids<'a>(versions: impl Iterator<Item = &'a Version>) -> Vec<&'a str> {
        versions.map(|v| v.key().1).collect()
    }

    #[test]
    fn the_indexes_find_resources_in_the_order_they_were_created() {
        let store = Store::default();
        let mut inner = store.write();
        inner.create("Observation", observation("b", "1", "x"));
        inner.create("Observation", observation("a", "2", "x"));
        inner.create("Observation", observation("c", "1", "y"));
        // An update keeps its place, and a new patient's index finds it there.
        inner
            .update("Observation", "b", observation("b", "2", "x"), None)
            .unwrap();
        let now = inner.seq();
        assert_eq!(ids(inner.every("Observation", now)), ["b", "a", "c"]);
        let both = inner.for_patients("Observation", ["2", "1"]);
        assert_eq!(ids(inner.resolve("Observation", &both, now)), ["b", "a", "c"]);
        let x = inner.with_codes("Observation", "code", ["x", "x"]);
        assert_eq!(ids(inner.resolve("Observation", &x, now)), ["b", "a"]);
        let named = inner.with_ids("Observation", ["c", "b", "nope"]);
        assert_eq!(ids(inner.resolve("Observation", &named, now)), ["b", "c"]);
        // Candidates, checked after: before the update, b is found as it was then.
        let before = inner.for_patients("Observation", ["2"]);
        let versions: Vec<_> = inner
            .resolve("Observation", &before, now - 1)
            .map(|v| v.version_id)
            .collect();
        assert_eq!(versions, [1, 1]);
    }

    #[test]
    fn the_same_resource_twice_in_the_data_is_two_versions() {
        let now = Utc::now();
        let records = [observation("a", "1", "x"), observation("a", "2", "y")]
            .map(|resource| Record::new(("Observation", "a"), resource, 1, now));
        let store = Store::with_records(records);
        let inner = store.read_lock();
        let versions = inner.versions("Observation", "a");
        assert_eq!(versions.iter().map(|v| v.version_id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(versions[1].resource()["meta"]["versionId"], "2");
        assert_eq!(versions[1].resource()["subject"]["reference"], "Patient/2");
    }

    #[test]
    fn a_rolled_back_create_leaves_nothing_and_the_id_can_be_created_again() {
        let store = Store::default();
        store
            .transaction(|inner| {
                inner.create("Observation", observation("a", "1", "x"));
                Err::<(), ()>(())
            })
            .unwrap_err();
        let seq = store.read_lock().seq();
        assert!(matches!(store.find("Observation", "a"), Found::Missing));
        assert_eq!(store.read_lock().every("Observation", seq).count(), 0);
        let candidates = store.read_lock().for_patients("Observation", ["1"]);
        assert_eq!(
            store.read_lock().resolve("Observation", &candidates, seq).count(),
            0
        );
        store.write().create("Observation", observation("a", "1", "x"));
        let inner = store.read_lock();
        assert_eq!(ids(inner.every("Observation", inner.seq())), ["a"]);
        assert_eq!(inner.versions("Observation", "a").len(), 1);
    }
}
