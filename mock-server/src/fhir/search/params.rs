//! The search parameters the mock supports: CCRI's list, per resource type, each
//! with its FHIR type and where its values live in a resource. The
//! CapabilityStatement, the query parser and the matcher all read this one table.

/// How a parameter's values are compared (FHIR R4 §3.1.1.4 "Search parameter types").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParamType {
    Token,
    Date,
    String,
    Reference,
}

impl ParamType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Date => "date",
            Self::String => "string",
            Self::Reference => "reference",
        }
    }
}

/// One search parameter of one resource type.
#[derive(Debug)]
pub(crate) struct Param {
    pub name: &'static str,
    pub param_type: ParamType,
    /// Element paths, `.`-separated; a step may filter an array by a member value,
    /// e.g. `telecom[system=email].value`.
    pub paths: &'static [&'static str],
    /// For references: the types a target may have (empty: any).
    pub targets: &'static [&'static str],
}

const fn p(name: &'static str, param_type: ParamType, paths: &'static [&'static str]) -> Param {
    Param {
        name,
        param_type,
        paths,
        targets: &[],
    }
}

const fn r(name: &'static str, paths: &'static [&'static str], targets: &'static [&'static str]) -> Param {
    Param {
        name,
        param_type: ParamType::Reference,
        paths,
        targets,
    }
}

// Not a glob import: the `String` variant would shadow `std::string::String`.
use ParamType::{Date, Token};

/// Parameters every type has.
pub(crate) const COMMON: &[Param] = &[
    p("_id", Token, &["id"]),
    p("_lastUpdated", Date, &["meta.lastUpdated"]),
];

const IDENTIFIER: Param = p("identifier", Token, &["identifier"]);
const PATIENT_SUBJECT: Param = r("patient", &["subject"], &["Patient"]);
const SUBJECT: Param = r("subject", &["subject"], &[]);
const ADDRESS_POSTALCODE: Param = p("address-postalcode", ParamType::String, &["address.postalCode"]);

/// `(resource type, its own parameters)`, in the order the CapabilityStatement lists them.
pub(crate) const TYPES: &[(&str, &[Param])] = &[
    (
        "Patient",
        &[
            IDENTIFIER,
            p(
                "name",
                ParamType::String,
                &[
                    "name.family",
                    "name.given",
                    "name.prefix",
                    "name.suffix",
                    "name.text",
                ],
            ),
            p("family", ParamType::String, &["name.family"]),
            p("given", ParamType::String, &["name.given"]),
            p("birthdate", Date, &["birthDate"]),
            p("gender", Token, &["gender"]),
            p("email", Token, &["telecom[system=email].value"]),
            p("phone", Token, &["telecom[system=phone].value"]),
            ADDRESS_POSTALCODE,
            r(
                "general-practitioner",
                &["generalPractitioner"],
                &["Practitioner", "Organization", "PractitionerRole"],
            ),
            r("organization", &["managingOrganization"], &["Organization"]),
        ],
    ),
    (
        "Observation",
        &[
            p("category", Token, &["category"]),
            p("code", Token, &["code"]),
            p(
                "date",
                Date,
                &[
                    "effectiveDateTime",
                    "effectivePeriod",
                    "effectiveInstant",
                    "issued",
                ],
            ),
            IDENTIFIER,
            PATIENT_SUBJECT,
            SUBJECT,
        ],
    ),
    (
        "Condition",
        &[
            p("asserted-date", Date, &["recordedDate"]),
            p("category", Token, &["category"]),
            p("clinical-status", Token, &["clinicalStatus"]),
            IDENTIFIER,
            PATIENT_SUBJECT,
        ],
    ),
    (
        "Encounter",
        &[
            p("date", Date, &["period"]),
            IDENTIFIER,
            PATIENT_SUBJECT,
            p("status", Token, &["status"]),
            p("type", Token, &["type"]),
        ],
    ),
    (
        "AllergyIntolerance",
        &[
            p("clinical-status", Token, &["clinicalStatus"]),
            p("date", Date, &["recordedDate"]),
            IDENTIFIER,
            r("patient", &["patient"], &["Patient"]),
            p("verification-status", Token, &["verificationStatus"]),
        ],
    ),
    (
        "MedicationRequest",
        &[
            p("authoredon", Date, &["authoredOn"]),
            p("code", Token, &["medicationCodeableConcept"]),
            IDENTIFIER,
            r("medication", &["medicationReference"], &["Medication"]),
            PATIENT_SUBJECT,
            p("status", Token, &["status"]),
        ],
    ),
    (
        "MedicationStatement",
        &[
            p("effective", Date, &["effectiveDateTime", "effectivePeriod"]),
            IDENTIFIER,
            PATIENT_SUBJECT,
            p("status", Token, &["status"]),
        ],
    ),
    (
        "Immunization",
        &[
            p("date", Date, &["occurrenceDateTime"]),
            IDENTIFIER,
            r("patient", &["patient"], &["Patient"]),
            p("status", Token, &["status"]),
        ],
    ),
    (
        "Procedure",
        &[
            p("date", Date, &["performedDateTime", "performedPeriod"]),
            IDENTIFIER,
            PATIENT_SUBJECT,
            SUBJECT,
        ],
    ),
    (
        "Practitioner",
        &[
            ADDRESS_POSTALCODE,
            IDENTIFIER,
            p(
                "name",
                ParamType::String,
                &["name.family", "name.given", "name.text"],
            ),
        ],
    ),
    (
        "Organization",
        &[
            ADDRESS_POSTALCODE,
            IDENTIFIER,
            p("name", ParamType::String, &["name"]),
        ],
    ),
    (
        "Location",
        &[
            ADDRESS_POSTALCODE,
            IDENTIFIER,
            p("name", ParamType::String, &["name"]),
        ],
    ),
    (
        "PractitionerRole",
        &[
            r("organization", &["organization"], &["Organization"]),
            r("practitioner", &["practitioner"], &["Practitioner"]),
        ],
    ),
    (
        "DocumentReference",
        &[
            PATIENT_SUBJECT,
            p("period", Date, &["context.period"]),
            p("type", Token, &["type"]),
        ],
    ),
    ("Flag", &[PATIENT_SUBJECT]),
    ("Medication", &[p("code", Token, &["code"])]),
];

/// Whether the mock serves this resource type.
pub(crate) fn is_supported(kind: &str) -> bool {
    TYPES.iter().any(|(name, _)| *name == kind)
}

/// The parameter `name` of resource type `kind`.
pub(crate) fn find(kind: &str, name: &str) -> Option<&'static Param> {
    COMMON.iter().find(|p| p.name == name).or_else(|| {
        let (_, params) = TYPES.iter().find(|(t, _)| *t == kind)?;
        params.iter().find(|p| p.name == name)
    })
}

/// Every parameter of `kind`, common ones first.
pub(crate) fn all(kind: &str) -> impl Iterator<Item = &'static Param> {
    let own = TYPES
        .iter()
        .find(|(t, _)| *t == kind)
        .map(|(_, params)| *params)
        .unwrap_or_default();
    COMMON.iter().chain(own.iter())
}
