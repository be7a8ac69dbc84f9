//! The token endpoint's success answer and the launch context it carries
//! (RFC 6749 §5.1, SMART App Launch 2.2 §"Launch context arrives with your access_token").

use serde::Serialize;

use crate::json::{DecodeError, JsonValue, Members};
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
        let m = Members::of(json);
        m.finish(Identifier {
            system: m.string("system"),
            value: m.string("value"),
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
        let m = Members::of(json);
        m.finish(FhirContextItem {
            reference: m.string("reference"),
            canonical: m.string("canonical"),
            identifier: m.decoded("identifier", Identifier::from_json),
            resource_type: m.string("type"),
            role: m.string("role"),
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
        let m = Members::of(json);
        let context = Self::read(&m);
        m.finish(context)
    }

    fn read<J: JsonValue>(m: &Members<J>) -> Self {
        LaunchContext {
            patient: m.string("patient"),
            encounter: m.string("encounter"),
            fhir_context: m.list("fhirContext", FhirContextItem::from_json),
            need_patient_banner: m.boolean("need_patient_banner"),
            smart_style_url: m.string("smart_style_url"),
            intent: m.string("intent"),
            tenant: m.string("tenant"),
        }
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
        let m = Members::of(json);
        m.finish(TokenResponse {
            access_token: AccessToken::new(m.required("access_token")),
            token_type: TokenType::from(m.required("token_type").as_str()),
            expires_in: m.unsigned("expires_in"),
            scope: m.decoded("scope", Scopes::from_json),
            refresh_token: m.string("refresh_token").map(RefreshToken::new),
            id_token: m.string("id_token").map(IdToken::new),
            context: LaunchContext::read(&m),
        })
    }
}

deserialize_with_from_json!(TokenResponse, LaunchContext, FhirContextItem, Identifier);
