//! The token endpoint's success answer and the launch context it carries
//! (RFC 6749 §5.1, SMART App Launch 2.2 §"Launch context arrives with your access_token").

use serde::Serialize;

use crate::json::{DecodeError, JsonValue};
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

/// A FHIR Identifier, as far as launch contexts and brands use one.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Identifier {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Identifier {
    pub fn from_json(json: &impl JsonValue) -> Result<Self, DecodeError> {
        Ok(Identifier {
            system: json.string("system")?,
            value: json.string("value")?,
        })
    }
}

/// One entry of `fhirContext`: a resource the app was launched about.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FhirContextItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canonical: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "type")]
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl FhirContextItem {
    pub fn from_json(json: &impl JsonValue) -> Result<Self, DecodeError> {
        Ok(FhirContextItem {
            reference: json.string("reference")?,
            canonical: json.string("canonical")?,
            identifier: json
                .get("identifier")
                .map(|i| Identifier::from_json(&i))
                .transpose()?,
            resource_type: json.string("type")?,
            role: json.string("role")?,
        })
    }
}

/// What the server tells the app about the launch, beside the token.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LaunchContext {
    /// The id of the patient in context (not a reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The id of the encounter in context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encounter: Option<String>,
    #[serde(rename = "fhirContext", skip_serializing_if = "Vec::is_empty")]
    pub fhir_context: Vec<FhirContextItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub need_patient_banner: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smart_style_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl LaunchContext {
    /// The launch context members of a token response.
    pub fn from_json(json: &impl JsonValue) -> Result<Self, DecodeError> {
        Ok(LaunchContext {
            patient: json.string("patient")?,
            encounter: json.string("encounter")?,
            fhir_context: json.list("fhirContext", FhirContextItem::from_json)?,
            need_patient_banner: json.boolean("need_patient_banner")?,
            smart_style_url: json.string("smart_style_url")?,
            intent: json.string("intent")?,
            tenant: json.string("tenant")?,
        })
    }
}

/// `POST {token_endpoint}` → 200 body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenResponse {
    pub access_token: AccessToken,
    pub token_type: TokenType,
    /// Lifetime in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// The scopes granted, which may be fewer than those asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scopes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<IdToken>,
    #[serde(flatten)]
    pub context: LaunchContext,
}

impl TokenResponse {
    pub fn from_json(json: &impl JsonValue) -> Result<Self, DecodeError> {
        if !json.is_object() {
            return Err(DecodeError::not_an_object());
        }
        let scope = match json.string("scope")? {
            Some(text) => Some(text.parse().map_err(|e| DecodeError(format!("`scope`: {e}")))?),
            None => None,
        };
        Ok(TokenResponse {
            access_token: AccessToken::new(json.required("access_token")?),
            token_type: TokenType::from(json.required("token_type")?.as_str()),
            expires_in: json.unsigned("expires_in")?,
            scope,
            refresh_token: json.string("refresh_token")?.map(RefreshToken::new),
            id_token: json.string("id_token")?.map(IdToken::new),
            context: LaunchContext::from_json(json)?,
        })
    }
}

deserialize_with_from_json!(TokenResponse, LaunchContext, FhirContextItem, Identifier);
