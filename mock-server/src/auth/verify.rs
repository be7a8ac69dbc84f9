//! Bearer token verification: the one door between the authorisation server and
//! the FHIR API. The FHIR side never sees a token, only the [`AccessContext`] this
//! extractor produces after checking signature, `kid`, `typ`, `alg`, `iss`, `aud`,
//! `exp` and revocation. A refusal is a typed [`BearerError`]: this side renders it
//! as RFC 6750 JSON (userinfo), the FHIR side as an OperationOutcome.

use crate::reference::FhirReference;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::Validation;
use smart_protocol::Scopes;

use axum::Json;
use serde_json::json;

use super::claims::{AccessClaims, now};
use super::error::OAuthRejection;
use super::grants::Grants;
use super::keys::TokenKind;
use super::simulate::SimulatedError;
use crate::config::{Reach, UserConfig};
use crate::inspector::{self, Fingerprint, Problem};
use crate::state::AppState;

/// Who is calling and what they may do: cheap to clone, one per verified token.
#[derive(Clone, Debug)]
pub(crate) struct AccessContext(Arc<AccessInfo>);

#[derive(Debug)]
pub(crate) struct AccessInfo {
    /// Shared, not copied, with each request's inspector record.
    pub client_id: Arc<str>,
    /// The fingerprint of the grant the token came from, by which the inspector
    /// groups a launch's requests: made once per token, not on each request.
    pub launch: Fingerprint,
    pub scopes: Scopes,
    /// The patient in context; `patient/` scopes are limited to their compartment.
    pub patient: Option<String>,
    pub fhir_user: Option<FhirReference>,
    /// Whose records `user/` scopes reach: the user's, or everyone's for a token
    /// without a user (client credentials).
    pub reach: Reach,
    /// The token's `aud`: the server's FHIR base, or the launch link's it was asked for.
    pub fhir_base: String,
}

/// Why a token was refused. Deliberately coarse in what it tells the caller.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("malformed, tampered or foreign token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
    /// Whether it was revoked cannot be asked of the store just now.
    #[error("{0}")]
    Unavailable(String),
}

/// Verifies an access token issued by this server and returns its claims.
pub(crate) fn verify_access_token(state: &AppState, token: &str) -> Result<AccessClaims, TokenError> {
    let key = state.key();
    let mut validation = Validation::new(key.alg().algorithm());
    // `aud` is the server's FHIR base or a launch link's alias of it, checked below:
    // the library compares with a fixed list only.
    validation.validate_aud = false;
    validation.set_issuer(&[&state.urls.auth_base]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    let claims: AccessClaims =
        key.verify(TokenKind::Access, token, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(e.to_string()),
            })?;
    if claims.aud != state.urls.fhir_base && state.urls.link_in(&claims.aud).is_none() {
        return Err(TokenError::Invalid(format!(
            "aud {} is not this server's FHIR base",
            claims.aud
        )));
    }
    if current_grants(state)?.is_revoked(&claims.jti, &claims.grant, &claims.client_id) {
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
            client_id: claims.client_id.as_str().into(),
            launch: Fingerprint::of(&claims.grant),
            scopes,
            patient: claims.context.patient.clone(),
            fhir_user: claims.fhir_user.clone(),
            fhir_base: claims.aud.clone(),
            // A user no longer configured reaches nobody (fail closed).
            reach: match &claims.fhir_user {
                None => Reach::Everyone,
                Some(fhir_user) => state
                    .config
                    .user_by_fhir_user(fhir_user)
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
pub(crate) struct TokenCache {
    /// foldhash, not SipHash: every FHIR request hashes its ~800-byte token here,
    /// and only tokens whose signature verified become keys, so nobody can choose
    /// keys to collide.
    entries: RwLock<HashMap<String, Verified, foldhash::fast::RandomState>>,
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
        // The grants first: catching up with them may wait on the store's
        // database, and inserts must not wait behind that for the cache's lock.
        let grants = match current_grants(state) {
            Ok(grants) => grants,
            Err(unavailable) => return Some(Err(unavailable)),
        };
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let hit = entries.get(token)?;
        Some(if hit.exp <= now() {
            Err(TokenError::Expired)
        } else if grants.is_revoked(&hit.jti, &hit.grant, &hit.context.client_id) {
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

/// The grants, with every revocation made by any mock on the store's database.
fn current_grants(state: &AppState) -> Result<std::sync::MutexGuard<'_, Grants>, TokenError> {
    state
        .current_grants()
        .map_err(|e| TokenError::Unavailable(e.to_string()))
}

/// The access context of a bearer token, from the cache or by full verification.
pub(crate) fn authenticate(state: &AppState, token: &str) -> Result<AccessContext, TokenError> {
    if let Some(result) = state.token_cache.get(state, token) {
        return result;
    }
    let claims = verify_access_token(state, token)?;
    let context = AccessContext::from_claims(state, &claims)?;
    state.token_cache.insert(token, &claims, context.clone());
    Ok(context)
}

/// Why a request carries no usable bearer token.
#[derive(Debug)]
pub(crate) enum BearerError {
    /// No `Authorization: Bearer …` header at all.
    Missing,
    Refused(TokenError),
}

impl BearerError {
    pub(crate) fn description(&self) -> String {
        match self {
            BearerError::Missing => {
                "this request needs an `Authorization: Bearer <access token>` header".into()
            }
            BearerError::Refused(error) => error.to_string(),
        }
    }

    /// The RFC 6750 §3 challenge for `realm`. A request that sent no token gets no
    /// error code (§3.1); a refused token gets `invalid_token`.
    pub(crate) fn challenge(&self, realm: &str) -> HeaderValue {
        let challenge = match self {
            BearerError::Missing => format!(r#"Bearer realm="{realm}""#),
            BearerError::Refused(_) => {
                // A quoted-string may not hold `"` or `\`, nor anything unprintable.
                let description: String = self
                    .description()
                    .chars()
                    .map(|c| {
                        if c == '"' || c == '\\' || !(' '..='~').contains(&c) {
                            '\''
                        } else {
                            c
                        }
                    })
                    .collect();
                format!(r#"Bearer realm="{realm}", error="invalid_token", error_description="{description}""#)
            }
        };
        HeaderValue::try_from(challenge).expect("printable ASCII is a valid header value")
    }
}

/// The OAuth/OpenID endpoints' answer (userinfo): 401, the challenge, and the
/// error as JSON.
impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        if let BearerError::Refused(TokenError::Unavailable(why)) = &self {
            return OAuthRejection::unavailable(why).into_response();
        }
        let body = match &self {
            BearerError::Missing => {
                json!({"error": "invalid_request", "error_description": self.description()})
            }
            BearerError::Refused(_) => {
                json!({"error": "invalid_token", "error_description": self.description()})
            }
        };
        let challenge = self.challenge("ccri-auth");
        let mut response = (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
            Json(body),
        )
            .into_response();
        Problem::attach(&mut response, "invalid_token", &self.description());
        response
    }
}

/// The bearer token of a request, if it has an `Authorization: Bearer` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(header_text)
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// A header's value as text. Not `HeaderValue::to_str`, which tests each byte in
/// turn (a ~900-byte token on every FHIR request): UTF-8 validation runs a word
/// at a time. A token with other bytes than a JWT's fails its verification all
/// the same.
pub(crate) fn header_text(value: &HeaderValue) -> Option<&str> {
    std::str::from_utf8(value.as_bytes()).ok()
}

impl FromRequestParts<AppState> for AccessContext {
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, BearerError> {
        let token = bearer_token(&parts.headers).ok_or(BearerError::Missing)?;
        let context = authenticate(state, token).map_err(|error| {
            tracing::debug!(?error, "bearer token refused");
            BearerError::Refused(error)
        })?;
        inspector::note_verified(&context.client_id, context.launch);
        Ok(context)
    }
}
