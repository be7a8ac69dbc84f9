//! `GET {fhir}/.well-known/smart-configuration` (SMART App Launch 2.2 §"Conformance")
//! and `GET {auth}/.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
//! Both are public, JSON whatever the `Accept` header says, and CORS `*`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use smart_protocol::discovery::{AuthMethod, Capability, CodeChallengeMethod, GrantType};
use smart_protocol::{Context, Scope, SmartConfiguration};

use crate::state::AppState;

/// The scopes the mock understands, advertised to apps: every named scope, and
/// every context's wildcard resource scopes (granular ones work too, unlisted).
fn scopes_supported() -> Vec<String> {
    let wildcards = [Context::Patient, Context::User, Context::System]
        .into_iter()
        .flat_map(|context| ["cruds", "read", "write"].map(|p| format!("{}/*.{p}", context.as_str())));
    Scope::NAMED
        .iter()
        .map(|s| s.to_string())
        .chain(wildcards)
        .collect()
}

pub(crate) fn smart_configuration(state: &AppState) -> SmartConfiguration {
    use Capability::*;
    SmartConfiguration {
        issuer: Some(state.urls.auth_base.clone()),
        jwks_uri: Some(state.urls.auth("jwk")),
        authorization_endpoint: Some(state.urls.auth("authorize")),
        grant_types_supported: vec![
            GrantType::AuthorizationCode,
            GrantType::ClientCredentials,
            GrantType::RefreshToken,
        ],
        token_endpoint: state.urls.auth("token"),
        token_endpoint_auth_methods_supported: vec![
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::PrivateKeyJwt,
            AuthMethod::None,
        ],
        registration_endpoint: Some(state.urls.auth("register")),
        scopes_supported: scopes_supported(),
        response_types_supported: vec!["code".into()],
        introspection_endpoint: Some(state.urls.auth("introspect")),
        revocation_endpoint: Some(state.urls.auth("revoke")),
        capabilities: vec![
            LaunchEhr,
            LaunchStandalone,
            AuthorizePost,
            ClientPublic,
            ClientConfidentialSymmetric,
            ClientConfidentialAsymmetric,
            SsoOpenidConnect,
            ContextBanner,
            ContextStyle,
            ContextEhrPatient,
            ContextEhrEncounter,
            ContextStandalonePatient,
            PermissionOffline,
            PermissionOnline,
            PermissionPatient,
            PermissionUser,
            PermissionV1,
            PermissionV2,
        ],
        code_challenge_methods_supported: vec![CodeChallengeMethod::S256],
        token_endpoint_auth_signing_alg_values_supported: vec!["RS384".into(), "ES384".into()],
        authorization_response_iss_parameter_supported: true,
        ..SmartConfiguration::default()
    }
}

pub(crate) async fn smart(State(state): State<AppState>) -> Json<SmartConfiguration> {
    Json(smart_configuration(&state))
}

pub(crate) async fn openid(State(state): State<AppState>) -> Json<Value> {
    let smart = smart_configuration(&state);
    Json(json!({
        "issuer": smart.issuer,
        "authorization_endpoint": smart.authorization_endpoint,
        "token_endpoint": smart.token_endpoint,
        "userinfo_endpoint": state.urls.auth("userinfo"),
        "jwks_uri": smart.jwks_uri,
        "registration_endpoint": smart.registration_endpoint,
        "introspection_endpoint": smart.introspection_endpoint,
        "revocation_endpoint": smart.revocation_endpoint,
        "scopes_supported": smart.scopes_supported,
        "response_types_supported": smart.response_types_supported,
        "grant_types_supported": smart.grant_types_supported,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [state.config.signing_alg.name()],
        "token_endpoint_auth_methods_supported": smart.token_endpoint_auth_methods_supported,
        "code_challenge_methods_supported": smart.code_challenge_methods_supported,
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser", "name"],
    }))
}

/// `smart_style_url` target: colours an embedded app can use to blend in.
pub(crate) async fn style() -> Json<Value> {
    Json(json!({
        "color_background": "#f0f4f5",
        "color_error": "#d5281b",
        "color_highlight": "#005eb8",
        "color_modal_backdrop": "",
        "color_success": "#007f3b",
        "color_text": "#212b32",
        "dim_border_radius": "4px",
        "dim_font_size": "16px",
        "dim_spacing_size": "16px",
        "font_family_body": "Arial, Helvetica, sans-serif",
        "font_family_heading": "Arial, Helvetica, sans-serif"
    }))
}
