//! `POST {auth}/introspect` (RFC 7662, with SMART's additions): is this token live,
//! and what does it grant? Any confidential client may ask (a resource server is
//! one), authenticated as at the token endpoint; public clients may not. A dead, foreign or garbage token is simply `{"active": false}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use smart_protocol::ClientAuthentication;
use smart_protocol::discovery::AuthMethod;

use super::client_auth::authenticate;
use super::error::{OAuthRejection, no_store};
use super::verify::verify_access_token;
use crate::state::AppState;

#[derive(Deserialize)]
struct IntrospectForm {
    token: String,
}

pub async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = serde_urlencoded::from_bytes::<IntrospectForm>(&body)
        .map_err(|e| OAuthRejection::invalid_request(format!("token is required: {e}")))
        .and_then(|form| {
            let auth: ClientAuthentication = serde_urlencoded::from_bytes(&body)
                .map_err(|e| OAuthRejection::invalid_request(e.to_string()))?;
            // RFC 7662 §2.1: the caller must prove who it is; a public client's
            // `client_id` proves nothing, and would let anyone read any token.
            let caller = authenticate(&state, &headers, &auth)?;
            if caller.method == AuthMethod::None {
                return Err(OAuthRejection::invalid_client(
                    "introspection needs an authenticated (confidential) client",
                ));
            }
            Ok(form)
        });
    let form = match parsed {
        Ok(form) => form,
        Err(rejection) => return rejection.into_response(),
    };
    let body = match verify_access_token(&state, &form.token) {
        Ok(claims) => json!({
            "active": true,
            "scope": claims.scope,
            "client_id": claims.client_id,
            "token_type": "Bearer",
            "exp": claims.exp,
            "iat": claims.iat,
            "iss": claims.iss,
            "aud": claims.aud,
            "sub": claims.sub,
            "patient": claims.patient,
            "encounter": claims.encounter,
            "fhirUser": claims.fhir_user.map(|f| format!("{}/{f}", state.urls.fhir_base)),
        }),
        Err(_) => {
            // A refresh token is a token too (RFC 7662 §2.1).
            let grants = state.grants();
            match grants.refresh_grant(&form.token) {
                Some(refresh) => json!({
                    "active": true,
                    "scope": refresh.grant.scopes.to_string(),
                    "client_id": refresh.grant.client_id,
                    "token_type": "refresh_token",
                    "patient": refresh.grant.context.patient,
                    "fhirUser": refresh.grant.fhir_user,
                }),
                None => json!({"active": false}),
            }
        }
    };
    (no_store(), Json(strip_nulls(body))).into_response()
}

fn strip_nulls(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(object) = value.as_object_mut() {
        object.retain(|_, v| !v.is_null());
    }
    value
}
