//! A patient in one line, for the pages that list patients (picker, launcher).

use serde_json::Value;

use super::NHS_NUMBER_SYSTEM;

pub struct PatientRow {
    pub id: String,
    pub name: String,
    pub nhs_number: String,
    pub birth_date: String,
    pub gender: String,
}

pub fn patient_row(patient: &Value) -> PatientRow {
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
