//! Is a resource valid FHIR R4 JSON? Checked against HL7's R4 JSON schema
//! (`definitions/r4.schema.json`, reduced by `make definitions`) before anything
//! is stored: unknown or misspelt elements, wrong types, codes outside their
//! required value set, malformed dates and ids. What the schema cannot say
//! (cardinality of arrays, invariants, terminology beyond required codes) is not
//! checked, as with most FHIR servers' default validation.
//!
//! The schema is compiled once, on first use, into one validator per definition,
//! so a resource is checked against its own type's definition, not against the
//! schema's root `oneOf` of all 147 types (slower, and its errors say only that
//! no branch matched).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Registry, Validator};
use serde_json::Value;

use super::definitions::R4;

/// Where the schema is registered; each type's validator refers into it.
const SCHEMA_URI: &str = "http://hl7.org/fhir/json-schema/4.0";

static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../definitions/r4.schema.json"))
        .expect("the committed schema is JSON")
});

/// The schema, indexed once for every type's validator to resolve against.
static REGISTRY: LazyLock<Registry<'static>> = LazyLock::new(|| {
    Registry::new()
        .add(SCHEMA_URI, &*SCHEMA)
        .and_then(|builder| builder.prepare())
        .expect("the committed schema is a valid schema")
});

/// Each type's validator, compiled on its first use (tens of milliseconds each,
/// so not all 147 at start).
static VALIDATORS: LazyLock<Mutex<HashMap<String, Option<Arc<Validator>>>>> = LazyLock::new(Mutex::default);

fn validator(kind: &str) -> Option<Arc<Validator>> {
    let mut validators = VALIDATORS.lock().unwrap_or_else(|p| p.into_inner());
    validators
        .entry(kind.to_owned())
        .or_insert_with(|| {
            SCHEMA["definitions"].get(kind)?;
            let schema = serde_json::json!({"$ref": format!("{SCHEMA_URI}#/definitions/{kind}")});
            jsonschema::options()
                .with_draft(Draft::Draft6)
                .with_registry(&REGISTRY)
                .build(&schema)
                .ok()
                .map(Arc::new)
        })
        .clone()
}

/// How many problems one answer lists.
const SHOWN: usize = 5;

/// Why a resource is not valid: the problems found, each with where it is.
#[derive(Debug)]
pub(crate) struct Invalid {
    /// `(JSON pointer into the resource, what is wrong)`, at most [`SHOWN`].
    pub problems: Vec<(String, String)>,
    /// How many more there were.
    pub more: usize,
}

impl Invalid {
    /// Where the first problem is, as a path under `root` (`Patient.name[0].given`).
    pub(crate) fn path(&self, root: &str) -> String {
        self.problems
            .first()
            .map_or_else(|| root.to_owned(), |(pointer, _)| path(root, pointer))
    }

    /// The first problem, and how many others there are.
    pub(crate) fn summary(&self) -> String {
        let first = self.problems.first().map_or("", |(_, message)| message.as_str());
        match self.problems.len().saturating_sub(1) + self.more {
            0 => first.to_owned(),
            others => format!("{first} (and {others} more problems)"),
        }
    }

    /// Every problem shown, each with its path under `root`.
    pub(crate) fn describe(&self, root: &str) -> String {
        let mut text = self
            .problems
            .iter()
            .map(|(pointer, message)| format!("{}: {message}", path(root, pointer)))
            .collect::<Vec<_>>()
            .join("; ");
        if self.more > 0 {
            text.push_str(&format!(" (and {} more)", self.more));
        }
        text
    }
}

/// A JSON pointer (`/name/0/given`) as a FHIRPath-like path (`Patient.name[0].given`).
pub(crate) fn path(root: &str, pointer: &str) -> String {
    let mut out = root.to_owned();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.bytes().all(|b| b.is_ascii_digit()) && !segment.is_empty() {
            out.push_str(&format!("[{segment}]"));
        } else {
            out.push('.');
            out.push_str(&segment);
        }
    }
    out
}

/// Checks `resource` against the schema of its `resourceType`, and each resource
/// inside it (`contained`, a Bundle's entries) against its own.
pub(crate) fn validate(resource: &Value) -> Result<(), Invalid> {
    let mut problems = Vec::new();
    check(resource, "", &mut problems);
    let more = problems.len().saturating_sub(SHOWN);
    problems.truncate(SHOWN);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Invalid { problems, more })
    }
}

/// Adds the problems of the resource at `pointer` to `problems`.
fn check(resource: &Value, pointer: &str, problems: &mut Vec<(String, String)>) {
    let kind = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(validator) = validator(kind) else {
        // The schema lacks one type the definitions serve (SubscriptionStatus):
        // that one is not checked, rather than refused.
        if !R4.is_type(kind) {
            problems.push((
                format!("{pointer}/resourceType"),
                format!("{kind:?} is not a FHIR R4 resource type"),
            ));
        }
        return;
    };
    for error in validator.iter_errors(resource) {
        let mut at = format!("{pointer}{}", error.instance_path().as_str());
        let message = match error.kind() {
            // Point at the element itself, not at the object that holds it.
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                if let [one] = unexpected.as_slice() {
                    at.push('/');
                    at.push_str(one);
                }
                format!("{}: no such element here in FHIR R4", unexpected.join(", "))
            }
            _ => error.to_string(),
        };
        problems.push((at, message));
    }
    nested(resource, pointer, true, problems);
}

/// Checks the resources found inside `value` (not inside those: each checks its own).
fn nested(value: &Value, pointer: &str, root: bool, problems: &mut Vec<(String, String)>) {
    match value {
        Value::Object(members) if !root && members.contains_key("resourceType") => {
            check(value, pointer, problems)
        }
        Value::Object(members) => {
            for (name, member) in members {
                nested(member, &format!("{pointer}/{name}"), false, problems);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                nested(item, &format!("{pointer}/{index}"), false, problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn problems_are_named_by_their_path() {
        assert!(
            validate(&json!({"resourceType": "Patient", "gender": "male", "birthDate": "1970-01-01"}))
                .is_ok()
        );
        let invalid = validate(&json!({
            "resourceType": "Patient",
            "gender": "blue",
            "birthDate": "01/02/1970",
            "name": [{"given": ["Ann"], "nickname": "A"}]
        }))
        .unwrap_err();
        let paths: Vec<String> = invalid.problems.iter().map(|(p, _)| path("Patient", p)).collect();
        for expected in ["Patient.gender", "Patient.birthDate", "Patient.name[0].nickname"] {
            assert!(paths.iter().any(|p| p == expected), "{expected} in {paths:?}");
        }
        assert!(invalid.describe("Patient").contains("nickname: no such element"));
    }

    #[test]
    fn resources_inside_resources_are_checked_against_their_own_type() {
        let invalid = validate(&json!({
            "resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}},
                      {"resource": {"resourceType": "Patient", "gender": "blue"}},
                      {"resource": {"resourceType": "Spaceship"}}]
        }))
        .unwrap_err();
        let paths: Vec<String> = invalid.problems.iter().map(|(p, _)| path("Bundle", p)).collect();
        assert_eq!(
            paths,
            [
                "Bundle.entry[1].resource.gender",
                "Bundle.entry[2].resource.resourceType"
            ]
        );
    }

    #[test]
    fn every_type_the_server_serves_can_be_written() {
        // The schema lacks SubscriptionStatus; the definitions serve it, so it may not be refused.
        for kind in R4.types() {
            let minimal = json!({"resourceType": kind});
            if let Err(invalid) = validate(&minimal) {
                assert!(
                    !invalid.problems.iter().any(|(p, _)| p == "/resourceType"),
                    "{kind}: {}",
                    invalid.describe(kind)
                );
            }
        }
    }

    #[test]
    fn the_seed_data_is_valid() {
        for record in crate::seed::builtin() {
            let resource = record.resource();
            if let Err(invalid) = validate(&resource) {
                panic!(
                    "{}/{}: {}",
                    resource["resourceType"],
                    resource["id"],
                    invalid.describe("$")
                );
            }
        }
    }
}
