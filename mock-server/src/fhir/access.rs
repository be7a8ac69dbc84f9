//! The caller of a FHIR request: the auth side's verified [`AccessContext`]. A
//! request without a usable token is a 401 OperationOutcome with the RFC 6750
//! challenge, rendered here, so the auth side never builds FHIR errors.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::outcome::Outcome;
use crate::auth::verify::{AccessContext, BearerError, TokenError};
use crate::lint::{Lint, Lints};
use crate::state::AppState;

pub(crate) struct Authorized(pub AccessContext);

impl FromRequestParts<AppState> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        AccessContext::from_request_parts(parts, state)
            .await
            .map(Authorized)
            .map_err(|refused| {
                if let BearerError::Refused(TokenError::Unavailable(why)) = &refused {
                    return Outcome::new(StatusCode::SERVICE_UNAVAILABLE, "transient", why).into_response();
                }
                let mut response =
                    Outcome::new(StatusCode::UNAUTHORIZED, "login", refused.description()).into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, refused.challenge("ccri-fhir"));
                if matches!(refused, BearerError::Refused(TokenError::Expired)) {
                    Lints::attach(&mut response, Lint::ExpiredTokenUsed, "token expired");
                }
                response
            })
    }
}
