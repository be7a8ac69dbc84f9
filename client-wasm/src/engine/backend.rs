//! Flows without a browser redirect: client credentials (CCRI's Basic-auth flow and
//! SMART Backend Services' signed assertions, for service workers, Node and back
//! ends) and RFC 7591 dynamic registration.

use base64::Engine;
use smart_protocol::{ClientSecret, PrivateJwk, Scopes, TokenResponse};

use super::discovery::discover;
use super::error::{Error, ErrorCode};
use super::launch::random_token;
use super::platform::{HttpRequest, Json, JsonValue, Method, Platform};
use super::token::{ClientAuth, oauth_answer, post_form};

#[derive(Debug)]
pub struct ClientCredentialsOptions {
    /// The token endpoint, or the FHIR base to discover it from.
    pub token_url: Option<String>,
    pub iss: Option<String>,
    pub client_id: String,
    pub credential: Credential,
    pub scope: Option<Scopes>,
}

/// What a backend client authenticates with.
#[derive(Debug)]
pub enum Credential {
    /// `client_secret_basic`, as CCRI's pre-registered clients.
    Secret(ClientSecret),
    /// `private_key_jwt` (SMART Backend Services): an RSA key signs RS384, a P-384
    /// key ES384.
    PrivateKey(PrivateJwk),
}

/// SMART Backend Services: an assertion lives at most five minutes.
const ASSERTION_LIFETIME_SECS: u64 = 300;

/// Returns the token response as the server sent it, once it decoded as a
/// [`TokenResponse`].
pub async fn client_credentials<P: Platform>(
    platform: &P,
    options: &ClientCredentialsOptions,
) -> Result<P::Json, Error<P::Json>> {
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
    let response = post_form(platform, &token_url, &auth, form).await?;
    let body = oauth_answer(response.status, response.body)?;
    TokenResponse::from_json(&body).map_err(Error::invalid_response)?;
    Ok(body)
}

/// The signed `client_assertion` (RFC 7523 §3, SMART Backend Services).
async fn assertion<P: Platform>(
    platform: &P,
    client_id: &str,
    token_url: &str,
    jwk: &PrivateJwk,
) -> Result<String, Error<P::Json>> {
    let key = P::Json::parse(jwk.secret()).map_err(|_| Error::invalid_options("privateJwk is not JSON"))?;
    let member = |name: &str| key.member_string(name);
    let alg = match (member("kty").as_deref(), member("crv").as_deref()) {
        (Some("RSA"), _) => "RS384",
        (Some("EC"), Some("P-384")) => "ES384",
        _ => {
            return Err(Error::invalid_options(
                "privateJwk must be an RSA or a P-384 EC key",
            ));
        }
    };
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let text = |s: &str| Some(P::Json::text(s));
    let header = P::Json::object(vec![
        ("alg", text(alg)),
        ("typ", text("JWT")),
        ("kid", member("kid").as_deref().and_then(text)),
    ]);
    let expires = (platform.now() + ASSERTION_LIFETIME_SECS) as f64;
    let claims = P::Json::object(vec![
        ("iss", text(client_id)),
        ("sub", text(client_id)),
        ("aud", text(token_url)),
        ("exp", Some(P::Json::number(expires))),
        ("jti", text(&random_token(platform))),
    ]);
    let encode = |json: P::Json| {
        json.to_text()
            .map(|t| b64(t.as_bytes()))
            .map_err(Error::invalid_options)
    };
    let input = format!("{}.{}", encode(header)?, encode(claims)?);
    let signature = platform
        .sign(alg, jwk.secret(), input.as_bytes())
        .await
        .map_err(|e| Error::invalid_options(format!("cannot sign with privateJwk: {e}")))?;
    Ok(format!("{input}.{}", b64(&signature)))
}

/// Registers a client at the server `iss` advertises. `metadata` is RFC 7591
/// client metadata (natively, a serialised `smart_protocol::ClientMetadata`);
/// returns the server's answer, which names the new `client_id`.
pub async fn register<P: Platform>(
    platform: &P,
    iss: &str,
    metadata: &P::Json,
) -> Result<P::Json, Error<P::Json>> {
    if !metadata.is_object() {
        return Err(Error::invalid_options("client metadata must be an object"));
    }
    let config = discover(platform, iss).await?;
    let endpoint = config.registration_endpoint.ok_or_else(|| {
        Error::new(
            ErrorCode::RegistrationUnsupported,
            format!("{iss} advertises no registration_endpoint"),
        )
    })?;
    let mut request = HttpRequest::new(Method::Post, endpoint)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json");
    request.body = Some(metadata.to_text().map_err(Error::invalid_options)?);
    let response = platform.fetch(request).await.map_err(Error::network)?;
    let registration = oauth_answer(response.status, response.body)?;
    if registration.member_string("client_id").is_none() {
        return Err(Error::invalid_response("the registration has no client_id"));
    }
    Ok(registration)
}
