//! Bearer token verification: the one door between the authorisation server and
//! the FHIR API. The FHIR side never sees a token, only the [`AccessContext`] this
//! extractor produces after checking signature, `kid`, `alg`, `iss`, `aud`, `exp`
//! and revocation.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::Validation;
use smart_protocol::Scopes;

use super::claims::AccessClaims;
use super::keys::ALGORITHM;
use super::simulate::SimulatedError;
use crate::fhir::outcome::Outcome;
use crate::state::AppState;

/// Who is calling and what they may do.
#[derive(Clone, Debug)]
pub struct AccessContext {
    pub client_id: String,
    pub scopes: Scopes,
    /// The patient in context; `patient/` scopes are limited to their compartment.
    pub patient: Option<String>,
    pub fhir_user: Option<String>,
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
    let claims: AccessClaims = state.key.verify(token, &validation).map_err(|e| match e.kind() {
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
    fn from_claims(claims: AccessClaims) -> Result<Self, TokenError> {
        let scopes = claims
            .scope
            .parse()
            .map_err(|e| TokenError::Invalid(format!("{e}")))?;
        Ok(AccessContext {
            client_id: claims.client_id,
            scopes,
            patient: claims.patient,
            fhir_user: claims.fhir_user,
        })
    }
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
        verify_access_token(state, token)
            .and_then(AccessContext::from_claims)
            .map_err(|error| {
                tracing::debug!(%error, "bearer token refused");
                Unauthorized {
                    challenge: r#"Bearer realm="ccri-fhir", error="invalid_token""#,
                    diagnostics: error.to_string(),
                }
            })
    }
}
