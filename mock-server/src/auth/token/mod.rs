//! `POST {auth}/token`: trades a grant for tokens (RFC 6749 §3.2).
//!
//! The body is form-encoded. It is decoded twice with the shared protocol types:
//! once as the [`TokenRequest`] (which grant), once as the [`ClientAuthentication`]
//! (who is asking). Each grant lives in its own file; this one authenticates the
//! client, dispatches, and signs what the grant decided.

mod authorization_code;
mod client_credentials;
mod refresh_token;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use smart_protocol::discovery::GrantType;
use smart_protocol::{
    AccessToken, ClientAuthentication, IdToken, OAuthErrorCode, RefreshToken, Scope, Scopes, TokenRequest,
    TokenResponse, TokenType,
};

use super::claims::{AccessClaims, IdTokenClaims, now};
use super::client_auth::authenticate;
use super::error::{OAuthRejection, no_store};
use super::grants::{Grant, random_token};
use super::keys::TokenKind;
use crate::inspector::LaunchNote;
use crate::lint::{Lint, Lints};
use crate::state::AppState;

/// What an exchange gives: the token response, and for the inspector the grant it
/// came from and what was wrong with the request, if anything.
pub(super) struct Issued {
    response: TokenResponse,
    grant_id: String,
    lint: Option<(Lint, String)>,
}

pub(crate) async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(issued) => {
            let mut response = (no_store(), Json(issued.response)).into_response();
            LaunchNote::attach(&mut response, &issued.grant_id);
            if let Some((lint, detail)) = issued.lint {
                Lints::attach(&mut response, lint, detail);
            }
            response
        }
        Err(rejection) => {
            // Debug formatting escapes what the caller sent: no forged log lines.
            tracing::info!(error = ?rejection.0.to_string(), "token request refused");
            rejection.into_response()
        }
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Issued, OAuthRejection> {
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_encoded {
        return Err(OAuthRejection::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let request = parse_request(body)?;
    let auth: ClientAuthentication = serde_urlencoded::from_bytes(body)
        .map_err(|e| OAuthRejection::invalid_request(format!("malformed client authentication: {e}")))?;
    let caller = authenticate(state, headers, &auth).await?;
    if let Some(named) = &auth.client_id
        && *named != caller.client.client_id
    {
        return Err(OAuthRejection::invalid_client(
            "client_id does not match the authenticated client",
        ));
    }
    let grant_type = request.grant_type();
    if !caller.client.grant_types.contains(&grant_type) {
        return Err(OAuthRejection::new(
            OAuthErrorCode::UnauthorizedClient,
            format!(
                "client {} may not use grant_type {grant_type}",
                caller.client.client_id
            ),
        ));
    }
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => authorization_code::exchange(state, &caller, &code, &redirect_uri, code_verifier),
        TokenRequest::RefreshToken { refresh_token, scope } => {
            refresh_token::exchange(state, &caller, &refresh_token, scope)
        }
        TokenRequest::ClientCredentials { scope } => client_credentials::exchange(state, &caller, scope),
    }
}

/// Separates "no or unknown grant_type" and "malformed scope" from "wrong parameters
/// for this grant", so each gets its own error code.
fn parse_request(body: &[u8]) -> Result<TokenRequest, OAuthRejection> {
    #[derive(Deserialize)]
    struct Discriminants {
        grant_type: Option<String>,
        scope: Option<String>,
    }
    let Discriminants { grant_type, scope } = serde_urlencoded::from_bytes(body)
        .map_err(|e| OAuthRejection::invalid_request(format!("malformed form body: {e}")))?;
    if let Some(Err(e)) = scope.map(|s| s.parse::<Scopes>()) {
        return Err(OAuthRejection::invalid_scope(e.to_string()));
    }
    match grant_type.as_deref().map(GrantType::from) {
        None => Err(OAuthRejection::invalid_request("grant_type is required")),
        Some(GrantType::Other(other)) => Err(OAuthRejection::new(
            OAuthErrorCode::UnsupportedGrantType,
            format!(
                "grant_type {other} is not supported (authorization_code, refresh_token, client_credentials are)"
            ),
        )),
        Some(_) => {
            serde_urlencoded::from_bytes(body).map_err(|e| OAuthRejection::invalid_request(e.to_string()))
        }
    }
}

/// Signs an access token (and an id_token when `openid` was granted to a user, with
/// `nonce` if the authorize request had one) for `grant`, valid for `ttl_secs`.
fn issue(
    state: &AppState,
    grant: &Grant,
    ttl_secs: u64,
    refresh_token: Option<String>,
    nonce: Option<String>,
) -> Issued {
    let issued_at = now();
    let claims = AccessClaims {
        iss: state.urls.auth_base.clone(),
        aud: grant.fhir_base.clone(),
        sub: grant
            .fhir_user
            .as_ref()
            .map_or_else(|| grant.client_id.clone(), ToString::to_string),
        client_id: grant.client_id.clone(),
        scope: grant.scopes.to_string(),
        exp: issued_at + ttl_secs,
        iat: issued_at,
        jti: random_token(),
        grant: grant.id.clone(),
        auth_time: grant.auth_time,
        context: grant.context.clone(),
        fhir_user: grant.fhir_user.clone(),
        simulate: grant.simulate,
    };
    let id_token = grant
        .fhir_user
        .as_ref()
        .filter(|_| grant.scopes.contains(&Scope::OpenId))
        .map(|fhir_user| {
            let name = state.config.user_by_fhir_user(fhir_user).map(|u| u.name.clone());
            IdToken::new(
                state.key().sign(
                    TokenKind::Id,
                    &IdTokenClaims {
                        iss: state.urls.auth_base.clone(),
                        aud: grant.client_id.clone(),
                        sub: fhir_user.to_string(),
                        exp: issued_at + ttl_secs,
                        iat: issued_at,
                        auth_time: grant.auth_time,
                        fhir_user: grant
                            .scopes
                            .contains(&Scope::FhirUser)
                            .then(|| fhir_user.under(&grant.fhir_base)),
                        name,
                        nonce,
                    },
                ),
            )
        });
    let response = TokenResponse {
        access_token: AccessToken::new(state.key().sign(TokenKind::Access, &claims)),
        token_type: TokenType::Bearer,
        expires_in: Some(ttl_secs),
        scope: Some(grant.scopes.clone()),
        refresh_token: refresh_token.map(RefreshToken::new),
        id_token,
        context: grant.context.clone(),
    };
    Issued {
        response,
        grant_id: grant.id.clone(),
        lint: None,
    }
}

/// Whether a grant of these scopes comes with a refresh token.
fn wants_refresh(grant: &Grant) -> bool {
    grant.scopes.contains(&Scope::OfflineAccess) || grant.scopes.contains(&Scope::OnlineAccess)
}
