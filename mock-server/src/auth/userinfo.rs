//! `GET {auth}/userinfo` (OpenID Connect Core §5.3): who the access token's user is.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::verify::AccessContext;
use crate::state::AppState;

pub(crate) async fn userinfo(State(state): State<AppState>, access: AccessContext) -> Json<Value> {
    let user = access
        .fhir_user
        .as_ref()
        .and_then(|f| state.config.user_by_fhir_user(f));
    Json(json!({
        "sub": access.fhir_user.as_ref().map_or_else(|| access.client_id.to_string(), ToString::to_string),
        "fhirUser": access.fhir_user.as_ref().map(|f| f.under(&access.fhir_base)),
        "name": user.map(|u| u.name.clone()),
    }))
}
