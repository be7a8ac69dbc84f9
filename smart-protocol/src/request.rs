//! The requests an app sends to the authorisation server. The client encodes them
//! (`serde_urlencoded` or the browser's `URLSearchParams` over the same field names)
//! and ccri-mock decodes them with the same types.

use serde::{Deserialize, Serialize};

use crate::discovery::{AuthMethod, CodeChallengeMethod, GrantType};
use crate::{AccessToken, ClientSecret, PkceVerifier, RefreshToken, Scopes};

/// `GET|POST {authorization_endpoint}` parameters (RFC 6749 §4.1.1, RFC 7636 §4.3,
/// SMART App Launch 2.2 §"Obtain authorization code").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub response_type: String,
    pub client_id: String,
    pub redirect_uri: String,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    /// The FHIR base URL the token is for. `resource` (RFC 8707) is accepted instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The opaque launch id of an EHR launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_method: Option<CodeChallengeMethod>,
    /// OpenID Connect Core §3.1.2.1: echoed in the id_token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// OpenID Connect Core §3.1.2.1: space-separated `none`, `login`, `consent`,
    /// `select_account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// OpenID Connect Core §3.1.2.1: seconds since the user last logged in, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

/// The grant-specific part of a token request (RFC 6749 §4.1.3, §6, §4.4).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "grant_type", rename_all = "snake_case")]
pub enum TokenRequest {
    AuthorizationCode {
        code: String,
        redirect_uri: String,
        /// Absent only when the authorization request had no `code_challenge`,
        /// which SMART 2 servers refuse unless set up to test an app without PKCE.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code_verifier: Option<PkceVerifier>,
    },
    RefreshToken {
        refresh_token: RefreshToken,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<Scopes>,
    },
    ClientCredentials {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<Scopes>,
    },
}

impl TokenRequest {
    pub fn grant_type(&self) -> GrantType {
        match self {
            TokenRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            TokenRequest::RefreshToken { .. } => GrantType::RefreshToken,
            TokenRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
        }
    }
}

/// `client_assertion_type` for `private_key_jwt` (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How a client identifies itself in the body of a token, introspection or
/// revocation request. (`client_secret_basic` uses the `Authorization` header instead.)
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ClientAuthentication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `client_secret_post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ClientSecret>,
    /// `private_key_jwt`: must be [`JWT_BEARER_ASSERTION`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_assertion_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_assertion: Option<String>,
}

/// RFC 7591 §2 client metadata: what `POST {registration_endpoint}` accepts, and
/// (with the issued credentials) what it answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClientMetadata {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<AuthMethod>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types: Vec<GrantType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scopes>,
    /// A JWK Set, by value (`private_key_jwt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Extension metadata (RFC 7591 §2 allows servers to define more), kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// RFC 7591 §3.2.1: the registered client.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClientRegistration {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ClientSecret>,
    #[serde(default)]
    pub client_id_issued_at: u64,
    /// 0: the secret does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<u64>,
    /// RFC 7592 §3: the bearer token that reads, updates and deletes this client
    /// at `registration_client_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<AccessToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_client_uri: Option<String>,
    #[serde(flatten)]
    pub metadata: ClientMetadata,
}
