//! `GET {auth}/jwk`: the public key every token the mock signs verifies against
//! (CCRI's path; `jwks_uri` in the discovery documents points here).

use axum::Json;
use axum::extract::State;
use jsonwebtoken::jwk::JwkSet;

use crate::state::AppState;

pub(crate) async fn jwks(State(state): State<AppState>) -> Json<JwkSet> {
    Json(state.key().jwks())
}
