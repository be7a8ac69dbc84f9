//! Which resources a token may see or change. Every FHIR handler asks here, with the
//! verified [`AccessContext`], before it returns or writes anything.
//!
//! - `system/` scopes open a whole resource type.
//! - `user/` scopes open what the user may see (SMART App Launch 2.2 §Scopes): a
//!   patient user their own compartment (and those of the people configured for
//!   them), a practitioner every patient unless the configuration lists theirs.
//! - `patient/` scopes open only the compartment of the patient in context, as
//!   FHIR's Patient CompartmentDefinition draws it: the Patient itself, and
//!   resources that name the patient in one of their type's compartment parameters
//!   (an Observation's `subject` or `performer`, an Encounter's `subject`, …).
//!   Nothing else is visible through them, not even shared resources such as a
//!   Practitioner: the rule is simple enough to check and never leaks a neighbour.
//! - A write limited to some compartments must be inside them entirely: every
//!   reference to a Patient anywhere in it must name one of those patients, so a
//!   record cannot be planted in a neighbour's chart through a second field.
//! - Granular v2 scopes (`patient/Observation.rs?category=…laboratory`) further
//!   narrow to resources matching their constraints, evaluated over the search
//!   index. A constraint the mock cannot evaluate matches nothing (fail closed).

use std::collections::BTreeSet;

use serde_json::Value;
use smart_protocol::{Access, Context, Interaction};

use super::index::Index;
use super::outcome::Outcome;
use super::search::{Criterion, parse_criterion};
use super::store::Version;
use crate::auth::verify::AccessContext;
use crate::config::Reach;
use crate::lint::Lint;
use crate::reference;

/// What a permitted request may see or touch.
#[derive(Debug)]
pub(crate) struct Visibility {
    /// Only the compartments of these patients; `None`: no compartment limit.
    pub patients: Option<BTreeSet<String>>,
    /// Only resources matching one of these criteria sets (granular scopes).
    pub filters: Option<Vec<Vec<Criterion>>>,
}

impl Visibility {
    /// May the token see `version`?
    pub(crate) fn allows(&self, version: &Version) -> bool {
        let (kind, id) = version.key();
        self.allows_indexed(kind, id, &version.index)
    }

    fn allows_indexed(&self, kind: &str, id: &str, index: &Index) -> bool {
        self.patients
            .as_ref()
            .is_none_or(|patients| index.patients().iter().any(|p| patients.contains(&**p)))
            && self.filters.as_ref().is_none_or(|sets| {
                sets.iter()
                    .any(|set| set.iter().all(|c| c.matches(kind, id, index)))
            })
    }

    /// May the token write `resource`? Visible, and wholly inside its compartments.
    /// The resource is indexed for the check only when the token has limits (the
    /// store indexes it again once `meta` is final).
    pub(crate) fn allows_write(&self, resource: &Value) -> bool {
        if self.patients.is_none() && self.filters.is_none() {
            return true;
        }
        let kind = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let id = resource.get("id").and_then(Value::as_str).unwrap_or_default();
        self.allows_indexed(kind, id, &Index::of(resource))
            && self.patients.as_ref().is_none_or(|patients| {
                let mut named = BTreeSet::new();
                patient_references(resource, &mut named);
                named.iter().all(|p| patients.contains(p))
            })
    }
}

/// Decides whether `interaction` on `kind` is allowed at all, and over what.
/// `search_params` lets a granular scope be satisfied by the search itself.
pub(crate) fn visibility(
    access: &AccessContext,
    interaction: Interaction,
    kind: &str,
    search_params: &[(&str, &str)],
) -> Result<Visibility, Outcome> {
    for context in [Context::System, Context::User, Context::Patient] {
        let filters = match access.scopes.permits(context, interaction, kind, search_params) {
            Access::Denied => continue,
            Access::Full => None,
            Access::Filtered(sets) => Some(
                sets.iter()
                    .filter_map(|set| {
                        set.iter()
                            .map(|(name, value)| parse_criterion(kind, name, value).ok())
                            .collect::<Option<Vec<_>>>()
                    })
                    .collect(),
            ),
        };
        let patients = match context {
            Context::Patient => Some(BTreeSet::from([access.patient.clone().ok_or_else(|| {
                Outcome::forbidden("patient/ scopes need a patient in context: ask for launch/patient")
            })?])),
            Context::User => match &access.reach {
                Reach::Everyone => None,
                Reach::Only(patients) => Some(patients.clone()),
            },
            Context::System => None,
        };
        return Ok(Visibility { patients, filters });
    }
    let needed = interaction.permission();
    Err(Outcome::forbidden(format!(
        "insufficient scope: {interaction:?} on {kind} needs patient/{kind}.{needed}, user/{kind}.{needed} \
         or system/{kind}.{needed} (granted: {})",
        access.scopes
    ))
    .lint(Lint::ScopeRefused))
}

fn patient_id(reference: &Value) -> Option<String> {
    match reference::parts(reference.get("reference")?.as_str()?)? {
        ("Patient", id) => Some(id.to_owned()),
        _ => None,
    }
}

/// Every patient `value` refers to, at any depth (and a Patient's own id).
fn patient_references(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(members) => {
            if members.get("resourceType").and_then(Value::as_str) == Some("Patient")
                && let Some(id) = members.get("id").and_then(Value::as_str)
            {
                found.insert(id.to_owned());
            }
            found.extend(patient_id(value));
            members.values().for_each(|v| patient_references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| patient_references(v, found)),
        _ => {}
    }
}
