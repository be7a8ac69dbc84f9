//! Finishing a launch at the redirect URI: match the `state` to a launch this
//! browser started (once only), check that the response comes from the server the
//! launch began at (RFC 9207), surface the server's error if it sent one, trade the
//! code and the PKCE verifier for tokens, and verify the id_token before believing
//! its `fhirUser`. Tokens that come with an id_token that fails are revoked, never
//! kept.

use base64::Engine;
use smart_protocol::{ClientSecret, OAuthError, OAuthErrorCode, TokenResponse};

use super::error::{Error, ErrorCode};
use super::launch::{LAUNCH_KEY_PREFIX, PendingLaunch};
use super::platform::{HttpRequest, Json, JsonValue, Method, Platform, Storage};
use super::session::SessionState;
use super::token::{ClientAuth, request_token, revoke};

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
            ErrorCode::StateMismatch,
            "the callback URL has no state: it was not sent by a launch",
        )
    })?;
    let key = format!("{LAUNCH_KEY_PREFIX}{state}");
    let stored = storage.get(&key).ok_or_else(|| {
        Error::new(
            ErrorCode::StateMismatch,
            "no launch with this state: it is unknown, from another browser, or already used",
        )
    })?;
    // One use only, whatever happens next.
    storage.remove(&key);
    let pending = P::Json::parse(&stored)
        .map_err(Error::storage)
        .and_then(|json| PendingLaunch::from_json(&json).map_err(Error::storage))?;

    // RFC 9207 §2.4: the mix-up defence, on errors as on codes.
    match (param("iss"), &pending.issuer) {
        (Some(iss), Some(issuer)) if iss == issuer => {}
        (Some(iss), _) => {
            return Err(Error::new(
                ErrorCode::IssuerMismatch,
                format!(
                    "the authorization response comes from {iss}, not from {} where this launch began (RFC 9207)",
                    pending
                        .issuer
                        .as_deref()
                        .unwrap_or("a server that names no issuer")
                ),
            ));
        }
        (None, _) if pending.iss_parameter_required => {
            return Err(Error::new(
                ErrorCode::IssuerMismatch,
                "the response has no iss, which this server promises (RFC 9207)",
            ));
        }
        (None, _) => {}
    }
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
    match accept(platform, &pending, &response).await {
        Ok(id_token_claims) => Ok(SessionState::new(
            platform.now(),
            state,
            &pending,
            response,
            id_token_claims,
        )),
        Err(error) => {
            // Tokens the app will not use are revoked, best effort: the app gets the
            // reason they were refused whatever happens here.
            if let Some(endpoint) = &pending.revocation_endpoint {
                let refresh = response.refresh_token.as_ref();
                let _ = revoke(platform, endpoint, &auth, &response.access_token, refresh).await;
            }
            Err(error)
        }
    }
}

/// Whether the token response can be used: Bearer tokens, and an id_token (if any)
/// that passes every check. Returns its claims.
async fn accept<P: Platform>(
    platform: &P,
    pending: &PendingLaunch,
    response: &TokenResponse,
) -> Result<Option<P::Json>, Error<P::Json>> {
    if !response.token_type.is_bearer() {
        return Err(Error::invalid_response(format!(
            "token_type {} is not Bearer",
            response.token_type
        )));
    }
    match &response.id_token {
        Some(id_token) => verify_id_token(platform, pending, id_token.secret())
            .await
            .map(Some),
        None => Ok(None),
    }
}

/// OpenID Connect Core §3.1.3.7: signature by a key of the server's JWKS, `iss`,
/// `aud`/`azp`, `exp` and `iat` (within the clock tolerance), and the `nonce` the
/// launch sent. Returns the claims.
async fn verify_id_token<P: Platform>(
    platform: &P,
    pending: &PendingLaunch,
    token: &str,
) -> Result<P::Json, Error<P::Json>> {
    let invalid = |why: &str| {
        Error::new(
            ErrorCode::IdTokenInvalid,
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
    let alg = header.member_string("alg").unwrap_or_default();
    // RFC 7518 §3.1's asymmetric algorithms that WebCrypto has; never `none` or HS*.
    let kty = match alg.as_str() {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => "RSA",
        "ES256" | "ES384" => "EC",
        _ => {
            return Err(invalid(&format!(
                "alg {alg} is none of RS256/384/512, PS256/384/512, ES256/384"
            )));
        }
    };
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
    // The key named by kid; without a kid, the only key of the algorithm's type.
    let mut candidates = keys.iter().filter(|k| {
        k.member_string("kty").as_deref() == Some(kty) && (kid.is_none() || k.member_string("kid") == kid)
    });
    let key = match (candidates.next(), candidates.next()) {
        (Some(key), None) => key,
        (Some(_), Some(_)) => return Err(invalid("no kid, and the JWKS has several keys")),
        (None, _) => return Err(invalid(&format!("no {kty} key in the JWKS matches its kid"))),
    };
    let message = format!("{}.{}", parts[0], parts[1]);
    let signed = platform
        .verify(&alg, key, message.as_bytes(), &decode(signature)?)
        .await
        .map_err(|e| invalid(&e))?;
    if !signed {
        return Err(invalid("bad signature"));
    }
    let claims = json(payload)?;
    check_claims(&claims, pending, platform.now()).map_err(|why| invalid(&why))?;
    Ok(claims)
}

/// The id_token's claims against what this launch expects; `now` in seconds.
fn check_claims<P: JsonValue>(claims: &P, pending: &PendingLaunch, now: u64) -> Result<(), String> {
    let issuer = pending
        .issuer
        .as_deref()
        .ok_or("the server's discovery names no issuer to check it against")?;
    let iss = claims.member_string("iss").unwrap_or_default();
    if iss != issuer {
        return Err(format!("iss {iss} is not {issuer}"));
    }
    let is_client = |value: &P| value.as_string().as_deref() == Some(pending.client_id.as_str());
    let (ours, audiences) = match claims.get("aud") {
        Some(aud) => match aud.items() {
            Some(items) => (items.iter().any(is_client), items.len()),
            None => (is_client(&aud), 1),
        },
        None => (false, 0),
    };
    if !ours {
        return Err("aud is not this client".into());
    }
    let azp = claims.get("azp");
    if (audiences > 1 || azp.is_some()) && !azp.is_some_and(|azp| is_client(&azp)) {
        return Err("azp is not this client".into());
    }
    // Messages name the u64, never the f64: float formatting would add ~8 kB of wasm.
    let seconds = pending.clock_tolerance;
    let (tolerance, now) = (seconds as f64, now as f64);
    let time = |name: &str| claims.get(name).and_then(|v| v.as_number());
    if time("exp").is_none_or(|exp| exp + tolerance <= now) {
        return Err(format!(
            "expired (or no exp), beyond the clock tolerance of {seconds} s"
        ));
    }
    if time("iat").is_some_and(|iat| iat - tolerance > now) {
        return Err(format!(
            "issued in the future, beyond the clock tolerance of {seconds} s"
        ));
    }
    if let Some(nonce) = &pending.nonce
        && claims.member_string("nonce").as_ref() != Some(nonce)
    {
        return Err("its nonce is not the one this launch sent".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use smart_protocol::PkceVerifier;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn pending(issuer: Option<&str>) -> PendingLaunch {
        PendingLaunch {
            fhir_base: "https://ehr.example/fhir".into(),
            client_id: "app".into(),
            redirect_uri: "https://app.example/".into(),
            scope: "openid fhirUser".into(),
            code_verifier: PkceVerifier::new("v".repeat(43)),
            token_endpoint: "https://ehr.example/token".into(),
            revocation_endpoint: None,
            issuer: issuer.map(Into::into),
            jwks_uri: None,
            confidential: false,
            nonce: Some("n-1".into()),
            iss_parameter_required: false,
            clock_tolerance: 60,
        }
    }

    #[test]
    fn id_token_claims_are_checked_within_the_clock_tolerance() {
        let launch = pending(Some("https://ehr.example/auth"));
        let good = json!({"iss": "https://ehr.example/auth", "aud": "app", "exp": NOW + 300, "iat": NOW, "nonce": "n-1"});
        assert_eq!(check_claims(&good, &launch, NOW), Ok(()));
        let with = |member: &str, value: Value| {
            let mut claims = good.clone();
            claims[member] = value;
            check_claims(&claims, &launch, NOW)
        };
        // Clocks may disagree by up to the tolerance (60 s here), no more.
        assert_eq!(with("exp", json!(NOW - 59)), Ok(()));
        assert!(with("exp", json!(NOW - 61)).unwrap_err().contains("expired"));
        assert_eq!(with("iat", json!(NOW + 59)), Ok(()));
        assert!(with("iat", json!(NOW + 61)).unwrap_err().contains("future"));
        assert_eq!(
            with("aud", json!(["app", "other"])).unwrap_err(),
            "azp is not this client"
        );
        let mut two_audiences = good.clone();
        two_audiences["aud"] = json!(["other", "app"]);
        two_audiences["azp"] = json!("app");
        assert_eq!(check_claims(&two_audiences, &launch, NOW), Ok(()));
        for (member, value, says) in [
            ("iss", json!("https://evil.example"), "iss"),
            ("aud", json!("other"), "aud"),
            ("azp", json!("other"), "azp"),
            ("nonce", json!("n-2"), "nonce"),
            ("nonce", Value::Null, "nonce"),
            ("exp", Value::Null, "expired"),
        ] {
            let refused = with(member, value.clone()).unwrap_err();
            assert!(refused.contains(says), "{member}={value}: {refused}");
        }
        let no_issuer = check_claims(&good, &pending(None), NOW).unwrap_err();
        assert!(no_issuer.contains("no issuer"), "{no_issuer}");
    }
}
