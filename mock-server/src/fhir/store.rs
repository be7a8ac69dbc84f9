//! The resources the FHIR API serves, kept in memory with every version.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use serde_json::Value;

#[derive(Default)]
pub struct Store {
    /// type → id → versions, oldest first.
    resources: RwLock<HashMap<String, BTreeMap<String, Vec<Value>>>>,
}

impl Store {
    pub fn with_resources(resources: impl IntoIterator<Item = Value>) -> Self {
        let store = Store::default();
        {
            let mut map = store.resources.write().unwrap_or_else(|p| p.into_inner());
            for resource in resources {
                let (Some(kind), Some(id)) = (
                    resource.get("resourceType").and_then(Value::as_str),
                    resource.get("id").and_then(Value::as_str),
                ) else {
                    continue;
                };
                map.entry(kind.to_owned())
                    .or_default()
                    .entry(id.to_owned())
                    .or_default()
                    .push(resource);
            }
        }
        store
    }

    /// The current version of `kind/id`.
    pub fn read(&self, kind: &str, id: &str) -> Option<Value> {
        let map = self.resources.read().unwrap_or_else(|p| p.into_inner());
        map.get(kind)?.get(id)?.last().cloned()
    }
}

impl Store {
    /// One line per patient, for the patient picker and the launcher.
    pub fn patient_summaries(&self) -> Vec<crate::auth::authorize::PatientRow> {
        let map = self.resources.read().unwrap_or_else(|p| p.into_inner());
        let Some(patients) = map.get("Patient") else {
            return Vec::new();
        };
        patients
            .iter()
            .filter_map(|(id, versions)| Some((id, versions.last()?)))
            .map(|(id, patient)| {
                let text = |pointer: &str| {
                    patient
                        .pointer(pointer)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let given = text("/name/0/given/0");
                let nhs_number = patient
                    .get("identifier")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|i| i.get("system").and_then(Value::as_str) == Some(crate::fhir::NHS_NUMBER_SYSTEM))
                    .and_then(|i| i.get("value").and_then(Value::as_str))
                    .unwrap_or_default()
                    .to_owned();
                crate::auth::authorize::PatientRow {
                    id: id.clone(),
                    name: format!("{} {}", given, text("/name/0/family")).trim().to_owned(),
                    nhs_number,
                    birth_date: text("/birthDate"),
                    gender: text("/gender"),
                }
            })
            .collect()
    }
}

impl Store {
    /// The current version of every resource of `kind`, by id.
    pub fn all(&self, kind: &str) -> Vec<Value> {
        let map = self.resources.read().unwrap_or_else(|p| p.into_inner());
        map.get(kind)
            .map(|r| r.values().filter_map(|v| v.last().cloned()).collect())
            .unwrap_or_default()
    }
}
