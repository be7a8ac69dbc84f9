//! The token endpoint's success answer and the launch context it carries
//! (RFC 6749 §5.1, SMART App Launch 2.2 §"Launch context arrives with your access_token").

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{AccessToken, IdToken, RefreshToken, Scopes};

string_enum! {
    /// `token_type`. SMART requires `Bearer`; RFC 6749 says it is case-insensitive,
    /// so compare with [`TokenType::is_bearer`].
    pub enum TokenType {
        Bearer => "Bearer",
    }
}

impl TokenType {
    pub fn is_bearer(&self) -> bool {
        self.as_str().eq_ignore_ascii_case("bearer")
    }
}

/// One entry of `fhirContext`: a resource the app was launched about.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FhirContextItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical: Option<String>,
    /// A FHIR Identifier, passed through as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// What the server tells the app about the launch, beside the token.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchContext {
    /// The id of the patient in context (not a reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The id of the encounter in context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter: Option<String>,
    #[serde(default, rename = "fhirContext", skip_serializing_if = "Vec::is_empty")]
    pub fhir_context: Vec<FhirContextItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need_patient_banner: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smart_style_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// `POST {token_endpoint}` → 200 body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: AccessToken,
    pub token_type: TokenType,
    /// Lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// The scopes granted, which may be fewer than those asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scopes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<IdToken>,
    #[serde(flatten)]
    pub context: LaunchContext,
    /// Members not defined by SMART or OAuth, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
