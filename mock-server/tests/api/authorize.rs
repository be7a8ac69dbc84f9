//! The authorization endpoint and its pages, driven with form posts as a browser would.

use crate::common::*;
use reqwest::StatusCode;

fn with(mut params: Vec<(String, String)>, name: &str, value: Option<&str>) -> Vec<(String, String)> {
    params.retain(|(k, _)| k != name);
    if let Some(value) = value {
        params.push((name.to_owned(), value.to_owned()));
    }
    params
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_client_or_redirect_uri_gets_an_error_page_never_a_redirect() {
    let mock = start().await;
    let (_, challenge) = pkce();
    let base = authorize_params(&mock, "launch/patient patient/*.rs", &challenge);
    for params in [
        with(base.clone(), "client_id", Some("no-such-app")),
        with(base.clone(), "redirect_uri", Some("https://evil.example/steal")),
        with(
            base.clone(),
            "redirect_uri",
            Some("http://127.0.0.1:5173/?extra=1"),
        ),
        with(base.clone(), "redirect_uri", None),
    ] {
        let page = mock.authorize(&params).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{params:?}");
        assert!(page.location.is_none(), "{params:?}");
        assert!(page.html.contains("cannot continue"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_go_back_to_the_app_with_error_and_state() {
    let mock = start().await;
    let (_, challenge) = pkce();
    let base = authorize_params(&mock, "launch/patient patient/*.rs", &challenge);
    let cases = [
        (with(base.clone(), "code_challenge", None), "invalid_request"),
        (
            with(base.clone(), "code_challenge", Some("  ")),
            "invalid_request",
        ),
        (
            with(base.clone(), "code_challenge_method", Some("plain")),
            "invalid_request",
        ),
        (
            with(base.clone(), "code_challenge_method", None),
            "invalid_request",
        ),
        (
            with(base.clone(), "aud", Some("https://other.example/fhir")),
            "invalid_request",
        ),
        (with(base.clone(), "aud", None), "invalid_request"),
        (
            with(base.clone(), "response_type", Some("token")),
            "unsupported_response_type",
        ),
        (
            with(base.clone(), "scope", Some("patient/Observation.sr")),
            "invalid_scope",
        ),
        (
            with(base.clone(), "scope", Some("system/*.cruds")),
            "invalid_scope",
        ),
        (with(base.clone(), "scope", None), "invalid_scope"),
        (
            with(base.clone(), "launch", Some("no-such-launch")),
            "invalid_request",
        ),
    ];
    for (params, error) in cases {
        let page = mock.authorize(&params).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{params:?}");
        assert!(page.location.as_deref().unwrap().starts_with(APP_REDIRECT));
        assert_eq!(page.redirect_param("error").as_deref(), Some(error), "{params:?}");
        assert_eq!(page.redirect_param("state").as_deref(), sent(&params, "state"));
        assert!(page.redirect_param("error_description").is_some());
    }
    // No state at all: still an error, without one.
    let page = mock.authorize(&with(base, "state", None)).await;
    assert_eq!(page.redirect_param("error").as_deref(), Some("invalid_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_is_a_synonym_for_aud() {
    let mock = start().await;
    let (_, challenge) = pkce();
    let params = authorize_params(&mock, "launch/patient patient/*.rs", &challenge);
    let fhir_base = mock.server.urls.fhir_base.clone();
    let params = with(with(params, "aud", None), "resource", Some(&fhir_base));
    let page = mock.authorize(&params).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Log in"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_page_lists_the_test_users_and_refuses_a_wrong_password() {
    let mock = start().await;
    let (_, challenge) = pkce();
    let login = mock
        .authorize(&authorize_params(
            &mock,
            "launch/patient patient/*.rs",
            &challenge,
        ))
        .await;
    assert!(login.html.contains("bernie") && login.html.contains("dr.harrison"));
    let txn = login.txn();
    let again = mock
        .post_page(
            "authorize/login",
            &[("txn", &txn), ("username", "bernie"), ("password", "nope")],
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.html.contains("wrong password"));
    assert_eq!(again.txn(), txn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_denied_redirects_with_access_denied() {
    let mock = start().await;
    let (_, challenge) = pkce();
    let params = authorize_params(&mock, "launch/patient patient/*.rs", &challenge);
    let login = mock.authorize(&params).await;
    let done = mock.walk(login, "bernie", None, "deny").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.redirect_param("error").as_deref(), Some("access_denied"));
    assert_eq!(done.redirect_param("state").as_deref(), sent(&params, "state"));
    assert!(done.redirect_param("code").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn practitioner_picks_a_patient() {
    let mock = start().await;
    let (code, verifier) = mock
        .code_for(
            "openid fhirUser launch/patient patient/*.rs",
            "dr.harrison",
            Some("3"),
        )
        .await;
    let (status, body) = mock.exchange(&code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["patient"], "3");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        mock.get_with_token(&mock.fhir("Patient/3"), token).await.0,
        StatusCode::OK
    );
    assert_eq!(
        mock.get_with_token(&mock.fhir("Patient/1"), token).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_post_works_like_get() {
    let mock = start().await;
    let (_, challenge) = pkce();
    let params = authorize_params(&mock, "launch/patient patient/*.rs", &challenge);
    let login = page(
        mock.http
            .post(mock.auth("authorize"))
            .form(&params)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(login.html.contains("Log in"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_transaction_cannot_be_replayed() {
    let mock = start().await;
    let (_, challenge) = pkce();
    let login = mock
        .authorize(&authorize_params(
            &mock,
            "launch/patient patient/*.rs",
            &challenge,
        ))
        .await;
    let txn = login.txn();
    mock.walk(login, "bernie", None, "allow").await;
    let replay = mock
        .post_page("authorize/consent", &[("txn", &txn), ("decision", "allow")])
        .await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.location.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_login_and_skip_auth_complete_without_pages() {
    let mock = start_without_pages().await;
    let (verifier, challenge) = pkce();
    let done = mock
        .authorize(&authorize_params(
            &mock,
            "launch/patient patient/*.rs",
            &challenge,
        ))
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let code = done.redirect_param("code").unwrap();
    let (status, body) = mock.exchange(&code, &verifier).await;
    assert_eq!((status, body["patient"].as_str()), (StatusCode::OK, Some("1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_may_grant_less_than_the_app_asks_for() {
    let mock = start().await;
    let scope = "openid fhirUser launch/patient patient/Patient.rs patient/Observation.rs";
    let (verifier, challenge) = pkce();
    let login = mock.authorize(&authorize_params(&mock, scope, &challenge)).await;
    let txn = login.txn();
    let consent = mock.log_in(&txn, "bernie").await;
    // One box a scope, ticked; Observation may be narrowed; the patient in context stays.
    for shown in [
        r#"name="scope" value="patient/Patient.rs" checked"#,
        r#"<option value="patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory">"#,
        r#"<input type="hidden" name="scope" value="launch/patient">"#,
    ] {
        assert!(consent.html.contains(shown), "{shown}: {}", consent.html);
    }
    let laboratory = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
    let done = mock
        .post_page(
            "authorize/consent",
            &[
                ("txn", txn.as_str()),
                ("choices", "shown"),
                ("scope", "openid"),
                ("scope", laboratory),
                ("decision", "allow"),
            ],
        )
        .await;
    let (status, body) = mock
        .exchange(&done.redirect_param("code").unwrap(), &verifier)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Exactly what was granted: the unticked scopes are gone, launch/patient was kept.
    assert_eq!(body["scope"], format!("openid {laboratory} launch/patient"));
    assert!(body.get("id_token").is_some());
    let token = body["access_token"].as_str().unwrap();
    let (status, _) = mock.get_with_token(&mock.fhir("Patient/1"), token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "Patient.rs was unticked");
    let (status, bundle) = mock
        .get_with_token(&mock.fhir("Observation?patient=1&_count=100"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let categories: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["resource"]["category"][0]["coding"][0]["code"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(categories, vec!["laboratory"; 5]);

    // A scope the app did not ask for cannot be slipped in, and allowing nothing is a denial.
    for (extra, error) in [
        (Some("patient/*.cruds"), "invalid_request"),
        (None, "access_denied"),
    ] {
        let (_, challenge) = pkce();
        let login = mock
            .authorize(&authorize_params(&mock, "openid patient/Patient.rs", &challenge))
            .await;
        let txn = login.txn();
        mock.log_in(&txn, "bernie").await;
        let mut form = vec![("txn", txn.as_str()), ("choices", "shown"), ("decision", "allow")];
        form.extend(extra.map(|scope| ("scope", scope)));
        let refused = mock.post_page("authorize/consent", &form).await;
        assert_eq!(
            refused.redirect_param("error").as_deref(),
            Some(error),
            "{extra:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_launch_can_pick_an_encounter() {
    let mock = start().await;
    let scope = "launch/patient launch/encounter patient/*.rs";
    for (chosen, expected) in [
        (None, Some("enc-1-9")),
        (Some("AUTO"), Some("enc-1-9")),
        (Some("enc-1-2"), Some("enc-1-2")),
        (Some("NONE"), None),
    ] {
        let (verifier, challenge) = pkce();
        let login = mock.authorize(&authorize_params(&mock, scope, &challenge)).await;
        let txn = login.txn();
        let consent = mock.log_in(&txn, "bernie").await;
        assert!(
            consent.html.contains(r#"<option value="enc-1-2">"#),
            "{}",
            consent.html
        );
        let mut form = vec![("txn", txn.as_str()), ("decision", "allow")];
        if let Some(encounter) = chosen {
            form.extend([
                ("choices", "shown"),
                ("scope", "launch/encounter"),
                ("scope", "patient/*.rs"),
                ("encounter", encounter),
            ]);
        }
        let done = mock.post_page("authorize/consent", &form).await;
        let (status, body) = mock
            .exchange(&done.redirect_param("code").unwrap(), &verifier)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["encounter"].as_str(), expected, "{chosen:?}");
    }
    // Someone else's encounter cannot be slipped in.
    let (_, challenge) = pkce();
    let login = mock.authorize(&authorize_params(&mock, scope, &challenge)).await;
    let txn = login.txn();
    mock.log_in(&txn, "bernie").await;
    let refused = mock
        .post_page(
            "authorize/consent",
            &[
                ("txn", &txn),
                ("decision", "allow"),
                ("choices", "shown"),
                ("scope", "patient/*.rs"),
                ("encounter", "enc-3"),
            ],
        )
        .await;
    assert_eq!(
        refused.redirect_param("error").as_deref(),
        Some("invalid_request")
    );
}
