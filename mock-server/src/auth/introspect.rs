//! `POST {auth}/introspect` (RFC 7662, with SMART App Launch 2.2's additions): is
//! this token live, and what does it grant, with its whole launch context?
//!
//! RFC 7662 §2.1 wants the caller authorised. Two kinds of caller are:
//! - a confidential client, authenticated as at the token endpoint;
//! - a resource server presenting its own bearer token: an access token this
//!   server issued by client credentials (no user), as SMART 2.2 describes.
//!
//! A public client's `client_id`, or an app's user token, would let anyone read
//! anyone's token, so both are refused. A dead, foreign or garbage token is simply
//! `{"active": false}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use smart_protocol::discovery::AuthMethod;
use smart_protocol::{ClientAuthentication, LaunchContext};

use super::client_auth::authenticate;
use super::error::{OAuthRejection, no_store};
use super::verify::{self, bearer_token, verify_access_token};
use crate::state::AppState;

#[derive(Deserialize)]
struct IntrospectForm {
    token: String,
}

pub(crate) async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match authorise(&state, &headers, &body).await {
        Ok(form) => form,
        Err(rejection) => return rejection.into_response(),
    };
    // Whether a token was revoked is the store's to say: not `active: false` when it cannot.
    if let Err(unavailable) = state.current_grants() {
        return OAuthRejection::unavailable(unavailable).into_response();
    }
    (no_store(), Json(describe(&state, &form.token))).into_response()
}

/// The form, if its caller may introspect.
async fn authorise(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<IntrospectForm, OAuthRejection> {
    let form = serde_urlencoded::from_bytes::<IntrospectForm>(body)
        .map_err(|e| OAuthRejection::invalid_request(format!("token is required: {e}")))?;
    if let Some(token) = bearer_token(headers) {
        let caller = verify::authenticate(state, token)
            .map_err(|e| OAuthRejection::invalid_client(format!("the bearer token is refused: {e}")))?;
        if caller.fhir_user.is_some() {
            return Err(OAuthRejection::invalid_client(
                "introspection needs a resource server's token (client credentials), not a user's",
            ));
        }
        return Ok(form);
    }
    let auth: ClientAuthentication =
        serde_urlencoded::from_bytes(body).map_err(|e| OAuthRejection::invalid_request(e.to_string()))?;
    let caller = authenticate(state, headers, &auth).await?;
    if caller.method == AuthMethod::None {
        return Err(OAuthRejection::invalid_client(
            "introspection needs an authenticated (confidential) client or a resource server's bearer token",
        ));
    }
    Ok(form)
}

/// RFC 7662 §2.2 for an access or refresh token of this server.
fn describe(state: &AppState, token: &str) -> Value {
    let (mut body, context) = match verify_access_token(state, token) {
        Ok(claims) => (
            json!({
                "active": true,
                "scope": claims.scope,
                "client_id": claims.client_id,
                "token_type": "Bearer",
                "exp": claims.exp,
                "iat": claims.iat,
                "iss": claims.iss,
                "aud": claims.aud,
                "sub": claims.sub,
                "jti": claims.jti,
                "auth_time": claims.auth_time,
                "fhirUser": claims.fhir_user.as_ref().map(|f| f.under(&claims.aud)),
            }),
            claims.context,
        ),
        Err(_) => {
            // A refresh token is a token too (RFC 7662 §2.1).
            let grants = state.grants();
            let Some(refresh) = grants.refresh_grant(token) else {
                return json!({"active": false});
            };
            (
                json!({
                    "active": true,
                    "scope": refresh.grant.scopes.to_string(),
                    "client_id": refresh.grant.client_id,
                    "token_type": "refresh_token",
                    "exp": refresh.expires_at,
                    "auth_time": refresh.grant.auth_time,
                    "fhirUser": refresh.grant.fhir_user.as_ref().map(|f| f.under(&refresh.grant.fhir_base)),
                }),
                refresh.grant.context.clone(),
            )
        }
    };
    let object = body.as_object_mut().expect("built as an object above");
    object.extend(launch_context(&context));
    object.retain(|_, v| !v.is_null());
    body
}

/// The SMART launch context members: SMART 2.2 §"Token Introspection" says they
/// SHALL be returned as they were in the token response.
fn launch_context(context: &LaunchContext) -> Map<String, Value> {
    match serde_json::to_value(context) {
        Ok(Value::Object(members)) => members,
        _ => Map::new(),
    }
}
