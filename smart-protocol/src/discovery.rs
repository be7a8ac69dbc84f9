//! How an app finds a FHIR server's authorisation endpoints.
//!
//! SMART App Launch 2.2 §"Conformance": `GET {fhir}/.well-known/smart-configuration`
//! returns a [`SmartConfiguration`]. Older servers (CCRI among them) only publish the
//! `oauth-uris` extension on `CapabilityStatement.rest.security`, which
//! [`OAuthUris::from_capability_statement`] reads; [`OAuthUris::into_configuration`]
//! turns it into the same type so the rest of a client has one shape to handle.

use serde::Serialize;

use crate::Identifier;
use crate::json::{DecodeError, JsonValue, Members};

string_enum! {
    /// A SMART capability (SMART App Launch 2.2 §"Capabilities").
    pub enum Capability {
        LaunchEhr => "launch-ehr",
        LaunchStandalone => "launch-standalone",
        AuthorizePost => "authorize-post",
        ClientPublic => "client-public",
        ClientConfidentialSymmetric => "client-confidential-symmetric",
        ClientConfidentialAsymmetric => "client-confidential-asymmetric",
        SsoOpenidConnect => "sso-openid-connect",
        ContextBanner => "context-banner",
        ContextStyle => "context-style",
        ContextEhrPatient => "context-ehr-patient",
        ContextEhrEncounter => "context-ehr-encounter",
        ContextStandalonePatient => "context-standalone-patient",
        ContextStandaloneEncounter => "context-standalone-encounter",
        PermissionOffline => "permission-offline",
        PermissionOnline => "permission-online",
        PermissionPatient => "permission-patient",
        PermissionUser => "permission-user",
        PermissionV1 => "permission-v1",
        PermissionV2 => "permission-v2",
        SmartAppState => "smart-app-state",
    }
}

string_enum! {
    /// An OAuth grant type (`grant_type`).
    pub enum GrantType {
        AuthorizationCode => "authorization_code",
        ClientCredentials => "client_credentials",
        RefreshToken => "refresh_token",
    }
}

string_enum! {
    /// How a client authenticates at the token endpoint (RFC 7591 §2).
    pub enum AuthMethod {
        ClientSecretBasic => "client_secret_basic",
        ClientSecretPost => "client_secret_post",
        PrivateKeyJwt => "private_key_jwt",
        None => "none",
    }
}

string_enum! {
    /// A PKCE code challenge method (RFC 7636 §4.3).
    pub enum CodeChallengeMethod {
        S256 => "S256",
        Plain => "plain",
    }
}

/// An endpoint that shares this server's authorisation (`associated_endpoints`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AssociatedEndpoint {
    pub url: String,
    pub capabilities: Vec<Capability>,
}

impl AssociatedEndpoint {
    pub fn from_json(json: &impl JsonValue) -> Result<Self, DecodeError> {
        let m = Members::of(json);
        m.finish(AssociatedEndpoint {
            url: m.required("url"),
            capabilities: vocabulary(&m, "capabilities"),
        })
    }
}

/// An array of vocabulary values (unknown ones kept as `Other`); absent is empty.
fn vocabulary<T: for<'a> From<&'a str>, J: JsonValue>(m: &Members<J>, name: &str) -> Vec<T> {
    m.strings(name).iter().map(|s| T::from(s.as_str())).collect()
}

/// The body of `.well-known/smart-configuration` (SMART App Launch 2.2).
///
/// Lists a server may leave out default to empty; members this type does not know
/// are ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SmartConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    pub grant_types_supported: Vec<GrantType>,
    pub token_endpoint: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_methods_supported: Vec<AuthMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub associated_endpoints: Vec<AssociatedEndpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_access_brand_bundle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_access_brand_identifier: Option<Identifier>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_types_supported: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    pub capabilities: Vec<Capability>,
    pub code_challenge_methods_supported: Vec<CodeChallengeMethod>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// RFC 9207: the server adds `iss` to every authorization response.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub authorization_response_iss_parameter_supported: bool,
}

impl SmartConfiguration {
    pub fn from_json(json: &impl JsonValue) -> Result<Self, DecodeError> {
        let m = Members::of(json);
        m.finish(SmartConfiguration {
            issuer: m.string("issuer"),
            jwks_uri: m.string("jwks_uri"),
            authorization_endpoint: m.string("authorization_endpoint"),
            grant_types_supported: vocabulary(&m, "grant_types_supported"),
            token_endpoint: m.required("token_endpoint"),
            token_endpoint_auth_methods_supported: vocabulary(&m, "token_endpoint_auth_methods_supported"),
            registration_endpoint: m.string("registration_endpoint"),
            associated_endpoints: m.list("associated_endpoints", AssociatedEndpoint::from_json),
            user_access_brand_bundle: m.string("user_access_brand_bundle"),
            user_access_brand_identifier: m.decoded("user_access_brand_identifier", Identifier::from_json),
            scopes_supported: m.strings("scopes_supported"),
            response_types_supported: m.strings("response_types_supported"),
            management_endpoint: m.string("management_endpoint"),
            introspection_endpoint: m.string("introspection_endpoint"),
            revocation_endpoint: m.string("revocation_endpoint"),
            capabilities: vocabulary(&m, "capabilities"),
            code_challenge_methods_supported: vocabulary(&m, "code_challenge_methods_supported"),
            token_endpoint_auth_signing_alg_values_supported: m
                .strings("token_endpoint_auth_signing_alg_values_supported"),
            authorization_response_iss_parameter_supported: m
                .boolean("authorization_response_iss_parameter_supported")
                .unwrap_or(false),
        })
    }

    pub fn has_capability(&self, capability: &Capability) -> bool {
        self.capabilities.contains(capability)
    }

    /// Whether a client may run PKCE with S256 against this server. A server that
    /// lists no methods (pre-2.0) is given the benefit of the doubt; one that lists
    /// only `plain` is refused, because falling back to `plain` or to no PKCE at all
    /// would silently drop the protection.
    pub fn allows_s256(&self) -> bool {
        self.code_challenge_methods_supported.is_empty()
            || self
                .code_challenge_methods_supported
                .contains(&CodeChallengeMethod::S256)
    }
}

/// The URL of the extension that carries OAuth endpoints on a CapabilityStatement.
pub const OAUTH_URIS_EXTENSION: &str =
    "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

/// The endpoints of the legacy `oauth-uris` extension.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OAuthUris {
    pub authorize: Option<String>,
    pub token: String,
    pub register: Option<String>,
    pub manage: Option<String>,
    pub introspect: Option<String>,
    pub revoke: Option<String>,
}

/// Why a CapabilityStatement gave no OAuth endpoints.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityStatementError {
    #[error("the document is not a CapabilityStatement (resourceType is {})", .0.as_deref().unwrap_or("missing"))]
    NotACapabilityStatement(Option<String>),
    #[error("no rest.security extension {OAUTH_URIS_EXTENSION}")]
    NoOAuthUris,
    #[error("the oauth-uris extension has no `token` endpoint")]
    NoTokenEndpoint,
}

impl OAuthUris {
    /// Reads the `oauth-uris` extension from the first `rest` entry that has one.
    ///
    /// The `security.service` coding is not required: CCRI's omits the
    /// `SMART-on-FHIR` code, and the extension is what a client actually needs.
    pub fn from_capability_statement<J: JsonValue>(statement: &J) -> Result<Self, CapabilityStatementError> {
        let resource_type = statement.member_string("resourceType");
        if resource_type.as_deref() != Some("CapabilityStatement") {
            return Err(CapabilityStatementError::NotACapabilityStatement(resource_type));
        }
        let items = |value: &J, name: &str| value.get(name).and_then(|v| v.items()).unwrap_or_default();
        let extension = items(statement, "rest")
            .iter()
            .filter_map(|rest| rest.get("security"))
            .flat_map(|security| items(&security, "extension"))
            .find(|ext| ext.member_string("url").as_deref() == Some(OAUTH_URIS_EXTENSION))
            .ok_or(CapabilityStatementError::NoOAuthUris)?;
        let subs = items(&extension, "extension");
        let uri = |name: &str| -> Option<String> {
            let sub = subs
                .iter()
                .find(|sub| sub.member_string("url").as_deref() == Some(name))?;
            // Some servers write `valueUrl` where the extension defines `valueUri`.
            sub.member_string("valueUri")
                .or_else(|| sub.member_string("valueUrl"))
        };
        Ok(Self {
            token: uri("token").ok_or(CapabilityStatementError::NoTokenEndpoint)?,
            authorize: uri("authorize"),
            register: uri("register"),
            manage: uri("manage"),
            introspect: uri("introspect"),
            revoke: uri("revoke"),
        })
    }

    /// The same endpoints as a [`SmartConfiguration`] with no advertised capabilities.
    pub fn into_configuration(self) -> SmartConfiguration {
        SmartConfiguration {
            authorization_endpoint: self.authorize,
            token_endpoint: self.token,
            registration_endpoint: self.register,
            management_endpoint: self.manage,
            introspection_endpoint: self.introspect,
            revocation_endpoint: self.revoke,
            ..SmartConfiguration::default()
        }
    }
}

deserialize_with_from_json!(SmartConfiguration, AssociatedEndpoint);
