//! The token endpoint over real HTTP: every grant's happy path and its refusals.

use crate::common::*;
use ccri_mock::PATIENT_ACCESS_SECRET;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccri_quickstart_postman_flow() {
    let mock = start().await;
    let response = mock
        .http
        .post(mock.auth("token"))
        .basic_auth("patient-access", Some(PATIENT_ACCESS_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(response.headers()[PRAGMA], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 5400);
    assert_eq!(body["scope"], "profile patient/Patient.read user/Patient.read");
    assert_eq!(
        body["access_token"].as_str().unwrap().split('.').count(),
        3,
        "a JWT"
    );
    assert!(body.get("refresh_token").is_none());

    let token = body["access_token"].as_str().unwrap();
    let (status, patient) = mock.get_with_token(&mock.fhir("Patient/1"), token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patient["name"][0]["family"], "Kanfeld");
    assert_eq!(patient["identifier"][0]["value"], "9876543210");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_with_client_secret_post_and_narrower_scope() {
    let mock = start().await;
    let (status, body) = mock
        .token(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "clinical-access"),
                ("client_secret", "clinical-access-secret"),
                ("scope", "user/Observation.read"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "user/Observation.read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_refusals() {
    let mock = start().await;
    let cc = [("grant_type", "client_credentials")];
    // Wrong secret: 401 invalid_client with a challenge.
    let response = mock
        .http
        .post(mock.auth("token"))
        .basic_auth("patient-access", Some("wrong"))
        .form(&cc)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    let (status, body) = mock.token(Some(("nobody", "x")), &cc).await;
    assert_oauth_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");

    // A wider scope than registered.
    let (status, body) = mock
        .token(
            Some(("patient-access", PATIENT_ACCESS_SECRET)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "user/Observation.read"),
            ],
        )
        .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_scope");

    // A malformed scope.
    let (status, body) = mock
        .token(
            Some(("patient-access", PATIENT_ACCESS_SECRET)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "patient/Patient.sr"),
            ],
        )
        .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_scope");

    // Two authentication methods at once.
    let (status, body) = mock
        .token(
            Some(("patient-access", PATIENT_ACCESS_SECRET)),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "patient-access"),
                ("client_secret", "x"),
            ],
        )
        .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");

    // A public client may not use client_credentials.
    let (status, body) = mock
        .token(
            None,
            &[("grant_type", "client_credentials"), ("client_id", "demo-app")],
        )
        .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "unauthorized_client");

    // A confidential client without credentials.
    let (status, body) = mock
        .token(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "patient-access"),
            ],
        )
        .await;
    assert_oauth_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_token_requests() {
    let mock = start().await;
    let (status, body) = mock.token(None, &[("client_id", "demo-app")]).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = mock
        .token(None, &[("grant_type", "password"), ("client_id", "demo-app")])
        .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "unsupported_grant_type");
    let (status, body) = mock
        .token(
            None,
            &[("grant_type", "authorization_code"), ("client_id", "demo-app")],
        )
        .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    // Duplicate parameters (RFC 6749 §3.2).
    let (status, body) = mock
        .token(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
        )
        .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");

    // JSON instead of a form, invalid UTF-8, and garbage.
    for (content_type, body) in [
        (
            "application/json",
            b"{\"grant_type\":\"client_credentials\"}".to_vec(),
        ),
        ("application/x-www-form-urlencoded", vec![0xff, 0xfe, b'=', 0x80]),
        ("application/x-www-form-urlencoded", b"%%%&&&===".to_vec()),
    ] {
        let response = mock
            .http
            .post(mock.auth("token"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_413_not_a_crash() {
    let mock = start().await;
    let huge = format!("grant_type=client_credentials&scope={}", "a".repeat(1024 * 1024));
    let response = mock
        .http
        .post(mock.auth("token"))
        .header("content-type", "application/x-www-form-urlencoded")
        // The server answers before reading the rest and closes the connection:
        // not one for the client to reuse for the request below (a race it lost
        // now and then on the multi-threaded runtime).
        .header("connection", "close")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // And the server still answers.
    mock.patient_access_token().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_with_pkce_then_refresh() {
    let mock = start().await;
    let (code, verifier) = mock
        .code_for(
            "openid fhirUser launch/patient offline_access patient/*.rs",
            "bernie",
            None,
        )
        .await;
    let (status, body) = mock.exchange(&code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["patient"], "1");
    assert_eq!(body["need_patient_banner"], true);
    assert!(
        body["smart_style_url"]
            .as_str()
            .unwrap()
            .ends_with("/smart-style.json")
    );
    assert!(body["id_token"].is_string());
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    let (status, fresh) = mock.refresh(&refresh, None).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_ne!(fresh["access_token"], body["access_token"]);
    assert_eq!(fresh["patient"], "1");

    // Narrower is fine; wider is not.
    let (status, narrow) = mock.refresh(&refresh, Some("patient/Patient.r")).await;
    assert_eq!(
        (status, narrow["scope"].as_str()),
        (StatusCode::OK, Some("patient/Patient.r"))
    );
    let (status, wide) = mock.refresh(&refresh, Some("patient/*.cruds")).await;
    assert_oauth_error(status, &wide, StatusCode::BAD_REQUEST, "invalid_scope");

    let (status, bad) = mock.refresh("nope", None).await;
    assert_oauth_error(status, &bad, StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_refresh_token_without_offline_or_online_access() {
    let mock = start().await;
    let (code, verifier) = mock.code_for("launch/patient patient/*.rs", "bernie", None).await;
    let (status, body) = mock.exchange(&code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("id_token").is_none(), "no openid, no id_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_malformed_pkce_verifier() {
    let mock = start().await;
    let (code, _) = mock.code_for("launch/patient patient/*.rs", "bernie", None).await;
    let (other_verifier, _) = pkce();
    let (status, body) = mock.exchange(&code, &other_verifier).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");

    let (code, _) = mock.code_for("launch/patient patient/*.rs", "bernie", None).await;
    for verifier in ["", "short", &"x".repeat(129), &format!("{}!", "a".repeat(50))] {
        let (status, body) = mock.exchange(&code, verifier).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{verifier}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_replay_is_refused_and_revokes_the_tokens() {
    let mock = start().await;
    let (code, verifier) = mock
        .code_for("launch/patient offline_access patient/*.rs", "bernie", None)
        .await;
    let (status, first) = mock.exchange(&code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    let token = first["access_token"].as_str().unwrap();
    assert_eq!(
        mock.get_with_token(&mock.fhir("Patient/1"), token).await.0,
        StatusCode::OK
    );

    let (status, replay) = mock.exchange(&code, &verifier).await;
    assert_oauth_error(status, &replay, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        mock.get_with_token(&mock.fhir("Patient/1"), token).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = mock.refresh(first["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_code_is_refused() {
    let mock = start_with(|c| c.code_ttl_secs = 0).await;
    let (code, verifier) = mock.code_for("launch/patient patient/*.rs", "bernie", None).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, body) = mock.exchange(&code, &verifier).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(body["error_description"].as_str().unwrap().contains("expired"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_is_bound_to_redirect_uri_and_client() {
    let mock = start_with(|c| c.clients.push(confidential_app("other-app", "other-secret"))).await;
    let (code, verifier) = mock.code_for("launch/patient patient/*.rs", "bernie", None).await;
    let (status, body) = mock
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:5173/other"),
                ("code_verifier", &verifier),
                ("client_id", "demo-app"),
            ],
        )
        .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");

    let (code, verifier) = mock.code_for("launch/patient patient/*.rs", "bernie", None).await;
    let (status, body) = mock
        .token(
            Some(("other-app", "other-secret")),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", APP_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_token_is_bound_to_its_client() {
    let mock = start_with(|c| c.clients.push(confidential_app("other-app", "other-secret"))).await;
    let (code, verifier) = mock
        .code_for("launch/patient offline_access patient/*.rs", "bernie", None)
        .await;
    let (_, body) = mock.exchange(&code, &verifier).await;
    let (status, stolen) = mock
        .token(
            Some(("other-app", "other-secret")),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_oauth_error(status, &stolen, StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotation_replaces_the_token_and_a_reused_one_revokes_the_grant() {
    let mock = start_with(|config| config.refresh_rotation = true).await;
    let (code, verifier) = mock
        .code_for("launch/patient offline_access patient/*.rs", "bernie", None)
        .await;
    let (_, first) = mock.exchange(&code, &verifier).await;
    let original = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = mock.refresh(&original, None).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let rotated = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, original, "a new refresh token each time");
    let (status, third) = mock.refresh(&rotated, None).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    let latest = third["refresh_token"].as_str().unwrap().to_owned();
    let access = third["access_token"].as_str().unwrap().to_owned();

    // The replaced token again: someone else holds it, so the grant ends.
    let (status, body) = mock.refresh(&rotated, None).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        body["error_description"].as_str().unwrap().contains("RFC 9700"),
        "{body}"
    );
    let (status, body) = mock.refresh(&latest, None).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, _) = mock.get_with_token(&mock.fhir("Patient/1"), &access).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the grant's access tokens end too"
    );
}

// Several worker threads, so the mock serves the refreshes in parallel; ten
// rounds, because a race shows only when two requests meet inside its window.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_one_rotating_token_cannot_both_succeed() {
    let mock = start_with(|config| config.refresh_rotation = true).await;
    for _ in 0..10 {
        let (code, verifier) = mock
            .code_for("launch/patient offline_access patient/*.rs", "bernie", None)
            .await;
        let (_, first) = mock.exchange(&code, &verifier).await;
        let original = first["refresh_token"].as_str().unwrap().to_owned();
        // Eight holders of one token refresh at the same moment: one wins; the
        // others replay a replaced token, so the grant ends.
        let refresh = || mock.refresh(&original, None);
        let (a, b, c, d, e, f, g, h) = tokio::join!(
            refresh(),
            refresh(),
            refresh(),
            refresh(),
            refresh(),
            refresh(),
            refresh(),
            refresh()
        );
        let answers = [a, b, c, d, e, f, g, h];
        let winners: Vec<&Value> = answers
            .iter()
            .filter(|(status, _)| *status == StatusCode::OK)
            .map(|(_, body)| body)
            .collect();
        assert_eq!(winners.len(), 1, "{answers:?}");
        let newest = winners[0]["refresh_token"]
            .as_str()
            .expect("the winner gets the new token");
        let (status, body) = mock.refresh(newest, None).await;
        assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    }
}
