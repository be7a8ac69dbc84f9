//! The claims inside the JWTs the mock signs. Their format is the mock's own business
//! (apps must treat access tokens as opaque); only the id_token's claims are
//! specified, by OpenID Connect Core §2 and SMART's `fhirUser`.

use serde::{Deserialize, Serialize};

use super::simulate::SimulatedError;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter: Option<String>,
    #[serde(default, rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// A failure the FHIR API must simulate for this token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulate: Option<SimulatedError>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    /// The client id (OpenID Connect Core §2).
    pub aud: String,
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}
