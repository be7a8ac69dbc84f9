//! `GET|PUT|DELETE {auth}/register/{client_id}`: RFC 7592 client management. A
//! client registered through `/register` reads, replaces or deletes its own
//! registration with the `registration_access_token` it was given, as CCRI's
//! self-service registration let a developer see, edit and delete their clients.
//!
//! - A missing or wrong token, or a client that is not (or no longer) registered,
//!   is the same 401 `invalid_token` (§2: nothing tells a caller which clients exist).
//!   Configured clients have no token, so they cannot be managed here.
//! - An update replaces the whole metadata (§2.2), validated as a registration is;
//!   `client_id` must be the client's, `client_secret`, if sent, its secret. The
//!   secret and the token stay the same.
//! - A delete ends the client and every token it holds (§2.3).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use smart_protocol::ClientMetadata;

use super::client_auth::constant_time_eq;
use super::error::{OAuthRejection, no_store};
use super::register::{answer, metadata_error, validated};
use super::verify::{BearerError, TokenError, bearer_token};
use crate::config::ClientConfig;
use crate::state::AppState;

/// The registered client `client_id`, if the request carries its registration token.
fn managed(state: &AppState, client_id: &str, headers: &HeaderMap) -> Result<ClientConfig, BearerError> {
    let token = bearer_token(headers).ok_or(BearerError::Missing)?;
    state
        .grants()
        .managed(client_id, token)
        .map(|(client, _)| client.clone())
        .ok_or_else(|| {
            BearerError::Refused(TokenError::Invalid(
                "not the registration access token of a registered client".into(),
            ))
        })
}

/// The registration of `client_id` as the client sees it, if it still exists.
fn current(state: &AppState, client_id: &str) -> Response {
    let grants = state.grants();
    let registration = grants
        .client(client_id)
        .zip(grants.registration_of(client_id))
        .map(|(client, registration)| answer(state, client, registration));
    drop(grants);
    match registration {
        Some(registration) => (no_store(), Json(registration)).into_response(),
        None => BearerError::Refused(TokenError::Invalid("the client was deleted".into())).into_response(),
    }
}

pub(crate) async fn read(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match managed(&state, &client_id, &headers) {
        Ok(_) => current(&state, &client_id),
        Err(refused) => refused.into_response(),
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match managed(&state, &client_id, &headers) {
        Ok(_) => {
            state.grants().unregister(&client_id);
            tracing::info!(?client_id, "client deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(refused) => refused.into_response(),
    }
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let client = match managed(&state, &client_id, &headers) {
        Ok(client) => client,
        Err(refused) => return refused.into_response(),
    };
    match replace(&state, client, &body).await {
        Ok(response) => response,
        Err(rejection) => rejection.into_response(),
    }
}

/// The members an update request may carry besides the metadata (§2.2).
const IDENTITY: [&str; 2] = ["client_id", "client_secret"];
/// The members the server alone sets, which an update must not send.
const SERVER_SET: [&str; 4] = [
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

async fn replace(state: &AppState, client: ClientConfig, body: &[u8]) -> Result<Response, OAuthRejection> {
    let mut members: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| metadata_error(format!("the body must be JSON client metadata: {e}")))?;
    if let Some(name) = SERVER_SET.iter().find(|name| members.contains_key(**name)) {
        return Err(OAuthRejection::invalid_request(format!(
            "{name} is set by the server and must not be sent (RFC 7592 §2.2)"
        )));
    }
    let [client_id, secret] = IDENTITY.map(|name| members.remove(name));
    if client_id.as_ref().and_then(Value::as_str) != Some(client.client_id.as_str()) {
        return Err(OAuthRejection::invalid_request(
            "client_id is required and must be this client's",
        ));
    }
    if let Some(secret) = secret {
        let matches = match (secret.as_str(), &client.client_secret) {
            (Some(sent), Some(held)) => constant_time_eq(sent.as_bytes(), held.secret().as_bytes()),
            _ => false,
        };
        if !matches {
            return Err(OAuthRejection::invalid_request(
                "client_secret is not this client's",
            ));
        }
    }
    let metadata: ClientMetadata = serde_json::from_value(Value::Object(members))
        .map_err(|e| metadata_error(format!("the body must be JSON client metadata: {e}")))?;
    let client_id = client.client_id.clone();
    let (client, metadata) = validated(state, client.client_id, metadata, client.client_secret).await?;
    state.grants().update_registration(client, metadata);
    tracing::info!(?client_id, "client updated");
    Ok(current(state, &client_id))
}
