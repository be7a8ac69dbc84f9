//! Flows without a browser redirect: client credentials (CCRI's Basic-auth flow and
//! SMART Backend Services' signed assertions, for service workers, Node and back
//! ends) and RFC 7591 dynamic registration.

use base64::Engine;
use serde_json::{Value, json};
use smart_protocol::{ClientMetadata, ClientRegistration, ClientSecret, PrivateJwk, Scopes, TokenResponse};

use super::discovery::discover;
use super::error::Error;
use super::launch::random_token;
use super::platform::{HttpRequest, Method, Platform};
use super::token::{ClientAuth, oauth_answer, request_token};

pub struct ClientCredentialsOptions {
    /// The token endpoint, or the FHIR base to discover it from.
    pub token_url: Option<String>,
    pub iss: Option<String>,
    pub client_id: String,
    pub credential: Credential,
    pub scope: Option<Scopes>,
}

/// What a backend client authenticates with.
pub enum Credential {
    /// `client_secret_basic`, as CCRI's pre-registered clients.
    Secret(ClientSecret),
    /// `private_key_jwt` (SMART Backend Services): an RSA key signs RS384, a P-384
    /// key ES384.
    PrivateKey(PrivateJwk),
}

/// SMART Backend Services: an assertion lives at most five minutes.
const ASSERTION_LIFETIME_SECS: u64 = 300;

pub async fn client_credentials<P: Platform>(
    platform: &P,
    options: &ClientCredentialsOptions,
) -> Result<TokenResponse, Error<P::Json>> {
    let token_url = match (&options.token_url, &options.iss) {
        (Some(url), _) => url.clone(),
        (None, Some(iss)) => discover(platform, iss).await?.token_endpoint,
        (None, None) => return Err(Error::invalid_options("tokenUrl or iss is required")),
    };
    let mut form = vec![("grant_type", "client_credentials".to_owned())];
    if let Some(scope) = &options.scope {
        form.push(("scope", scope.to_string()));
    }
    let auth = match &options.credential {
        Credential::Secret(secret) => ClientAuth::Secret(&options.client_id, secret),
        Credential::PrivateKey(jwk) => {
            ClientAuth::Assertion(assertion(platform, &options.client_id, &token_url, jwk).await?)
        }
    };
    request_token(platform, &token_url, &auth, form).await
}

/// The signed `client_assertion` (RFC 7523 §3, SMART Backend Services).
async fn assertion<P: Platform>(
    platform: &P,
    client_id: &str,
    token_url: &str,
    jwk: &PrivateJwk,
) -> Result<String, Error<P::Json>> {
    let key: Value =
        serde_json::from_str(jwk.secret()).map_err(|_| Error::invalid_options("privateJwk is not JSON"))?;
    let alg = match (key["kty"].as_str(), key["crv"].as_str()) {
        (Some("RSA"), _) => "RS384",
        (Some("EC"), Some("P-384")) => "ES384",
        _ => {
            return Err(Error::invalid_options(
                "privateJwk must be an RSA or a P-384 EC key",
            ));
        }
    };
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut header = json!({"alg": alg, "typ": "JWT"});
    if let Some(kid) = key["kid"].as_str() {
        header["kid"] = json!(kid);
    }
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": platform.now() + ASSERTION_LIFETIME_SECS,
        "jti": random_token(platform),
    });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = platform
        .sign(alg, jwk.secret(), input.as_bytes())
        .await
        .map_err(|e| Error::invalid_options(format!("cannot sign with privateJwk: {e}")))?;
    Ok(format!("{input}.{}", b64(&signature)))
}

/// Registers a client at the server `iss` advertises.
pub async fn register<P: Platform>(
    platform: &P,
    iss: &str,
    metadata: &ClientMetadata,
) -> Result<ClientRegistration, Error<P::Json>> {
    let config = discover(platform, iss).await?;
    let endpoint = config.registration_endpoint.ok_or_else(|| {
        Error::new(
            "registration_unsupported",
            format!("{iss} advertises no registration_endpoint"),
        )
    })?;
    let mut request = HttpRequest::new(Method::Post, endpoint)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json");
    request.body = Some(serde_json::to_string(metadata).map_err(Error::invalid_options)?);
    let response = platform.fetch(request).await.map_err(Error::network)?;
    oauth_answer(response.status, response.body)
}
