//! Failures an app developer can ask for, to see that their app handles them
//! (the same list smart-launcher-v2 offers). Set per client (`simulate_error` in the
//! config or in registration metadata) or per EHR launch on the launcher page.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimulatedError {
    /// `/authorize` shows "unknown client_id".
    AuthInvalidClientId,
    /// `/authorize` shows "redirect_uri not registered".
    AuthInvalidRedirectUri,
    /// `/authorize` redirects back with `invalid_scope`.
    AuthInvalidScope,
    /// The code exchange fails with `invalid_client`.
    AuthInvalidClientSecret,
    /// The code exchange fails with `invalid_grant`.
    TokenInvalidToken,
    /// Refreshing fails with `invalid_grant` (refresh token expired).
    TokenExpiredRefreshToken,
    /// FHIR requests fail with 401 `invalid_token`.
    RequestInvalidToken,
    /// FHIR requests fail with 401, token expired.
    RequestExpiredToken,
}

impl SimulatedError {
    pub const ALL: [SimulatedError; 8] = [
        SimulatedError::AuthInvalidClientId,
        SimulatedError::AuthInvalidRedirectUri,
        SimulatedError::AuthInvalidScope,
        SimulatedError::AuthInvalidClientSecret,
        SimulatedError::TokenInvalidToken,
        SimulatedError::TokenExpiredRefreshToken,
        SimulatedError::RequestInvalidToken,
        SimulatedError::RequestExpiredToken,
    ];

    /// The name used in config files, forms and registration metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            SimulatedError::AuthInvalidClientId => "auth_invalid_client_id",
            SimulatedError::AuthInvalidRedirectUri => "auth_invalid_redirect_uri",
            SimulatedError::AuthInvalidScope => "auth_invalid_scope",
            SimulatedError::AuthInvalidClientSecret => "auth_invalid_client_secret",
            SimulatedError::TokenInvalidToken => "token_invalid_token",
            SimulatedError::TokenExpiredRefreshToken => "token_expired_refresh_token",
            SimulatedError::RequestInvalidToken => "request_invalid_token",
            SimulatedError::RequestExpiredToken => "request_expired_token",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }
}
