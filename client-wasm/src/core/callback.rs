//! Finishing a launch at the redirect URI: match the `state` to a launch this
//! browser started (once only), surface the server's error if it sent one, trade the
//! code and the PKCE verifier for tokens, and verify the id_token before believing
//! its `fhirUser`.

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use smart_protocol::{ClientSecret, OAuthError, OAuthErrorCode};

use super::error::Error;
use super::launch::{LAUNCH_KEY_PREFIX, PendingLaunch};
use super::platform::{HttpRequest, Json, Method, Platform, Storage};
use super::session::SessionState;
use super::token::{ClientAuth, request_token};

/// The query parameters of a URL (before any `#`).
pub fn query_params(url: &str) -> Vec<(String, String)> {
    let without_fragment = url.split('#').next().unwrap_or_default();
    let query = without_fragment
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// Completes the launch the callback `url` belongs to.
pub async fn ready<P: Platform, S: Storage>(
    platform: &P,
    storage: &S,
    url: &str,
    client_secret: Option<&ClientSecret>,
) -> Result<SessionState, Error<P::Json>> {
    let params = query_params(url);
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let state = param("state").ok_or_else(|| {
        Error::new(
            "state_mismatch",
            "the callback URL has no state: it was not sent by a launch",
        )
    })?;
    let key = format!("{LAUNCH_KEY_PREFIX}{state}");
    let stored = storage.get(&key).ok_or_else(|| {
        Error::new(
            "state_mismatch",
            "no launch with this state: it is unknown, from another browser, or already used",
        )
    })?;
    // One use only, whatever happens next.
    storage.remove(&key);
    let pending: PendingLaunch = serde_json::from_str(&stored).map_err(Error::storage)?;

    if let Some(error) = param("error") {
        let oauth = OAuthError {
            error: OAuthErrorCode::from(error),
            error_description: param("error_description").map(str::to_owned),
            error_uri: param("error_uri").map(str::to_owned),
        };
        return Err(Error::oauth(oauth, None));
    }
    let code = param("code")
        .ok_or_else(|| Error::invalid_response("the callback URL has neither code nor error"))?;
    let auth = match (pending.confidential, client_secret) {
        (false, _) => ClientAuth::Public(&pending.client_id),
        (true, Some(secret)) => ClientAuth::Secret(&pending.client_id, secret),
        (true, None) => {
            return Err(Error::invalid_options(
                "clientSecret is required to finish this launch",
            ));
        }
    };
    let form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", pending.redirect_uri.clone()),
        ("code_verifier", pending.code_verifier.secret().to_owned()),
    ];
    let response = request_token(platform, &pending.token_endpoint, &auth, form).await?;
    if !response.token_type.is_bearer() {
        return Err(Error::invalid_response(format!(
            "token_type {} is not Bearer",
            response.token_type
        )));
    }
    let id_token_claims = match &response.id_token {
        Some(id_token) => Some(verify_id_token(platform, &pending, id_token.secret()).await?),
        None => None,
    };
    Ok(SessionState::new(
        platform.now(),
        &pending,
        response,
        id_token_claims,
    ))
}

#[derive(Deserialize)]
struct JwtHeader {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// OpenID Connect Core §3.1.3.7: signature by a key of the server's JWKS, `iss`,
/// `aud` and `exp`. Returns the claims.
async fn verify_id_token<P: Platform>(
    platform: &P,
    pending: &PendingLaunch,
    token: &str,
) -> Result<Value, Error<P::Json>> {
    let invalid = |why: String| {
        Error::new(
            "id_token_invalid",
            format!("the id_token cannot be trusted: {why}"),
        )
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(invalid("not a signed JWT".into()));
    };
    let decode = |part: &str| b64.decode(part).map_err(|e| invalid(e.to_string()));
    // Through text, like every other message: one serde_json reader in the package.
    let json = |part: &str| String::from_utf8(decode(part)?).map_err(|e| invalid(e.to_string()));
    let header: JwtHeader = serde_json::from_str(&json(header)?).map_err(|e| invalid(e.to_string()))?;
    if header.alg != "RS256" {
        return Err(invalid(format!("alg {} (RS256 expected)", header.alg)));
    }
    let jwks_uri = pending
        .jwks_uri
        .as_deref()
        .ok_or_else(|| invalid("the server advertises no jwks_uri".into()))?;
    let response = platform
        .fetch(HttpRequest::new(Method::Get, jwks_uri).header("Accept", "application/json"))
        .await
        .map_err(Error::network)?;
    let jwks: Jwks = response
        .body
        .filter(|_| response.status == 200)
        .ok_or_else(|| invalid(format!("the JWKS answered HTTP {}", response.status)))?
        .decode()
        .map_err(invalid)?;
    let key = jwks
        .keys
        .iter()
        .find(|k| k.kty == "RSA" && (header.kid.is_none() || k.kid == header.kid))
        .ok_or_else(|| invalid("no RSA key in the JWKS matches its kid".into()))?;
    let (Some(n), Some(e)) = (&key.n, &key.e) else {
        return Err(invalid("the JWK has no n/e".into()));
    };
    let message = format!("{}.{}", parts[0], parts[1]);
    let signed = platform
        .verify_rs256(n, e, message.as_bytes(), &decode(signature)?)
        .await
        .map_err(invalid)?;
    if !signed {
        return Err(invalid("bad signature".into()));
    }
    let claims: Value = serde_json::from_str(&json(payload)?).map_err(|e| invalid(e.to_string()))?;
    if let Some(issuer) = &pending.issuer
        && claims["iss"].as_str() != Some(issuer)
    {
        return Err(invalid(format!("iss {} is not {issuer}", claims["iss"])));
    }
    let audience_ok = match &claims["aud"] {
        Value::String(aud) => *aud == pending.client_id,
        Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(&pending.client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(invalid(format!("aud {} is not this client", claims["aud"])));
    }
    if claims["exp"].as_u64().is_none_or(|exp| exp <= platform.now()) {
        return Err(invalid("expired".into()));
    }
    Ok(claims)
}
