//! What strict, independent clients expect of the authorisation server: OpenID
//! `nonce`, `auth_time` and `prompt`, RFC 9068 access tokens, RFC 9207 `iss` on
//! every authorization response, SMART 2.2 introspection, and RFC 6750 errors
//! from the OpenID endpoints. Each test is a request and the exact answer.

use crate::common::*;
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::Value;

/// The demo app's authorize parameters for `scope`, plus `extra`.
fn params_with(mock: &Mock, scope: &str, challenge: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params = authorize_params(mock, scope, challenge);
    params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    params
}

/// A launch as bernie with `extra` authorize parameters; the token response.
async fn launch_with(mock: &Mock, scope: &str, extra: &[(&str, &str)]) -> Value {
    let (verifier, challenge) = pkce();
    let login = mock.authorize(&params_with(mock, scope, &challenge, extra)).await;
    let done = mock.walk(login, "bernie", None, "allow").await;
    let (status, body) = mock
        .exchange(&done.redirect_param("code").expect("a code"), &verifier)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_token_echoes_nonce_and_says_when_the_user_logged_in() {
    let mock = start().await;
    let before = jsonwebtoken::get_current_timestamp();
    let body = launch_with(
        &mock,
        "openid fhirUser offline_access patient/*.rs",
        &[("nonce", "n-0S6_WzA2Mj"), ("max_age", "300")],
    )
    .await;
    let id_token = claims_of(body["id_token"].as_str().unwrap());
    assert_eq!(id_token["nonce"], "n-0S6_WzA2Mj");
    let auth_time = id_token["auth_time"].as_u64().expect("auth_time");
    assert!((before..=before + 5).contains(&auth_time), "{id_token}");
    // OpenID Connect Core §12.2: a refreshed id_token keeps auth_time, not the nonce.
    let (status, refreshed) = mock.refresh(body["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let refreshed = claims_of(refreshed["id_token"].as_str().unwrap());
    assert_eq!(refreshed.get("nonce"), None, "{refreshed}");
    assert_eq!(refreshed["auth_time"], auth_time);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_are_rfc_9068_jwts_with_the_launch_context() {
    let mock = start().await;
    let body = launch_with(&mock, "openid fhirUser launch/patient patient/*.rs", &[]).await;
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(header_of(token)["typ"], "at+jwt");
    let claims = claims_of(token);
    for claim in [
        "iss",
        "exp",
        "aud",
        "sub",
        "client_id",
        "iat",
        "jti",
        "scope",
        "auth_time",
    ] {
        assert!(claims.get(claim).is_some(), "{claim} missing: {claims}");
    }
    assert_eq!(claims["iss"], mock.server.urls.auth_base);
    assert_eq!(claims["aud"], mock.server.urls.fhir_base);
    assert_eq!(claims["client_id"], "demo-app");
    assert_eq!(claims["patient"], "1");
    assert_eq!(claims["need_patient_banner"], true);
    // The id_token stays a plain JWT.
    assert_eq!(header_of(body["id_token"].as_str().unwrap())["typ"], "JWT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authorization_response_names_the_issuer() {
    let mock = start().await;
    let issuer = mock.server.urls.auth_base.clone();
    let config = mock.get_json(&mock.fhir(".well-known/smart-configuration")).await;
    assert_eq!(config["authorization_response_iss_parameter_supported"], true);
    let openid = mock
        .get_json(&mock.auth(".well-known/openid-configuration"))
        .await;
    assert_eq!(openid["authorization_response_iss_parameter_supported"], true);

    let (_, challenge) = pkce();
    let login = mock
        .authorize(&authorize_params(&mock, "patient/*.rs", &challenge))
        .await;
    let allowed = mock.walk(login, "bernie", None, "allow").await;
    assert_eq!(allowed.redirect_param("iss"), Some(issuer.clone()), "success");
    let login = mock
        .authorize(&authorize_params(&mock, "patient/*.rs", &challenge))
        .await;
    let denied = mock.walk(login, "bernie", None, "deny").await;
    assert_eq!(denied.redirect_param("error").as_deref(), Some("access_denied"));
    assert_eq!(denied.redirect_param("iss"), Some(issuer.clone()), "denied");
    let refused = mock
        .authorize(&params_with(
            &mock,
            "patient/*.rs",
            &challenge,
            &[("prompt", "sometimes")],
        ))
        .await;
    assert_eq!(
        refused.redirect_param("error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(refused.redirect_param("iss"), Some(issuer), "invalid request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_none_answers_from_the_browsers_session_or_says_what_is_needed() {
    let mock = start().await;
    let (verifier, challenge) = pkce();
    let silent = |scope: &str, extra: &[(&'static str, &'static str)]| {
        let mut extra = extra.to_vec();
        extra.push(("prompt", "none"));
        params_with(&mock, scope, &challenge, &extra)
    };
    // Nobody has logged in in this browser yet.
    let params = silent("patient/*.rs", &[]);
    let first = mock.authorize(&params).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(first.redirect_param("error").as_deref(), Some("login_required"));
    assert_eq!(first.redirect_param("state").as_deref(), sent(&params, "state"));

    // After bernie logs in and allows, the same request needs no page.
    launch_with(&mock, "openid fhirUser patient/*.rs", &[]).await;
    let again = mock.authorize(&silent("openid fhirUser patient/*.rs", &[])).await;
    let code = again.redirect_param("code").expect("a code without a page");
    let (status, body) = mock.exchange(&code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["patient"], "1");
    assert_eq!(
        claims_of(body["id_token"].as_str().unwrap())["fhirUser"],
        format!("{}/Patient/1", mock.server.urls.fhir_base)
    );
    // Scopes he has not allowed this client need the consent page.
    let wider = mock
        .authorize(&silent("openid fhirUser patient/*.cruds", &[]))
        .await;
    assert_eq!(wider.redirect_param("error").as_deref(), Some("consent_required"));
    // A login older than max_age needs the login page.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let stale = mock.authorize(&silent("patient/*.rs", &[("max_age", "0")])).await;
    assert_eq!(stale.redirect_param("error").as_deref(), Some("login_required"));
    // prompt=none with another value is a malformed request.
    let mixed = mock
        .authorize(&params_with(
            &mock,
            "patient/*.rs",
            &challenge,
            &[("prompt", "none login")],
        ))
        .await;
    assert_eq!(mixed.redirect_param("error").as_deref(), Some("invalid_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_none_for_a_practitioner_who_must_pick_a_patient_needs_interaction() {
    let mock = start().await;
    let (_, challenge) = pkce();
    let scope = "launch/patient patient/*.rs";
    let login = mock.authorize(&authorize_params(&mock, scope, &challenge)).await;
    mock.walk(login, "dr.harrison", Some("3"), "allow").await;
    let silent = mock
        .authorize(&params_with(&mock, scope, &challenge, &[("prompt", "none")]))
        .await;
    assert_eq!(
        silent.redirect_param("error").as_deref(),
        Some("interaction_required")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_login_and_skip_auth_answer_prompt_login_and_consent_themselves() {
    // They stand for a person who logs in and allows at once, so a client that sends
    // prompt=consent by default (OpenID Connect Core §11) still launches without a page.
    let mock = start_without_pages().await;
    let (_, challenge) = pkce();
    for prompt in [None, Some("login"), Some("consent"), Some("login consent")] {
        let extra: Vec<(&str, &str)> = prompt.map(|p| ("prompt", p)).into_iter().collect();
        let answered = mock
            .authorize(&params_with(&mock, "patient/*.rs", &challenge, &extra))
            .await;
        assert!(
            answered.redirect_param("code").is_some(),
            "prompt={prompt:?}: {}",
            answered.html
        );
    }
    // Without the switches, prompt=login shows the login page to a browser that has
    // just logged in.
    let mock = start().await;
    let (_, challenge) = pkce();
    mock.code_for("patient/*.rs", "bernie", None).await;
    let shown = mock
        .authorize(&params_with(
            &mock,
            "patient/*.rs",
            &challenge,
            &[("prompt", "login")],
        ))
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.html.contains("Log in"), "{}", shown.html);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_returns_the_launch_context_to_a_resource_servers_bearer_token() {
    let mock = start().await;
    let body = launch_with(&mock, "openid fhirUser launch/patient patient/*.rs", &[]).await;
    let user_token = body["access_token"].as_str().unwrap();
    // The resource server's own token: client credentials, no user.
    let resource_server = mock.patient_access_token().await;
    let introspect = |bearer: &str| {
        mock.http
            .post(mock.auth("introspect"))
            .bearer_auth(bearer)
            .form(&[("token", user_token)])
            .send()
    };
    let response = introspect(&resource_server).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["client_id"], "demo-app");
    assert_eq!(answer["scope"], "openid fhirUser launch/patient patient/*.rs");
    assert_eq!(answer["patient"], "1");
    assert_eq!(answer["need_patient_banner"], true);
    assert_eq!(answer["smart_style_url"], mock.auth("smart-style.json"));
    assert_eq!(
        answer["fhirUser"],
        format!("{}/Patient/1", mock.server.urls.fhir_base)
    );
    assert_eq!(
        answer["exp"],
        body["expires_in"].as_u64().unwrap() + answer["iat"].as_u64().unwrap()
    );
    // An app's user token may not read other tokens, nor may a forged one.
    for bearer in [user_token, "not.a.token"] {
        let response = introspect(bearer).await.unwrap();
        let status = response.status();
        let refused: Value = response.json().await.unwrap();
        assert_oauth_error(status, &refused, StatusCode::UNAUTHORIZED, "invalid_client");
        assert!(refused.get("active").is_none(), "{refused}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_refuses_a_bad_token_the_openid_way() {
    let mock = start().await;
    let response = mock
        .http
        .get(mock.auth("userinfo"))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with(r#"Bearer realm="ccri-auth", error="invalid_token", error_description=""#),
        "{challenge}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token", "{body}");
    assert!(body.get("resourceType").is_none(), "{body}");
    // No token at all: a challenge without an error code (RFC 6750 §3.1).
    let response = mock.http.get(mock.auth("userinfo")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        r#"Bearer realm="ccri-auth""#
    );
    // The FHIR API still answers an OperationOutcome.
    let (status, outcome) = mock.get_with_token(&mock.fhir("Patient/1"), "not.a.token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_signed_with_the_configured_algorithm_and_verify_against_the_jwks() {
    for (alg, algorithm, kty) in [
        (
            ccri_mock::SigningAlg::RS256,
            jsonwebtoken::Algorithm::RS256,
            "RSA",
        ),
        (
            ccri_mock::SigningAlg::PS256,
            jsonwebtoken::Algorithm::PS256,
            "RSA",
        ),
        (ccri_mock::SigningAlg::ES256, jsonwebtoken::Algorithm::ES256, "EC"),
    ] {
        let mock = start_with(|config| config.signing_alg = alg).await;
        let discovery = mock
            .get_json(&mock.auth(".well-known/openid-configuration"))
            .await;
        assert_eq!(
            discovery["id_token_signing_alg_values_supported"],
            serde_json::json!([format!("{alg:?}")])
        );
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_value(mock.get_json(&mock.auth("jwk")).await).unwrap();
        let jwk = &jwks.keys[0];
        assert_eq!(serde_json::to_value(jwk).unwrap()["kty"], kty, "{alg:?}");
        let token = mock.patient_access_token().await;
        let header = header_of(&token);
        assert_eq!(
            (header["alg"].as_str(), header["kid"].as_str()),
            (Some(format!("{alg:?}").as_str()), jwk.common.key_id.as_deref()),
        );
        // An independent verifier accepts it with the published key…
        let mut validation = jsonwebtoken::Validation::new(algorithm);
        validation.set_audience(&[&mock.server.urls.fhir_base]);
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
        // …and so does the FHIR API.
        let (status, patient) = mock.get_with_token(&mock.fhir("Patient/1"), &token).await;
        assert_eq!(status, StatusCode::OK, "{alg:?}: {patient}");
    }
}
