//! The FHIR R4 API under `/ccri-fhir/R4`. Every handler but discovery and metadata
//! takes an [`AccessContext`], so an unauthenticated request never reaches one.

pub mod compartment;
pub mod metadata;
pub mod outcome;
pub mod store;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use smart_protocol::Interaction;

use crate::auth::discovery;
use crate::auth::verify::AccessContext;
use crate::state::AppState;
use compartment::{Visibility, in_compartment, visibility};
use outcome::{Outcome, fhir_json};

pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// Routes that need no token: how to find the authorisation server.
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/smart-configuration", get(discovery::smart))
        .route("/metadata", get(metadata::capability_statement))
}

/// Routes that need a bearer token.
pub fn protected_router() -> Router<AppState> {
    Router::new().route("/{kind}/{id}", get(read))
}

async fn read(
    State(state): State<AppState>,
    access: AccessContext,
    Path((kind, id)): Path<(String, String)>,
) -> Response {
    let visible = match visibility(&access, Interaction::Read, &kind) {
        Ok(visible) => visible,
        Err(outcome) => return outcome.into_response(),
    };
    let Some(resource) = state.fhir.read(&kind, &id) else {
        return Outcome::not_found(format!("{kind}/{id} is not known")).into_response();
    };
    if let Visibility::Compartment(patient) = &visible
        && !in_compartment(&resource, patient)
    {
        return Outcome::forbidden(format!(
            "{kind}/{id} is outside the compartment of Patient/{patient}, the patient in context"
        ))
        .into_response();
    }
    fhir_json(StatusCode::OK, &resource)
}
