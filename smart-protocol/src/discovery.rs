//! How an app finds a FHIR server's authorisation endpoints.
//!
//! SMART App Launch 2.2 §"Conformance": `GET {fhir}/.well-known/smart-configuration`
//! returns a [`SmartConfiguration`]. Older servers (CCRI among them) only publish the
//! `oauth-uris` extension on `CapabilityStatement.rest.security`, which
//! [`OAuthUris::from_capability_statement`] reads; [`OAuthUris::into_configuration`]
//! turns it into the same type so the rest of a client has one shape to handle.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssociatedEndpoint {
    pub url: String,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

/// The body of `.well-known/smart-configuration` (SMART App Launch 2.2).
///
/// Lists a server may leave out default to empty; members this type does not know
/// are kept in `extra` and written back out unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SmartConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub grant_types_supported: Vec<GrantType>,
    pub token_endpoint: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_methods_supported: Vec<AuthMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub associated_endpoints: Vec<AssociatedEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_access_brand_bundle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_access_brand_identifier: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_types_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<CodeChallengeMethod>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// Members not defined by SMART 2.2, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SmartConfiguration {
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
    #[error("the document is not a CapabilityStatement (resourceType is {0:?})")]
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
    pub fn from_capability_statement(statement: &Value) -> Result<Self, CapabilityStatementError> {
        let resource_type = statement.get("resourceType").and_then(Value::as_str);
        if resource_type != Some("CapabilityStatement") {
            return Err(CapabilityStatementError::NotACapabilityStatement(
                resource_type.map(str::to_owned),
            ));
        }
        let extension = statement
            .get("rest")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|rest| rest.pointer("/security/extension")?.as_array())
            .flatten()
            .find(|ext| ext.get("url").and_then(Value::as_str) == Some(OAUTH_URIS_EXTENSION))
            .ok_or(CapabilityStatementError::NoOAuthUris)?;
        let uri = |name: &str| -> Option<String> {
            extension
                .get("extension")?
                .as_array()?
                .iter()
                .find(|sub| sub.get("url").and_then(Value::as_str) == Some(name))
                // Some servers write `valueUrl` where the extension defines `valueUri`.
                .and_then(|sub| sub.get("valueUri").or_else(|| sub.get("valueUrl")))?
                .as_str()
                .map(str::to_owned)
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
