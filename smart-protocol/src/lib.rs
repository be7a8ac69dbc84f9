//! The SMART on FHIR protocol, as types both sides of the wire share.
//!
//! The browser client (`smart-fhir-client`) encodes these messages and the mock
//! authorisation server (`ccri-mock`) decodes them, so the two can never disagree
//! about what a scope means or what a token response holds. The crate does no I/O
//! and builds for native targets and `wasm32-unknown-unknown` alike.
//!
//! - [`scope`]: SMART v1/v2 scope grammar and the one permission check ([`Scopes::permits`]).
//! - [`discovery`]: `.well-known/smart-configuration` and the CapabilityStatement `oauth-uris` fallback.
//! - [`token`]: token response and launch context.
//! - [`error`]: OAuth 2.0 error bodies (RFC 6749 §5.2 and friends).
//! - [`request`]: authorize, token and registration requests.
//! - [`json`]: how those messages read themselves from any parsed JSON.
//! - [`secret`]: tokens, client secrets and PKCE verifiers that never print.

#[macro_use]
mod string_enum;
#[macro_use]
pub mod json;

pub mod discovery;
pub mod error;
pub mod request;
pub mod scope;
pub mod secret;
pub mod token;

pub use discovery::{
    AuthMethod, Capability, CapabilityStatementError, CodeChallengeMethod, GrantType, OAuthUris,
    SmartConfiguration,
};
pub use error::{OAuthError, OAuthErrorCode};
pub use json::{DecodeError, JsonValue, Members};
pub use request::{AuthorizeRequest, ClientAuthentication, ClientMetadata, ClientRegistration, TokenRequest};
pub use scope::{
    Access, Constraint, Context, Interaction, Permissions, ResourceScope, ResourceType, Scope, ScopeError,
    ScopeErrorKind, Scopes, Syntax,
};
pub use secret::{AccessToken, ClientSecret, IdToken, PkceVerifier, PrivateJwk, RefreshToken};
pub use token::{FhirContextItem, Identifier, LaunchContext, TokenResponse, TokenType};
