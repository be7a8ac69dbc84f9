//! The claims inside the JWTs the mock signs. Apps must treat access tokens as
//! opaque, but resource servers may read them: they carry the RFC 9068 claims
//! (`iss`, `exp`, `aud`, `sub`, `client_id`, `iat`, `jti`, `scope`, `auth_time`)
//! and the whole SMART launch context, which introspection returns. The id_token's
//! claims are OpenID Connect Core §2's and SMART's `fhirUser`.

use crate::reference::FhirReference;
use serde::{Deserialize, Serialize};
use smart_protocol::LaunchContext;

use super::simulate::SimulatedError;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    /// The auth base URL.
    pub iss: String,
    /// The FHIR base URL: a token for another server is refused.
    pub aud: String,
    /// The user (their FHIR reference) or, for client credentials, the client.
    pub sub: String,
    pub client_id: String,
    pub scope: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    /// The grant this token came from (see `grants.rs`): revoking it revokes the token.
    pub grant: String,
    /// When the user logged in (RFC 9068 §2.2.1); absent without a user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    #[serde(flatten)]
    pub context: LaunchContext,
    /// The user's FHIR reference relative to the FHIR base (`Patient/1`).
    #[serde(default, rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<FhirReference>,
    /// A failure the FHIR API must simulate for this token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulate: Option<SimulatedError>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct IdTokenClaims {
    pub iss: String,
    /// The client id (OpenID Connect Core §2).
    pub aud: String,
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    /// OpenID Connect Core §2: when `max_age` was asked (and always, as the spec allows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    #[serde(rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The `nonce` of the authorize request, echoed (OpenID Connect Core §3.1.3.7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

pub(crate) fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}
