//! The patients and encounters the auth pages show (patient picker, consent,
//! launcher), read through a narrow interface: the auth side never depends on how
//! the FHIR side stores its data, and the FHIR store is one implementation.

/// A patient in one line.
#[derive(Clone, Debug)]
pub(crate) struct PatientRow {
    pub id: String,
    pub name: String,
    pub nhs_number: String,
    pub birth_date: String,
    pub gender: String,
}

/// An encounter in one line.
#[derive(Clone, Debug)]
pub(crate) struct EncounterRow {
    pub id: String,
    /// The id of its patient.
    pub patient: String,
    pub start: String,
    pub class: String,
}

pub(crate) trait PatientDirectory: Send + Sync {
    /// Every patient, in the directory's own order.
    fn patients(&self) -> Vec<PatientRow>;
    /// One patient, if it exists.
    fn patient(&self, id: &str) -> Option<PatientRow>;
    /// The encounters of `patient` (of everyone if `None`), latest first.
    fn encounters(&self, patient: Option<&str>) -> Vec<EncounterRow>;
    /// Whether the resource `resource_type/id` exists (a `fhirContext` item, say).
    fn exists(&self, resource_type: &str, id: &str) -> bool;
}
