//! `POST {auth}/register`: RFC 7591 dynamic client registration, self-service and
//! unauthenticated as on CCRI. The client exists from the moment this answers.
//!
//! Besides RFC 7591's metadata the mock understands three extension members, so an
//! automated test can register an app that launches without a person:
//! `"skip_login": "<username>"`, `"skip_auth": true` and `"simulate_error": "<name>"`
//! (see `simulate.rs` for the names).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use smart_protocol::discovery::{AuthMethod, GrantType};
use smart_protocol::{AccessToken, ClientMetadata, ClientRegistration, ClientSecret, OAuthErrorCode, Scopes};

use super::claims::now;
use super::client_keys::MAX_KEYS;
use super::error::{OAuthRejection, no_store};
use super::grants::{Registration, random_token};
use super::simulate::SimulatedError;
use super::uri::{check_jwks_uri, check_redirect_uri};
use crate::config::{ClientConfig, DEFAULT_SCOPE};
use crate::state::AppState;
use serde_json::Value;
use url::Url;

pub(crate) async fn register(
    State(state): State<AppState>,
    body: Result<Json<ClientMetadata>, JsonRejection>,
) -> Response {
    let metadata = match body {
        Ok(Json(metadata)) => metadata,
        Err(e) => {
            return metadata_error(format!(
                "the body must be JSON client metadata: {}",
                e.body_text()
            ))
            .into_response();
        }
    };
    match register_client(&state, metadata).await {
        Ok(registration) => (StatusCode::CREATED, no_store(), Json(registration)).into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

/// Validates `metadata`, stores the client and returns its credentials. Also used by
/// the registration page.
pub(crate) async fn register_client(
    state: &AppState,
    metadata: ClientMetadata,
) -> Result<ClientRegistration, OAuthRejection> {
    let client_id = random_token()[..22].to_owned();
    let (client, metadata) = validated(state, client_id.clone(), metadata, None).await?;
    let registration = Registration {
        access_token: random_token(),
        metadata,
        issued_at: now(),
    };
    let answer = answer(state, &client, &registration);
    state
        .grants()
        .register(client, registration)
        .map_err(|full| OAuthRejection::new(OAuthErrorCode::TemporarilyUnavailable, full))?;
    tracing::info!(?client_id, "client registered");
    Ok(answer)
}

/// RFC 7591 §3.2.1 and RFC 7592 §3: the client's credentials, metadata and where
/// to manage it.
pub(crate) fn answer(
    state: &AppState,
    client: &ClientConfig,
    registration: &Registration,
) -> ClientRegistration {
    ClientRegistration {
        client_id: client.client_id.clone(),
        client_secret_expires_at: client.client_secret.as_ref().map(|_| 0),
        client_secret: client.client_secret.clone(),
        client_id_issued_at: registration.issued_at,
        registration_access_token: Some(AccessToken::new(registration.access_token.clone())),
        registration_client_uri: Some(state.urls.auth(&format!("register/{}", client.client_id))),
        metadata: registration.metadata.clone(),
    }
}

/// The client `metadata` describes, under `client_id`, and the metadata as the
/// server records it (defaults filled in). A secret-authenticated client keeps
/// `secret` if it had one (an update), or gets a new one.
pub(crate) async fn validated(
    state: &AppState,
    client_id: String,
    mut metadata: ClientMetadata,
    secret: Option<ClientSecret>,
) -> Result<(ClientConfig, ClientMetadata), OAuthRejection> {
    let method = metadata
        .token_endpoint_auth_method
        .clone()
        .unwrap_or(AuthMethod::ClientSecretBasic);
    if matches!(method, AuthMethod::Other(_)) {
        return Err(metadata_error(format!(
            "token_endpoint_auth_method {method} is not supported"
        )));
    }
    if metadata.grant_types.is_empty() {
        metadata.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    }
    if let Some(unknown) = metadata
        .grant_types
        .iter()
        .find(|g| matches!(g, GrantType::Other(_)))
    {
        return Err(metadata_error(format!("grant type {unknown} is not supported")));
    }
    if metadata.grant_types.contains(&GrantType::ClientCredentials) && method == AuthMethod::None {
        return Err(metadata_error(
            "client_credentials needs a confidential client".into(),
        ));
    }
    if metadata.grant_types.contains(&GrantType::AuthorizationCode) && metadata.redirect_uris.is_empty() {
        return Err(OAuthRejection::new(
            OAuthErrorCode::InvalidRedirectUri,
            "redirect_uris is required for authorization_code",
        ));
    }
    check_sizes(&metadata)?;
    for uri in &metadata.redirect_uris {
        check_redirect_uri(uri, method == AuthMethod::None).map_err(|why| {
            OAuthRejection::new(OAuthErrorCode::InvalidRedirectUri, format!("{uri}: {why}"))
        })?;
    }
    let scope = metadata.scope.clone().unwrap_or_else(|| {
        let mut scope = DEFAULT_SCOPE.to_owned();
        if metadata.grant_types.contains(&GrantType::ClientCredentials) {
            scope.push_str(" system/*.cruds");
        }
        scope.parse::<Scopes>().expect("the default scope is valid")
    });
    metadata.scope = Some(scope.clone());
    metadata.token_endpoint_auth_method = Some(method.clone());
    let automation = Automation::from_metadata(state, &metadata)?;
    let (jwks, jwks_uri) = client_keys(state, &metadata, &method).await?;
    let client_secret = matches!(
        method,
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
    )
    .then(|| secret.unwrap_or_else(|| ClientSecret::new(random_token())));
    let client = ClientConfig {
        client_id,
        client_secret,
        client_secret_sha256: None,
        name: metadata.client_name.clone(),
        redirect_uris: metadata.redirect_uris.clone(),
        scope,
        grant_types: metadata.grant_types.clone(),
        jwks,
        jwks_uri,
        skip_login: automation.skip_login,
        skip_auth: automation.skip_auth,
        simulate_error: automation.simulate_error,
    };
    Ok((client, metadata))
}

/// The client's public keys: by value (`jwks`), or by reference (`jwks_uri`),
/// fetched now so that a URL that does not serve a key set is refused while the
/// developer is looking, not at the first token request.
async fn client_keys(
    state: &AppState,
    metadata: &ClientMetadata,
    method: &AuthMethod,
) -> Result<(Option<JwkSet>, Option<Url>), OAuthRejection> {
    match (&metadata.jwks, &metadata.jwks_uri) {
        (Some(_), Some(_)) => Err(metadata_error(
            "give jwks or jwks_uri, not both (RFC 7591 §2)".into(),
        )),
        (Some(value), None) => {
            let jwks = serde_json::from_value::<JwkSet>(value.clone())
                .map_err(|e| metadata_error(format!("jwks is not a JWK Set: {e}")))?;
            Ok((Some(jwks), None))
        }
        (None, Some(uri)) => {
            let url = check_jwks_uri(uri).map_err(|why| metadata_error(format!("jwks_uri {uri} {why}")))?;
            state
                .client_keys
                .get(&url, None)
                .await
                .map_err(|e| metadata_error(e.to_string()))?;
            Ok((None, Some(url)))
        }
        (None, None) if *method == AuthMethod::PrivateKeyJwt => Err(metadata_error(
            "private_key_jwt needs `jwks` or `jwks_uri`".into(),
        )),
        (None, None) => Ok((None, None)),
    }
}

/// The mock's extension metadata.
struct Automation {
    skip_login: Option<String>,
    skip_auth: bool,
    simulate_error: Option<SimulatedError>,
}

impl Automation {
    fn from_metadata(state: &AppState, metadata: &ClientMetadata) -> Result<Self, OAuthRejection> {
        let skip_login = match metadata.extra.get("skip_login") {
            None => None,
            Some(Value::String(username)) if state.config.user(username).is_some() => Some(username.clone()),
            Some(other) => {
                return Err(metadata_error(format!(
                    "skip_login {other} is not a username of this mock"
                )));
            }
        };
        let skip_auth = match metadata.extra.get("skip_auth") {
            None => false,
            Some(Value::Bool(skip)) => *skip,
            Some(other) => {
                return Err(metadata_error(format!(
                    "skip_auth must be true or false, not {other}"
                )));
            }
        };
        let simulate_error = match metadata.extra.get("simulate_error") {
            None => None,
            Some(value) => Some(
                value
                    .as_str()
                    .and_then(SimulatedError::parse)
                    .ok_or_else(|| metadata_error(format!("simulate_error {value} is not a known error")))?,
            ),
        };
        Ok(Automation {
            skip_login,
            skip_auth,
            simulate_error,
        })
    }
}

/// Anyone may register, so what one registration may hold is bounded.
const MAX_NAME_CHARS: usize = 200;
const MAX_URI_BYTES: usize = 2_000;
const MAX_REDIRECT_URIS: usize = 20;
const MAX_SCOPE_BYTES: usize = 4_000;

fn check_sizes(metadata: &ClientMetadata) -> Result<(), OAuthRejection> {
    let too_long = |what: &str, limit: usize| metadata_error(format!("{what} is longer than {limit}"));
    if metadata
        .client_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS)
    {
        return Err(too_long("client_name", MAX_NAME_CHARS));
    }
    if metadata.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthRejection::new(
            OAuthErrorCode::InvalidRedirectUri,
            format!("at most {MAX_REDIRECT_URIS} redirect_uris"),
        ));
    }
    if metadata
        .jwks_uri
        .as_ref()
        .is_some_and(|u| u.len() > MAX_URI_BYTES)
    {
        return Err(too_long("jwks_uri", MAX_URI_BYTES));
    }
    if metadata.redirect_uris.iter().any(|u| u.len() > MAX_URI_BYTES) {
        return Err(OAuthRejection::new(
            OAuthErrorCode::InvalidRedirectUri,
            format!("a redirect URI is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    if metadata
        .scope
        .as_ref()
        .is_some_and(|s| s.to_string().len() > MAX_SCOPE_BYTES)
    {
        return Err(too_long("scope", MAX_SCOPE_BYTES));
    }
    let keys = metadata
        .jwks
        .as_ref()
        .and_then(|j| j.get("keys"))
        .and_then(Value::as_array);
    if keys.is_some_and(|keys| keys.len() > MAX_KEYS) {
        return Err(metadata_error(format!("jwks has more than {MAX_KEYS} keys")));
    }
    Ok(())
}

pub(crate) fn metadata_error(description: String) -> OAuthRejection {
    OAuthRejection::new(OAuthErrorCode::InvalidClientMetadata, description)
}
