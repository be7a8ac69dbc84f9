//! Finishing a launch at the redirect URI: match the `state` to a launch this
//! browser started (once only), surface the server's error if it sent one, trade the
//! code and the PKCE verifier for tokens, and verify the id_token before believing
//! its `fhirUser`.

use base64::Engine;
use smart_protocol::{ClientSecret, OAuthError, OAuthErrorCode};

use super::error::Error;
use super::launch::{LAUNCH_KEY_PREFIX, PendingLaunch};
use super::platform::{HttpRequest, Json, JsonValue, Method, Platform, Storage};
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
) -> Result<SessionState<P::Json>, Error<P::Json>> {
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
    let pending = P::Json::parse(&stored)
        .map_err(Error::storage)
        .and_then(|json| PendingLaunch::from_json(&json).map_err(Error::storage))?;

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

/// OpenID Connect Core §3.1.3.7: signature by a key of the server's JWKS, `iss`,
/// `aud` and `exp`. Returns the claims.
async fn verify_id_token<P: Platform>(
    platform: &P,
    pending: &PendingLaunch,
    token: &str,
) -> Result<P::Json, Error<P::Json>> {
    let invalid = |why: &str| {
        Error::new(
            "id_token_invalid",
            format!("the id_token cannot be trusted: {why}"),
        )
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(invalid("not a signed JWT"));
    };
    let decode = |part: &str| b64.decode(part).map_err(|_| invalid("not base64url"));
    let json = |part: &str| {
        String::from_utf8(decode(part)?)
            .ok()
            .and_then(|text| P::Json::parse(&text).ok())
            .filter(JsonValue::is_object)
            .ok_or_else(|| invalid("not a JSON object"))
    };
    let header = json(header)?;
    let alg = header.member_string("alg");
    if alg.as_deref() != Some("RS256") {
        return Err(invalid(&format!(
            "alg {} (RS256 expected)",
            alg.unwrap_or_default()
        )));
    }
    let kid = header.member_string("kid");
    let jwks_uri = pending
        .jwks_uri
        .as_deref()
        .ok_or_else(|| invalid("the server advertises no jwks_uri"))?;
    let response = platform
        .fetch(HttpRequest::new(Method::Get, jwks_uri).header("Accept", "application/json"))
        .await
        .map_err(Error::network)?;
    let keys = response
        .body
        .filter(|_| response.status == 200)
        .and_then(|jwks| jwks.get("keys")?.items())
        .ok_or_else(|| invalid(&format!("the JWKS answered HTTP {}", response.status)))?;
    let key = keys
        .iter()
        .find(|k| {
            k.member_string("kty").as_deref() == Some("RSA")
                && (kid.is_none() || k.member_string("kid") == kid)
        })
        .ok_or_else(|| invalid("no RSA key in the JWKS matches its kid"))?;
    let (Some(n), Some(e)) = (key.member_string("n"), key.member_string("e")) else {
        return Err(invalid("the JWK has no n/e"));
    };
    let message = format!("{}.{}", parts[0], parts[1]);
    let signed = platform
        .verify_rs256(&n, &e, message.as_bytes(), &decode(signature)?)
        .await
        .map_err(|e| invalid(&e))?;
    if !signed {
        return Err(invalid("bad signature"));
    }
    let claims = json(payload)?;
    let iss = claims.member_string("iss");
    if let Some(issuer) = &pending.issuer
        && iss.as_ref() != Some(issuer)
    {
        return Err(invalid(&format!(
            "iss {} is not {issuer}",
            iss.unwrap_or_default()
        )));
    }
    let audience_ok = claims.get("aud").is_some_and(|aud| match aud.items() {
        Some(auds) => auds
            .iter()
            .any(|a| a.as_string().as_ref() == Some(&pending.client_id)),
        None => aud.as_string().as_ref() == Some(&pending.client_id),
    });
    if !audience_ok {
        return Err(invalid("aud is not this client"));
    }
    let exp = claims.get("exp").and_then(|exp| exp.as_number());
    if exp.is_none_or(|exp| exp <= platform.now() as f64) {
        return Err(invalid("expired"));
    }
    Ok(claims)
}
