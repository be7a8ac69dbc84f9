//! The FHIR store as the auth pages' [`PatientDirectory`]: a Patient in one line.

use serde_json::Value;

use super::NHS_NUMBER_SYSTEM;
use super::store::{Found, Store, StoreError};
use crate::auth::patients::{EncounterRow, PatientDirectory, PatientRow};

impl PatientDirectory for Store {
    fn patients(&self) -> Vec<PatientRow> {
        self.all("Patient")
            .unwrap_or_else(unavailable)
            .iter()
            .map(patient_row)
            .collect()
    }

    fn patient(&self, id: &str) -> Option<PatientRow> {
        match self.find("Patient", id).unwrap_or_else(unavailable) {
            Found::Current(patient) => Some(patient_row(&patient.resource())),
            _ => None,
        }
    }

    fn encounters(&self, patient: Option<&str>) -> Vec<EncounterRow> {
        let text = |encounter: &Value, pointer: &str| {
            encounter
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let mut rows: Vec<EncounterRow> = self
            .all("Encounter")
            .unwrap_or_else(unavailable)
            .iter()
            .map(|encounter| EncounterRow {
                id: text(encounter, "/id"),
                patient: text(encounter, "/subject/reference")
                    .strip_prefix("Patient/")
                    .unwrap_or_default()
                    .to_owned(),
                start: text(encounter, "/period/start"),
                class: text(encounter, "/class/display"),
            })
            .filter(|row| patient.is_none_or(|p| row.patient == p))
            .collect();
        // ISO 8601 dates of one form sort as text.
        rows.sort_by(|a, b| b.start.cmp(&a.start));
        rows
    }

    fn exists(&self, resource_type: &str, id: &str) -> bool {
        matches!(
            self.find(resource_type, id).unwrap_or_else(unavailable),
            Found::Current(_)
        )
    }
}

/// What the pages show when the store fails: nothing (the failure is logged). The
/// pages' own forms then refuse the patient they cannot find.
fn unavailable<T: Default>(error: StoreError) -> T {
    tracing::error!(%error, "the patient pages could not read the store");
    T::default()
}

fn patient_row(patient: &Value) -> PatientRow {
    let text = |pointer: &str| {
        patient
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let nhs_number = patient
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|i| i.get("system").and_then(Value::as_str) == Some(NHS_NUMBER_SYSTEM))
        .and_then(|i| i.get("value").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned();
    PatientRow {
        id: text("/id"),
        name: format!("{} {}", text("/name/0/given/0"), text("/name/0/family"))
            .trim()
            .to_owned(),
        nhs_number,
        birth_date: text("/birthDate"),
        gender: text("/gender"),
    }
}
