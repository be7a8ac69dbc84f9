//! Failures an app developer can ask for, to see that their app handles them
//! (the eleven smart-launcher-v2 offers). Set per client (`simulate_error` in the
//! config or in registration metadata) or per EHR launch on the launcher page.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use strum::{EnumIter, EnumString, IntoEnumIterator, IntoStaticStr};

use super::error::OAuthRejection;

/// Each name (config files, forms, registration metadata, token claims) is the
/// variant's, in snake_case, derived once by strum; serde goes through it below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, EnumString, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
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
    /// The token request (code exchange or client credentials) fails with
    /// `invalid_scope`.
    TokenInvalidScope,
    /// The token request fails with `invalid_client`: the assertion's `jti` is
    /// refused (backend services).
    TokenInvalidJti,
    /// The token request fails with `invalid_client`: the client's registration
    /// has expired.
    TokenExpiredRegistrationToken,
    /// FHIR requests fail with 401 `invalid_token`.
    RequestInvalidToken,
    /// FHIR requests fail with 401, token expired.
    RequestExpiredToken,
}

impl SimulatedError {
    pub(crate) fn names() -> impl Iterator<Item = &'static str> {
        Self::iter().map(Self::as_str)
    }

    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    /// The refusal a code exchange or a client-credentials request answers with
    /// for this error, if it is one of the token endpoint's.
    pub(crate) fn at_token_endpoint(self) -> Option<OAuthRejection> {
        Some(match self {
            SimulatedError::TokenInvalidScope => {
                OAuthRejection::invalid_scope("the requested scope is refused (simulated error)")
            }
            SimulatedError::TokenInvalidJti => {
                OAuthRejection::invalid_client("client assertion refused: invalid jti (simulated error)")
            }
            SimulatedError::TokenExpiredRegistrationToken => {
                OAuthRejection::invalid_client("the client's registration has expired (simulated error)")
            }
            _ => return None,
        })
    }
}

impl Serialize for SimulatedError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SimulatedError {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::parse(&name).ok_or_else(|| D::Error::custom(format!("unknown simulated error {name:?}")))
    }
}
