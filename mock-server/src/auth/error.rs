//! OAuth errors as HTTP responses: `smart_protocol::OAuthError` is the body, its code
//! picks the status, and `invalid_client` carries the `WWW-Authenticate` challenge
//! RFC 6749 §5.2 requires.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use smart_protocol::{OAuthError, OAuthErrorCode};

use crate::inspector::Problem;
use crate::lint::{Lint, Lints};

/// An [`OAuthError`] an endpoint returns.
#[derive(Debug)]
pub(crate) struct OAuthRejection(pub OAuthError, Option<Lint>);

impl OAuthRejection {
    /// The store could not be asked (RFC 6749 §4.1.2.1's `temporarily_unavailable`, 503).
    pub(crate) fn unavailable(why: impl std::fmt::Display) -> Self {
        OAuthRejection::new(OAuthErrorCode::TemporarilyUnavailable, why.to_string())
    }

    /// Notes the app's mistake this refusal is (the inspector shows it).
    pub(crate) fn lint(mut self, lint: Lint) -> Self {
        self.1 = Some(lint);
        self
    }

    pub(crate) fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        OAuthRejection(OAuthError::new(code, description), None)
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, description)
    }

    pub(crate) fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidClient, description)
    }

    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidGrant, description)
    }

    pub(crate) fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidScope, description)
    }
}

impl IntoResponse for OAuthRejection {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let challenge = (self.0.error == OAuthErrorCode::InvalidClient).then(|| {
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"ccri-auth\""),
            )]
        });
        let (code, description) = (self.0.error.to_string(), self.0.error_description.clone());
        let lint = self.1;
        let mut response = (status, no_store(), challenge, Json(self.0)).into_response();
        Problem::attach(&mut response, &code, description.as_deref().unwrap_or_default());
        if let Some(lint) = lint {
            Lints::attach(&mut response, lint, description.unwrap_or_default());
        }
        response
    }
}

/// Token-bearing responses must not be cached (RFC 6749 §5.1).
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}
