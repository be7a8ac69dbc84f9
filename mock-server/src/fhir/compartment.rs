//! Which resources a token may see or change. Every FHIR handler asks here, with the
//! verified [`AccessContext`], before it returns or writes anything.
//!
//! - `system/` and `user/` scopes open a whole resource type.
//! - `patient/` scopes open only the compartment of the patient in context: the
//!   Patient itself and resources whose `subject` or `patient` is that patient.
//!   Nothing else is visible through them, not even shared resources such as a
//!   Practitioner: the rule is simple enough to check and never leaks a neighbour.
//! - Granular v2 scopes (`patient/Observation.rs?category=…laboratory`) further
//!   narrow to resources matching their constraints, evaluated with the search
//!   matcher. A constraint the mock cannot evaluate matches nothing (fail closed).

use serde_json::Value;
use smart_protocol::{Access, Context, Interaction};

use super::outcome::Outcome;
use super::search::{Criterion, matching::reference_parts, parse_criterion};
use crate::auth::verify::AccessContext;

/// What a permitted request may see or touch.
#[derive(Debug)]
pub struct Visibility {
    /// Only the compartment of this patient.
    pub compartment: Option<String>,
    /// Only resources matching one of these criteria sets (granular scopes).
    pub filters: Option<Vec<Vec<Criterion>>>,
}

impl Visibility {
    pub fn allows(&self, resource: &Value) -> bool {
        self.compartment
            .as_deref()
            .is_none_or(|patient| in_compartment(resource, patient))
            && self
                .filters
                .as_ref()
                .is_none_or(|sets| sets.iter().any(|set| set.iter().all(|c| c.matches(resource))))
    }
}

/// Decides whether `interaction` on `kind` is allowed at all, and over what.
/// `search_params` lets a granular scope be satisfied by the search itself.
pub fn visibility(
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
        let compartment = match context {
            Context::Patient => Some(access.patient.clone().ok_or_else(|| {
                Outcome::forbidden("patient/ scopes need a patient in context: ask for launch/patient")
            })?),
            _ => None,
        };
        return Ok(Visibility { compartment, filters });
    }
    let needed = interaction.permission();
    Err(Outcome::forbidden(format!(
        "insufficient scope: {interaction:?} on {kind} needs patient/{kind}.{needed}, user/{kind}.{needed} \
         or system/{kind}.{needed} (granted: {})",
        access.scopes
    )))
}

/// The patient whose compartment `resource` is in, if any.
pub fn patient_of(resource: &Value) -> Option<String> {
    if resource.get("resourceType").and_then(Value::as_str) == Some("Patient") {
        return resource.get("id").and_then(Value::as_str).map(str::to_owned);
    }
    ["subject", "patient"].iter().find_map(|field| {
        let reference = resource.get(*field)?.get("reference")?.as_str()?;
        match reference_parts(reference)? {
            ("Patient", id) => Some(id.to_owned()),
            _ => None,
        }
    })
}

pub fn in_compartment(resource: &Value, patient: &str) -> bool {
    patient_of(resource).as_deref() == Some(patient)
}
