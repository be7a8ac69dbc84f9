//! The patients the auth pages show (patient picker, consent, launcher), read
//! through a narrow interface: the auth side never depends on how the FHIR side
//! stores its data, and the FHIR store is one implementation.

/// A patient in one line.
#[derive(Clone, Debug)]
pub(crate) struct PatientRow {
    pub id: String,
    pub name: String,
    pub nhs_number: String,
    pub birth_date: String,
    pub gender: String,
}

pub(crate) trait PatientDirectory: Send + Sync {
    /// Every patient, in the directory's own order.
    fn patients(&self) -> Vec<PatientRow>;
    /// One patient, if it exists.
    fn patient(&self, id: &str) -> Option<PatientRow>;
}
