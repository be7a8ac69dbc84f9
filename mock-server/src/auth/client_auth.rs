//! Who is calling the token, introspection and revocation endpoints.
//!
//! - `client_secret_basic`: `Authorization: Basic base64(id:secret)` (CCRI's Postman flow);
//! - `client_secret_post`: `client_id` + `client_secret` in the form;
//! - `private_key_jwt`: a signed `client_assertion` (RFC 7523; SMART backend services);
//! - `none`: a public client names itself with `client_id` and proves nothing here
//!   (PKCE protects its codes).
//!
//! Using two methods at once is refused (RFC 6749 §2.3).

use axum::http::HeaderMap;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use smart_protocol::discovery::AuthMethod;
use smart_protocol::request::JWT_BEARER_ASSERTION;
use smart_protocol::{ClientAuthentication, ClientSecret};

use super::error::OAuthRejection;
use crate::config::{ClientConfig, ClientKeys};
use crate::state::AppState;

/// Backend-service assertions may live at most five minutes (SMART Backend Services).
const MAX_ASSERTION_LIFETIME_SECS: u64 = 300;

/// An identified client and how it proved it.
pub(crate) struct CallingClient {
    pub client: ClientConfig,
    pub method: AuthMethod,
}

pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &ClientAuthentication,
) -> Result<CallingClient, OAuthRejection> {
    let basic = basic_credentials(headers)?;
    let methods = [
        basic.is_some(),
        form.client_secret.is_some(),
        form.client_assertion.is_some(),
    ];
    if methods.iter().filter(|&&m| m).count() > 1 {
        return Err(OAuthRejection::invalid_request(
            "use exactly one client authentication method",
        ));
    }
    if let Some((client_id, secret)) = basic {
        return check_secret(state, &client_id, &secret, AuthMethod::ClientSecretBasic);
    }
    if let Some(secret) = &form.client_secret {
        let client_id = form
            .client_id
            .as_deref()
            .ok_or_else(|| OAuthRejection::invalid_request("client_secret without client_id"))?;
        return check_secret(state, client_id, secret, AuthMethod::ClientSecretPost);
    }
    if let Some(assertion) = &form.client_assertion {
        if form.client_assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION) {
            return Err(OAuthRejection::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER_ASSERTION}"
            )));
        }
        return check_assertion(state, assertion).await;
    }
    let client_id = form
        .client_id
        .as_deref()
        .ok_or_else(|| OAuthRejection::invalid_client("no client authentication"))?;
    let client = known_client(state, client_id)?;
    if client.is_confidential() {
        return Err(OAuthRejection::invalid_client(format!(
            "client {client_id} is confidential: authenticate it"
        )));
    }
    Ok(CallingClient {
        client,
        method: AuthMethod::None,
    })
}

/// The client, from grants caught up with the store: every request that
/// authenticates a client (token, revocation, introspection) asks here first, so
/// a store that cannot answer is said at once (503 `temporarily_unavailable`).
fn known_client(state: &AppState, client_id: &str) -> Result<ClientConfig, OAuthRejection> {
    state
        .current_grants()
        .map_err(OAuthRejection::unavailable)?
        .client(client_id)
        .cloned()
        .ok_or_else(|| OAuthRejection::invalid_client("unknown client"))
}

/// `Authorization: Basic …`, decoded. Absent header → `None`; a broken one is an error.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, ClientSecret)>, OAuthRejection> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthRejection::invalid_client("malformed Basic authorization header");
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthRejection::invalid_client(format!(
            "unsupported authorization scheme {scheme}"
        )));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    // RFC 6749 §2.3.1: both halves are form-urlencoded before base64.
    let unescape = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|mut v| v.pop())
            .map(|(_, v)| v)
            .ok_or_else(malformed)
    };
    Ok(Some((unescape(id)?, ClientSecret::new(unescape(secret)?))))
}

fn check_secret(
    state: &AppState,
    client_id: &str,
    secret: &ClientSecret,
    method: AuthMethod,
) -> Result<CallingClient, OAuthRejection> {
    let client = known_client(state, client_id)?;
    let matches = match (&client.client_secret, &client.client_secret_sha256) {
        (Some(expected), _) => constant_time_eq(expected.secret().as_bytes(), secret.secret().as_bytes()),
        (None, Some(digest)) => constant_time_eq(digest.as_bytes(), sha256_hex(secret.secret()).as_bytes()),
        (None, None) => false,
    };
    if !matches {
        return Err(OAuthRejection::invalid_client("client authentication failed"));
    }
    Ok(CallingClient { client, method })
}

/// SHA-256 in lowercase hex: how a client secret is held where the secret itself
/// should not be (`client_secret_sha256`).
pub(crate) fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(text.as_bytes()))
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    jti: String,
    exp: u64,
}

/// SMART Backend Services §"Authenticating to the token endpoint".
async fn check_assertion(state: &AppState, assertion: &str) -> Result<CallingClient, OAuthRejection> {
    let refuse = |why: String| OAuthRejection::invalid_client(format!("client assertion refused: {why}"));
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| refuse(e.to_string()))?;
    if !matches!(header.alg, Algorithm::RS384 | Algorithm::ES384) {
        return Err(refuse(format!("alg {:?} (RS384 or ES384 required)", header.alg)));
    }
    let unverified: AssertionClaims =
        jsonwebtoken::dangerous::insecure_decode_claims(assertion).map_err(|e| refuse(e.to_string()))?;
    let client = known_client(state, &unverified.iss)?;
    let fetched;
    let jwks: &JwkSet = match client.keys() {
        Some(ClientKeys::Inline(jwks)) => jwks,
        Some(ClientKeys::Remote(url)) => {
            fetched = state
                .client_keys
                .get(url, header.kid.as_deref())
                .await
                .map_err(|e| refuse(e.to_string()))?;
            &fetched
        }
        None => return Err(refuse("the client has no registered keys".into())),
    };
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or_else(|| refuse("no registered key matches the assertion's kid".into()))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| refuse(e.to_string()))?;
    let mut validation = Validation::new(header.alg);
    // RFC 7523 §3: any value that identifies this server; SMART names the token
    // URL, RFC 7523bis and OpenID clients use the issuer.
    validation.set_audience(&[state.urls.auth("token"), state.urls.auth_base.clone()]);
    validation.set_issuer(&[&client.client_id]);
    validation.sub = Some(client.client_id.clone());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud", "jti"]);
    validation.leeway = 0;
    let claims: AssertionClaims = jsonwebtoken::decode(assertion, &key, &validation)
        .map_err(|e| refuse(e.to_string()))?
        .claims;
    if claims.iss != claims.sub {
        return Err(refuse("iss and sub must both be the client_id".into()));
    }
    if claims.exp > super::claims::now() + MAX_ASSERTION_LIFETIME_SECS {
        return Err(refuse("exp is more than five minutes away".into()));
    }
    if !state
        .grants()
        .first_use_of_assertion(&client.client_id, &claims.jti, claims.exp)
    {
        return Err(refuse("jti already used".into()));
    }
    Ok(CallingClient {
        client,
        method: AuthMethod::PrivateKeyJwt,
    })
}
