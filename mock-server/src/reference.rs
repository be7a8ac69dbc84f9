//! A literal FHIR reference, `Type/id` (FHIR R4 §2.3.0 "Literal references"): who a
//! user is (`fhir_user`, the `fhirUser` claim) and what a resource points at. Both
//! the auth side and the FHIR side read references, so they live here, beside
//! neither.

use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FhirReference {
    resource_type: String,
    id: String,
}

impl FhirReference {
    pub(crate) fn new(resource_type: &str, id: &str) -> Self {
        FhirReference {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
        }
    }

    /// `(type, id)`.
    pub(crate) fn parts(&self) -> (&str, &str) {
        (&self.resource_type, &self.id)
    }

    /// The id, when this is a `Patient`.
    pub(crate) fn patient_id(&self) -> Option<&str> {
        (self.resource_type == "Patient").then_some(self.id.as_str())
    }

    pub(crate) fn is_practitioner(&self) -> bool {
        self.resource_type == "Practitioner"
    }

    /// This reference as an absolute URL under the FHIR base `base` (the
    /// `fhirUser` claim).
    pub(crate) fn under(&self, base: &str) -> String {
        format!("{base}/{self}")
    }
}

/// `(type, id)` of a relative, absolute or versioned reference: `Patient/1`,
/// `http://x/fhir/Patient/1` and `Patient/1/_history/2` all give `("Patient", "1")`.
/// A contained (`#x`) or `urn:` reference gives `None`. Borrowed, for the FHIR
/// side's hot paths.
pub(crate) fn parts(reference: &str) -> Option<(&str, &str)> {
    let reference = reference.split("/_history/").next()?;
    let mut parts = reference.rsplitn(3, '/');
    let id = parts.next()?;
    let resource_type = parts.next()?;
    (!id.is_empty()
        && resource_type
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase()))
    .then_some((resource_type, id))
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a FHIR reference of the form Type/id (Patient/1)")]
pub struct ReferenceError(String);

impl FromStr for FhirReference {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, ReferenceError> {
        parts(text)
            .map(|(resource_type, id)| FhirReference::new(resource_type, id))
            .ok_or_else(|| ReferenceError(text.to_owned()))
    }
}

impl fmt::Display for FhirReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.resource_type, self.id)
    }
}

/// As its text, `Patient/1`: in config files and token claims.
impl Serialize for FhirReference {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FhirReference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_absolute_and_versioned_references() {
        assert_eq!(parts("Patient/1"), Some(("Patient", "1")));
        assert_eq!(
            parts("http://h/fhir/R4/Patient/1/_history/3"),
            Some(("Patient", "1"))
        );
        assert_eq!(parts("urn:uuid:abc"), None);
        assert_eq!(parts("#contained"), None);
        let user: FhirReference = "Practitioner/2".parse().unwrap();
        assert!(user.is_practitioner());
        assert_eq!(
            (user.patient_id(), user.to_string().as_str()),
            (None, "Practitioner/2")
        );
        assert!("bernie".parse::<FhirReference>().is_err());
    }
}
