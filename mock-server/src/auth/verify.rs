//! Bearer token verification: the one door between the authorisation server and
//! the FHIR API. The FHIR side never sees a token, only the [`AccessContext`] this
//! extractor produces after checking signature, `kid`, `alg`, `iss`, `aud`, `exp`
//! and revocation.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::Validation;
use smart_protocol::Scopes;

use super::claims::{AccessClaims, now};
use super::keys::ALGORITHM;
use super::simulate::SimulatedError;
use crate::config::{Reach, UserConfig};
use crate::fhir::outcome::Outcome;
use crate::state::AppState;

/// Who is calling and what they may do: cheap to clone, one per verified token.
#[derive(Clone, Debug)]
pub struct AccessContext(Arc<AccessInfo>);

#[derive(Debug)]
pub struct AccessInfo {
    pub client_id: String,
    pub scopes: Scopes,
    /// The patient in context; `patient/` scopes are limited to their compartment.
    pub patient: Option<String>,
    pub fhir_user: Option<String>,
    /// Whose records `user/` scopes reach: the user's, or everyone's for a token
    /// without a user (client credentials).
    pub reach: Reach,
}

/// Why a token was refused. Deliberately coarse in what it tells the caller.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("malformed, tampered or foreign token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
}

/// Verifies an access token issued by this server and returns its claims.
pub fn verify_access_token(state: &AppState, token: &str) -> Result<AccessClaims, TokenError> {
    let mut validation = Validation::new(ALGORITHM);
    validation.set_audience(&[&state.urls.fhir_base]);
    validation.set_issuer(&[&state.urls.auth_base]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    let claims: AccessClaims = state
        .key()
        .verify(token, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid(e.to_string()),
        })?;
    if state.grants().is_revoked(&claims.jti, &claims.grant) {
        return Err(TokenError::Revoked);
    }
    match claims.simulate {
        Some(SimulatedError::RequestInvalidToken) => Err(TokenError::Invalid("simulated error".into())),
        Some(SimulatedError::RequestExpiredToken) => Err(TokenError::Expired),
        _ => Ok(claims),
    }
}

impl AccessContext {
    fn from_claims(state: &AppState, claims: &AccessClaims) -> Result<Self, TokenError> {
        let scopes = claims
            .scope
            .parse()
            .map_err(|e| TokenError::Invalid(format!("{e}")))?;
        Ok(AccessContext(Arc::new(AccessInfo {
            client_id: claims.client_id.clone(),
            scopes,
            patient: claims.patient.clone(),
            fhir_user: claims.fhir_user.clone(),
            // A user no longer configured reaches nobody (fail closed).
            reach: match &claims.fhir_user {
                None => Reach::Everyone,
                Some(fhir_user) => state
                    .config
                    .users
                    .iter()
                    .find(|u| &u.fhir_user == fhir_user)
                    .map_or(Reach::Only(Default::default()), UserConfig::reach),
            },
        })))
    }
}

impl std::ops::Deref for AccessContext {
    type Target = AccessInfo;
    fn deref(&self) -> &AccessInfo {
        &self.0
    }
}

/// Verified tokens, so a token used for many requests has its RSA signature checked
/// and its scopes parsed once. Expiry and revocation are still checked every time.
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, Verified>>,
}

struct Verified {
    context: AccessContext,
    exp: u64,
    jti: String,
    grant: String,
}

/// Past this many tokens the cache starts again (a mock sees few distinct tokens).
const CACHE_LIMIT: usize = 10_000;

impl TokenCache {
    fn get(&self, state: &AppState, token: &str) -> Option<Result<AccessContext, TokenError>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let hit = entries.get(token)?;
        Some(if hit.exp <= now() {
            Err(TokenError::Expired)
        } else if state.grants().is_revoked(&hit.jti, &hit.grant) {
            Err(TokenError::Revoked)
        } else {
            Ok(hit.context.clone())
        })
    }

    fn insert(&self, token: &str, claims: &AccessClaims, context: AccessContext) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_LIMIT {
            entries.clear();
        }
        let verified = Verified {
            context,
            exp: claims.exp,
            jti: claims.jti.clone(),
            grant: claims.grant.clone(),
        };
        entries.insert(token.to_owned(), verified);
    }
}

/// The access context of a bearer token, from the cache or by full verification.
pub fn authenticate(state: &AppState, token: &str) -> Result<AccessContext, TokenError> {
    if let Some(result) = state.token_cache.get(state, token) {
        return result;
    }
    let claims = verify_access_token(state, token)?;
    let context = AccessContext::from_claims(state, &claims)?;
    state.token_cache.insert(token, &claims, context.clone());
    Ok(context)
}

/// A request without a valid bearer token: 401 with an RFC 6750 challenge and an
/// OperationOutcome body.
#[derive(Debug)]
pub struct Unauthorized {
    challenge: &'static str,
    diagnostics: String,
}

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut response = Outcome::new(StatusCode::UNAUTHORIZED, "login", self.diagnostics).into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(self.challenge));
        response
    }
}

impl FromRequestParts<AppState> for AccessContext {
    type Rejection = Unauthorized;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Unauthorized> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = header
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(token) = token else {
            return Err(Unauthorized {
                challenge: r#"Bearer realm="ccri-fhir""#,
                diagnostics: "this request needs an `Authorization: Bearer <access token>` header".into(),
            });
        };
        authenticate(state, token).map_err(|error| {
            tracing::debug!(?error, "bearer token refused");
            Unauthorized {
                challenge: r#"Bearer realm="ccri-fhir", error="invalid_token""#,
                diagnostics: error.to_string(),
            }
        })
    }
}
