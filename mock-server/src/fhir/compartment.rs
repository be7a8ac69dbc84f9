//! Which resources a token may see. The FHIR side asks here, with the verified
//! [`AccessContext`], before it returns anything.
//!
//! `system/` and `user/` scopes open a whole resource type; `patient/` scopes open
//! only the compartment of the patient in context: the Patient itself and resources
//! whose `subject` or `patient` points at them.

use serde_json::Value;
use smart_protocol::{Access, Context, Interaction};

use super::outcome::Outcome;
use crate::auth::verify::AccessContext;

/// What a permitted request may see.
pub enum Visibility {
    /// Every resource of the type.
    All,
    /// Only the compartment of this patient.
    Compartment(String),
}

/// Decides whether `interaction` on `kind` is allowed at all, and over what.
pub fn visibility(
    access: &AccessContext,
    interaction: Interaction,
    kind: &str,
) -> Result<Visibility, Outcome> {
    for context in [Context::System, Context::User, Context::Patient] {
        match access.scopes.permits(context, interaction, kind, &[]) {
            Access::Denied => continue,
            // Granular constraints would need per-resource search matching; until
            // that exists a constrained grant is refused rather than widened.
            Access::Filtered(_) => {
                return Err(Outcome::forbidden(format!(
                    "granular {}/{kind} scopes are not enforced by this mock yet; ask for an unconstrained scope",
                    context.as_str()
                )));
            }
            Access::Full if context == Context::Patient => {
                return match &access.patient {
                    Some(patient) => Ok(Visibility::Compartment(patient.clone())),
                    None => Err(Outcome::forbidden(
                        "patient/ scopes need a patient in context (launch/patient)",
                    )),
                };
            }
            Access::Full => return Ok(Visibility::All),
        }
    }
    let needed = interaction.permission();
    Err(Outcome::forbidden(format!(
        "insufficient scope: {interaction:?} on {kind} needs one of patient/{kind}.{needed}, user/{kind}.{needed} or system/{kind}.{needed}"
    )))
}

/// Whether `resource` belongs to the compartment of `patient`.
pub fn in_compartment(resource: &Value, patient: &str) -> bool {
    let reference = format!("Patient/{patient}");
    match resource.get("resourceType").and_then(Value::as_str) {
        Some("Patient") => resource.get("id").and_then(Value::as_str) == Some(patient),
        _ => ["subject", "patient"].iter().any(|field| {
            resource
                .pointer(&format!("/{field}/reference"))
                .and_then(Value::as_str)
                == Some(&reference)
        }),
    }
}
