//! The FHIR store as the auth pages' [`PatientDirectory`]: a Patient in one line.

use serde_json::Value;

use super::NHS_NUMBER_SYSTEM;
use super::store::{Found, Store};
use crate::auth::patients::{EncounterRow, PatientDirectory, PatientRow};

impl PatientDirectory for Store {
    fn patients(&self) -> Vec<PatientRow> {
        self.all("Patient").iter().map(patient_row).collect()
    }

    fn patient(&self, id: &str) -> Option<PatientRow> {
        self.read("Patient", id).map(|p| patient_row(&p))
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
        matches!(self.find(resource_type, id), Found::Current(_))
    }
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
