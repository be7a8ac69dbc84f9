//! The store in memory: gone when the process ends, and the fastest.
//!
//! A type's resources are kept in slot order, so the indexes hold slot numbers and
//! a search turns its candidates into versions without looking an id up, walking
//! memory in address order. Slots are never reused by another id.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use smallvec::SmallVec;

use super::{Candidates, Found, Record, Snapshot, StoreError, Version, Versions, Writer};
use crate::fhir::index::Text;
use crate::seed::LoadError;

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

#[derive(Default)]
pub(super) struct Inner {
    seq: u64,
    types: HashMap<String, TypeData>,
}

pub(super) struct Memory {
    inner: RwLock<Inner>,
}

impl Memory {
    /// A store filled by `seed`.
    pub(super) fn seeded<R>(
        seed: impl FnOnce(&mut dyn FnMut(Vec<Record>)) -> Result<R, LoadError>,
    ) -> Result<(Memory, R), LoadError> {
        let mut inner = Inner::default();
        let seeded = seed(&mut |records| inner.file_all(records))?;
        Ok((
            Memory {
                inner: RwLock::new(inner),
            },
            seeded,
        ))
    }

    fn read_lock(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn read<T, E: From<StoreError>>(
        &self,
        reads: impl FnOnce(&dyn Snapshot) -> Result<T, E>,
    ) -> Result<T, E> {
        reads(&*self.read_lock())
    }

    /// Runs `writes` under the write lock; if it fails (or panics), every version
    /// it stored is removed again.
    pub(super) fn transaction<T, E: From<StoreError>>(
        &self,
        writes: impl FnOnce(&mut dyn Writer) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut inner = self.write();
        let start = inner.seq;
        match std::panic::catch_unwind(AssertUnwindSafe(|| writes(&mut *inner))) {
            Ok(result) => {
                if result.is_err() {
                    inner.roll_back(start);
                }
                result
            }
            Err(panic) => {
                inner.roll_back(start);
                std::panic::resume_unwind(panic);
            }
        }
    }
}

impl Inner {
    fn versions(&self, kind: &str, id: &str) -> &[Version] {
        self.types.get(kind).map(|t| t.versions(id)).unwrap_or_default()
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
}

impl Snapshot for Inner {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn find(&self, kind: &str, id: &str, snapshot: Option<u64>) -> Found {
        let limit = snapshot.unwrap_or(u64::MAX);
        match self.versions(kind, id).iter().rev().find(|v| v.seq <= limit) {
            Some(v) if v.deleted => Found::Deleted(v.clone()),
            Some(v) => Found::Current(v.clone()),
            None => Found::Missing,
        }
    }

    fn versions(&self, kind: &str, id: &str) -> Vec<&Version> {
        Inner::versions(self, kind, id).iter().collect()
    }

    fn every<'a>(&'a self, kind: &str, snapshot: u64) -> Versions<'a> {
        Box::new(
            self.types
                .get(kind)
                .into_iter()
                .flat_map(|data| &data.resources)
                .filter_map(move |versions| at(versions, snapshot)),
        )
    }

    fn at(&self, kind: &str, id: &str, snapshot: u64) -> Option<&Version> {
        at(Inner::versions(self, kind, id), snapshot)
    }

    fn for_patients(&self, kind: &str, patients: &[&str]) -> Candidates {
        let Some(data) = self.types.get(kind) else {
            return Candidates::default();
        };
        let mut patients = patients
            .iter()
            .filter_map(|&patient| data.by_patient.get(patient));
        match (patients.next(), patients.next()) {
            (None, _) => Candidates::default(),
            // The common case, sorted already.
            (Some(one), None) => Candidates(one.iter().map(|&slot| u64::from(slot)).collect()),
            (Some(one), Some(two)) => Candidates::of(
                one.iter()
                    .chain(two)
                    .chain(patients.flatten())
                    .map(|&slot| u64::from(slot))
                    .collect(),
            ),
        }
    }

    fn with_codes(&self, kind: &str, param: &str, codes: &[&str]) -> Candidates {
        let Some(by_code) = self.types.get(kind).and_then(|t| t.by_code.get(param)) else {
            return Candidates::default();
        };
        Candidates::of(
            codes
                .iter()
                .filter_map(|&code| by_code.get(code))
                .flatten()
                .map(|&slot| u64::from(slot))
                .collect(),
        )
    }

    fn with_ids(&self, kind: &str, ids: &[&str]) -> Candidates {
        let Some(data) = self.types.get(kind) else {
            return Candidates::default();
        };
        Candidates::of(
            ids.iter()
                .filter_map(|&id| data.slots.get(id))
                .map(|&slot| u64::from(slot))
                .collect(),
        )
    }

    fn resolve<'a>(&'a self, kind: &str, candidates: Candidates, snapshot: u64) -> Versions<'a> {
        let resources = self
            .types
            .get(kind)
            .map(|t| t.resources.as_slice())
            .unwrap_or_default();
        Box::new(
            candidates
                .0
                .into_iter()
                .filter_map(move |slot| at(resources.get(usize::try_from(slot).ok()?)?, snapshot)),
        )
    }

    fn changes(&self, kind: Option<&str>, since: Option<DateTime<Utc>>, snapshot: u64) -> Vec<&Version> {
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
}

impl Writer for Inner {
    /// Stores `record` as the next version of its resource, and indexes it by
    /// patient and code.
    fn file(&mut self, record: Record, deleted: bool) -> Version {
        self.seq += 1;
        let data = self.types.entry(record.kind.to_string()).or_default();
        // A slot is 4 bytes in every index entry; 2^32 resources of one type would
        // need hundreds of gigabytes before this could fail.
        let next = Slot::try_from(data.resources.len()).expect("fewer than 2^32 resources of a type");
        let slot = *data.slots.entry(record.id).or_insert(next);
        if slot == next {
            data.resources.push(SmallVec::new());
        }
        let versions = &mut data.resources[slot as usize];
        let index = &record.index;
        for patient in index
            .patients()
            .iter()
            .copied()
            .chain(index.referenced_patients())
        {
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
        let version = Version::of(record, self.seq, deleted);
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
