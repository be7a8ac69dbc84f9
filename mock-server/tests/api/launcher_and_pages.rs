//! The EHR launch simulator, the registration page, simulated errors, automation
//! switches and the TOML configuration.

use std::io::Write;

use crate::common::*;
use ccri_mock::Config;
use reqwest::StatusCode;
use serde_json::json;

/// Posts the launcher form and returns the `launch` id from the redirect to the app.
async fn ehr_launch(mock: &Mock, form: &[(&str, &str)]) -> String {
    let page = mock.post_page("launcher", form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let location = page.location.clone().unwrap();
    assert!(location.starts_with("http://127.0.0.1:5173/app?"), "{location}");
    assert_eq!(
        page.redirect_param("iss").as_deref(),
        Some(mock.server.urls.fhir_base.as_str())
    );
    page.redirect_param("launch").unwrap()
}

fn with_launch(mock: &Mock, challenge: &str, scope: &str, launch: &str) -> Vec<(String, String)> {
    let mut params = authorize_params(mock, scope, challenge);
    params.push(("launch".into(), launch.into()));
    params
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ehr_launch_carries_patient_and_encounter() {
    let mock = start().await;
    let launcher = page(mock.http.get(mock.auth("launcher")).send().await.unwrap()).await;
    assert!(launcher.html.contains("Bernie Kanfeld") && launcher.html.contains("enc-1"));
    let launch = ehr_launch(
        &mock,
        &[
            ("launch_url", "http://127.0.0.1:5173/app"),
            ("client_id", "demo-app"),
            ("patient", "1"),
            ("practitioner", "Practitioner/2"),
            ("encounter", "enc-1"),
        ],
    )
    .await;
    let (verifier, challenge) = pkce();
    // The practitioner is logged in by the "EHR": the consent page comes first.
    let consent = mock
        .authorize(&with_launch(
            &mock,
            &challenge,
            "launch openid fhirUser patient/*.rs",
            &launch,
        ))
        .await;
    assert!(consent.html.contains("Allow"), "{}", consent.html);
    let done = mock
        .post_page(
            "authorize/consent",
            &[("txn", &consent.txn()), ("decision", "allow")],
        )
        .await;
    let (status, body) = mock
        .exchange(&done.redirect_param("code").unwrap(), &verifier)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["patient"], "1");
    assert_eq!(body["encounter"], "enc-1");
    assert_eq!(body["need_patient_banner"], false);
    assert!(body["id_token"].is_string());

    // Without the `launch` scope a launch id is refused.
    let launch = ehr_launch(
        &mock,
        &[
            ("launch_url", "http://127.0.0.1:5173/app"),
            ("client_id", "demo-app"),
            ("patient", "1"),
        ],
    )
    .await;
    let (_, challenge) = pkce();
    let refused = mock
        .authorize(&with_launch(&mock, &challenge, "patient/*.rs", &launch))
        .await;
    assert_eq!(refused.redirect_param("error").as_deref(), Some("invalid_scope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ehr_launch_carries_fhir_context_intent_tenant_and_the_banner_choice() {
    let mock = start().await;
    let launch = ehr_launch(
        &mock,
        &[
            ("launch_url", "http://127.0.0.1:5173/app"),
            ("client_id", "demo-app"),
            ("patient", "8"),
            ("practitioner", "Practitioner/2"),
            ("fhir_context", "DocumentReference/doc-8-1\r\n"),
            ("encounter", "AUTO"),
            ("intent", "reconcile-medications"),
            ("tenant", "ward-7"),
            ("banner", "true"),
            ("skip_auth", "true"),
        ],
    )
    .await;
    let (verifier, challenge) = pkce();
    let done = mock
        .authorize(&with_launch(&mock, &challenge, "launch patient/*.rs", &launch))
        .await;
    let (status, body) = mock
        .exchange(&done.redirect_param("code").unwrap(), &verifier)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["patient"], "8");
    assert_eq!(
        body["fhirContext"],
        json!([{"reference": "DocumentReference/doc-8-1"}])
    );
    assert_eq!(body["intent"], "reconcile-medications");
    assert_eq!(body["tenant"], "ward-7");
    assert_eq!(body["need_patient_banner"], true);

    // A practitioner-only launch (scheduling, admin apps): no patient in context.
    let launch = ehr_launch(
        &mock,
        &[
            ("launch_url", "http://127.0.0.1:5173/app"),
            ("client_id", "demo-app"),
            ("patient", ""),
            ("practitioner", "Practitioner/2"),
            ("skip_auth", "true"),
        ],
    )
    .await;
    let (verifier, challenge) = pkce();
    let done = mock
        .authorize(&with_launch(
            &mock,
            &challenge,
            "launch openid fhirUser user/*.rs",
            &launch,
        ))
        .await;
    let (status, body) = mock
        .exchange(&done.redirect_param("code").unwrap(), &verifier)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.get("patient").is_none() && body.get("need_patient_banner").is_none(),
        "{body}"
    );
    assert_eq!(
        claims_of(body["id_token"].as_str().unwrap())["sub"],
        "Practitioner/2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launcher_refuses_inconsistent_context() {
    let mock = start().await;
    for (form, message) in [
        (
            vec![
                ("launch_url", "javascript:alert(1)"),
                ("client_id", "demo-app"),
                ("patient", "1"),
            ],
            "absolute http",
        ),
        (
            vec![
                ("launch_url", "https://phish.example/login"),
                ("client_id", "demo-app"),
                ("patient", "1"),
            ],
            "origin of one of demo-app",
        ),
        (
            vec![
                ("launch_url", "http://127.0.0.1:5173/app"),
                ("client_id", "demo-app"),
                ("patient", "999"),
            ],
            "does not exist",
        ),
        (
            vec![
                ("launch_url", "http://127.0.0.1:5173/app"),
                ("client_id", "demo-app"),
                ("patient", "3"),
                ("encounter", "enc-1"),
            ],
            "not an encounter of",
        ),
        (
            vec![
                ("launch_url", "http://127.0.0.1:5173/app"),
                ("client_id", "demo-app"),
                ("patient", "1"),
                ("simulate_error", "boom"),
            ],
            "unknown simulated",
        ),
        (
            vec![
                ("launch_url", "http://127.0.0.1:5173/app"),
                ("client_id", "demo-app"),
                ("patient", "1"),
                ("fhir_context", "DocumentReference/nope"),
            ],
            "DocumentReference/nope does not exist",
        ),
        (
            vec![
                ("launch_url", "http://127.0.0.1:5173/app"),
                ("client_id", "demo-app"),
                ("patient", "1"),
                ("fhir_context", "a form"),
            ],
            "is not a FHIR reference",
        ),
        (
            vec![
                ("launch_url", "http://127.0.0.1:5173/app"),
                ("client_id", "demo-app"),
                ("patient", ""),
                ("encounter", "enc-1"),
            ],
            "an encounter needs a patient",
        ),
    ] {
        let page = mock.post_page("launcher", &form).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.location.is_none());
        assert!(page.html.contains(message), "{message}: {}", page.html);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_errors_per_launch() {
    let mock = start().await;
    let launch_with = |error: &'static str| {
        let mock = &mock;
        async move {
            ehr_launch(
                mock,
                &[
                    ("launch_url", "http://127.0.0.1:5173/app"),
                    ("client_id", "demo-app"),
                    ("patient", "1"),
                    ("practitioner", "Practitioner/2"),
                    ("skip_auth", "true"),
                    ("simulate_error", error),
                ],
            )
            .await
        }
    };
    let scope = "launch offline_access patient/*.rs";

    let (_, challenge) = pkce();
    let page = mock
        .authorize(&with_launch(
            &mock,
            &challenge,
            scope,
            &launch_with("auth_invalid_client_id").await,
        ))
        .await;
    assert_eq!(
        (page.status, page.location.is_none()),
        (StatusCode::BAD_REQUEST, true)
    );

    let (_, challenge) = pkce();
    let page = mock
        .authorize(&with_launch(
            &mock,
            &challenge,
            scope,
            &launch_with("auth_invalid_scope").await,
        ))
        .await;
    assert_eq!(page.redirect_param("error").as_deref(), Some("invalid_scope"));

    let (verifier, challenge) = pkce();
    let page = mock
        .authorize(&with_launch(
            &mock,
            &challenge,
            scope,
            &launch_with("token_invalid_token").await,
        ))
        .await;
    let (status, body) = mock
        .exchange(&page.redirect_param("code").unwrap(), &verifier)
        .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");

    let (verifier, challenge) = pkce();
    let page = mock
        .authorize(&with_launch(
            &mock,
            &challenge,
            scope,
            &launch_with("token_invalid_scope").await,
        ))
        .await;
    let (status, body) = mock
        .exchange(&page.redirect_param("code").unwrap(), &verifier)
        .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_scope");

    let (verifier, challenge) = pkce();
    let page = mock
        .authorize(&with_launch(
            &mock,
            &challenge,
            scope,
            &launch_with("request_expired_token").await,
        ))
        .await;
    let (status, body) = mock
        .exchange(&page.redirect_param("code").unwrap(), &verifier)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = mock
        .get_with_token(&mock.fhir("Patient/1"), body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (verifier, challenge) = pkce();
    let page = mock
        .authorize(&with_launch(
            &mock,
            &challenge,
            scope,
            &launch_with("token_expired_refresh_token").await,
        ))
        .await;
    let (_, body) = mock
        .exchange(&page.redirect_param("code").unwrap(), &verifier)
        .await;
    let (status, body) = mock.refresh(body["refresh_token"].as_str().unwrap(), None).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_automation_switches_launch_without_a_person() {
    let mock = start().await;
    let (status, registered) = mock
        .register(json!({
            "redirect_uris": [APP_REDIRECT],
            "token_endpoint_auth_method": "none",
            "skip_login": "dr.harrison",
            "skip_auth": true
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let client_id = registered["client_id"].as_str().unwrap();
    let (verifier, challenge) = pkce();
    let params: Vec<_> = authorize_params(&mock, "openid fhirUser user/*.rs", &challenge)
        .into_iter()
        .map(|(k, v)| {
            if k == "client_id" {
                (k, client_id.to_owned())
            } else {
                (k, v)
            }
        })
        .collect();
    let done = mock.authorize(&params).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let (status, body) = mock
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &done.redirect_param("code").unwrap()),
                ("redirect_uri", APP_REDIRECT),
                ("code_verifier", &verifier),
                ("client_id", client_id),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = mock
        .register(json!({"redirect_uris": [APP_REDIRECT], "skip_login": "nobody"}))
        .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_client_metadata");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_page_registers_and_lists_clients() {
    let mock = start().await;
    let list = page(mock.http.get(mock.auth("clients")).send().await.unwrap()).await;
    assert!(list.html.contains("patient-access") && list.html.contains("New Client"));
    let done = mock
        .post_page(
            "clients",
            &[
                ("client_name", "Browser app"),
                ("redirect_uris", "http://localhost:3000/cb\n"),
                ("confidential", "true"),
            ],
        )
        .await;
    assert!(done.html.contains("registered-client-secret"), "{}", done.html);
    assert!(done.html.contains("Browser app"));
    let refused = mock
        .post_page(
            "clients",
            &[
                ("client_name", "Bad"),
                ("redirect_uris", "http://evil.example/cb"),
            ],
        )
        .await;
    assert!(refused.html.contains("invalid_redirect_uri"), "{}", refused.html);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toml_config_adds_clients_and_users_to_the_built_in_ones() {
    let mut file = tempfile();
    writeln!(
        file.1,
        r#"
token_ttl_secs = 300

[[clients]]
client_id = "my-app"
redirect_uris = ["http://localhost:3000/callback"]
scope = "openid launch/patient patient/*.rs"
skip_auth = true

[[clients]]
client_id = "hashed-backend"
# SHA-256 of "hashed-secret": the file need not hold the secret.
client_secret_sha256 = "{digest}"
grant_types = ["client_credentials"]
scope = "system/Patient.rs"

[[users]]
username = "kevin"
password = "secret"
name = "Kevin Jones"
fhir_user = "Patient/3"
"#,
        digest = {
            use sha2::Digest;
            format!("{:x}", sha2::Sha256::digest(b"hashed-secret"))
        }
    )
    .unwrap();
    let config = Config::from_file(&file.0).unwrap();
    assert_eq!(config.token_ttl_secs, 300);
    assert!(
        config
            .clients
            .iter()
            .any(|c| c.client_id == "my-app" && c.skip_auth)
    );
    assert!(config.clients.iter().any(|c| c.client_id == "patient-access"));
    assert!(config.user("kevin").is_some() && config.user("bernie").is_some());
    // A client whose secret the file holds only as a digest authenticates with the secret.
    let mock = start_with(|c| c.clients.clone_from(&config.clients)).await;
    let form = [("grant_type", "client_credentials")];
    let (status, body) = mock.token(Some(("hashed-backend", "hashed-secret")), &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = mock.token(Some(("hashed-backend", "a guess")), &form).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    writeln!(file.1, "unknown_setting = 1").unwrap();
    let error = Config::from_file(&file.0).unwrap_err().to_string();
    assert!(error.contains("unknown_setting"), "{error}");
    std::fs::remove_file(&file.0).unwrap();
}

fn tempfile() -> (std::path::PathBuf, std::fs::File) {
    let path = std::env::temp_dir().join(format!("ccri-mock-{}.toml", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    (path, file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_can_be_a_link_that_launches_afresh_each_time() {
    let mock = start().await;
    let query = serde_urlencoded::to_string([
        ("launch_url", "http://127.0.0.1:5173/app"),
        ("client_id", "demo-app"),
        ("patient", "1"),
        ("practitioner", "Practitioner/2"),
        ("skip_auth", "true"),
    ])
    .unwrap();
    let shown = mock
        .get_page(&format!("{}?{query}", mock.auth("launcher/link")))
        .await;
    let link = format!("{}?{query}", mock.auth("launcher/open"));
    assert!(shown.html.contains(&link.replace('&', "&#38;")), "{}", shown.html);
    let mut launches = Vec::new();
    for _ in 0..2 {
        let opened = mock.get_page(&link).await;
        assert_eq!(opened.status, StatusCode::SEE_OTHER);
        assert!(
            opened
                .location
                .as_deref()
                .unwrap()
                .starts_with("http://127.0.0.1:5173/app?")
        );
        launches.push(opened.redirect_param("launch").unwrap());
    }
    assert_ne!(launches[0], launches[1], "each visit makes its own launch");
    let (verifier, challenge) = pkce();
    let done = mock
        .authorize(&with_launch(
            &mock,
            &challenge,
            "launch patient/*.rs",
            &launches[1],
        ))
        .await;
    let (status, body) = mock
        .exchange(&done.redirect_param("code").unwrap(), &verifier)
        .await;
    assert_eq!(
        (status, body["patient"].as_str()),
        (StatusCode::OK, Some("1")),
        "{body}"
    );

    // Neither a link nor a form elsewhere can send the browser to a site the app
    // does not own.
    let foreign = serde_urlencoded::to_string([
        ("launch_url", "https://phish.example/login"),
        ("client_id", "demo-app"),
        ("patient", "1"),
    ])
    .unwrap();
    let refused = mock
        .get_page(&format!("{}?{foreign}", mock.auth("launcher/open")))
        .await;
    assert_eq!(
        (refused.status, refused.location.is_none()),
        (StatusCode::BAD_REQUEST, true)
    );
    assert!(
        refused.html.contains("origin of one of demo-app"),
        "{}",
        refused.html
    );
}

/// "Make a link" for any app: the link is signed, works for an app this mock has
/// never seen (public, or confidential with the secret the link names), and refuses
/// to be changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_link_launches_an_app_with_no_registration() {
    let mock = start().await;
    let link_for = async |extra: &[(&str, &str)]| {
        let mut choices = vec![
            ("launch_url", "http://127.0.0.1:5173/app"),
            ("client_id", ""),
            ("patient", "1"),
            ("practitioner", "Practitioner/2"),
            ("skip_auth", "true"),
        ];
        choices.extend_from_slice(extra);
        let (link, _) = launch_links(&mock, &choices).await;
        assert!(link.starts_with(&mock.auth("launch/")), "{link}");
        link
    };
    let callback = "http://127.0.0.1:5173/app/callback";
    // The app, unknown to the mock, follows the link and launches with its own client_id.
    let launch_with = async |link: &str, client_id: &str, redirect_uri: &str| {
        let opened = mock.get_page(link).await;
        assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.html);
        let (verifier, challenge) = pkce();
        let mut params = with_launch(
            &mock,
            &challenge,
            "launch patient/*.rs",
            &opened.redirect_param("launch").unwrap(),
        );
        set_param(&mut params, "client_id", client_id);
        set_param(&mut params, "redirect_uri", redirect_uri);
        (mock.authorize(&params).await, verifier)
    };

    let public = link_for(&[]).await;
    let (done, verifier) = launch_with(&public, "never-registered", callback).await;
    let code = done
        .redirect_param("code")
        .expect("a code for an app with no registration");
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", callback),
        ("code_verifier", verifier.as_str()),
        ("client_id", "never-registered"),
    ];
    let (status, body) = mock.token(None, &exchange).await;
    assert_eq!(
        (status, body["patient"].as_str()),
        (StatusCode::OK, Some("1")),
        "{body}"
    );

    // Confidential: the secret the link names, and only it.
    let confidential = link_for(&[("client_type", "symmetric"), ("client_secret", "s3cret")]).await;
    // A link is signed, not encrypted, and travels in URLs: it holds a digest of the secret.
    let payload = confidential
        .rsplit('/')
        .next()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let payload = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
    let payload = String::from_utf8(payload).unwrap();
    assert!(
        !payload.contains("s3cret") && payload.contains("client_secret_sha256"),
        "{payload}"
    );
    let (done, verifier) = launch_with(&confidential, "a-confidential-app", callback).await;
    let code = done.redirect_param("code").unwrap();
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", callback),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, _) = mock.token(Some(("a-confidential-app", "wrong")), &exchange).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = mock
        .token(Some(("a-confidential-app", "s3cret")), &exchange)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // An app on another origin is not taken in; a link changed on the way is refused;
    // an unsigned link cannot launch an app with no registration.
    let (refused, _) = launch_with(&public, "elsewhere", "https://phish.example/cb").await;
    assert_eq!(
        (refused.status, refused.location.is_none()),
        (StatusCode::BAD_REQUEST, true)
    );
    let (header, rest) = public.rsplit_once('/').unwrap().1.split_once('.').unwrap();
    let forged_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"launch_url":"http://127.0.0.1:5173/app","client_id":"","patient":"3","skip_auth":"true"}"#,
    );
    let signature = rest.split_once('.').unwrap().1;
    let forged = mock.auth(&format!("launch/{header}.{forged_claims}.{signature}"));
    let refused = mock.get_page(&forged).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.html.contains("not made by this mock"), "{}", refused.html);
    let unsigned = serde_urlencoded::to_string([
        ("launch_url", "http://127.0.0.1:5173/app"),
        ("client_id", ""),
        ("patient", "1"),
    ])
    .unwrap();
    let refused = mock
        .get_page(&format!("{}?{unsigned}", mock.auth("launcher/open")))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.html.contains("needs a signed link"), "{}", refused.html);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_given_as_iss_reproduces_a_standalone_launch_for_any_app() {
    let mock = start().await;
    let (_, iss) = launch_links(
        &mock,
        &[
            ("launch_url", "http://127.0.0.1:5173/app"),
            ("client_id", ""),
            ("patient", "1"),
            ("practitioner", "Practitioner/2"),
            ("encounter", "enc-1"),
            ("intent", "summary"),
            ("skip_auth", "true"),
            ("pkce", "app"),
        ],
    )
    .await;
    assert!(iss.starts_with(&mock.fhir("launch/")), "{iss}");

    // The app discovers through the link's base as through any FHIR base.
    let smart = mock
        .get_json(&format!("{iss}/.well-known/smart-configuration"))
        .await;
    assert_eq!(smart["authorization_endpoint"], mock.auth("authorize"));
    let metadata = mock.get_json(&format!("{iss}/metadata")).await;
    assert_eq!(metadata["implementation"]["url"], iss.as_str());

    // An app the mock never saw, standalone (no `launch`), without PKCE as the link allows.
    let callback = "http://127.0.0.1:5173/app/callback";
    let authorize = |client_id: &str, challenge: Option<&str>| {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", callback),
            (
                "scope",
                "launch/patient launch/encounter patient/*.cruds user/Practitioner.rs openid fhirUser",
            ),
            ("state", "s-1"),
            ("aud", iss.as_str()),
        ];
        if let Some(challenge) = challenge {
            params.extend([("code_challenge", challenge), ("code_challenge_method", "S256")]);
        }
        params
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    };
    let done = mock.authorize(&authorize("standalone-app", None)).await;
    let code = done
        .redirect_param("code")
        .unwrap_or_else(|| panic!("{:?} {}", done.location, done.html));
    let redeem = async |code: &str, verifier: Option<&str>| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", callback),
            ("client_id", "standalone-app"),
        ];
        form.extend(verifier.map(|v| ("code_verifier", v)));
        mock.token(None, &form).await
    };
    let (status, body) = redeem(&code, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            &body["patient"],
            &body["encounter"],
            &body["intent"],
            &body["need_patient_banner"]
        ),
        (&json!("1"), &json!("enc-1"), &json!("summary"), &json!(true)),
        "the link's choices, and a banner since no EHR shows one: {body}"
    );
    let token = body["access_token"].as_str().unwrap();
    // The token is for the base the app asked for, and names its user under it.
    assert_eq!(claims_of(token)["aud"], iss.as_str());
    let id_token = claims_of(body["id_token"].as_str().unwrap());
    assert_eq!(id_token["fhirUser"], format!("{iss}/Practitioner/2"));
    let (status, user) = mock.fhir_get(id_token["fhirUser"].as_str().unwrap(), token).await;
    assert_eq!((status, &user["id"]), (StatusCode::OK, &json!("2")), "{user}");
    let userinfo = mock.get_with_token(&mock.auth("userinfo"), token).await.1;
    assert_eq!(userinfo["fhirUser"], id_token["fhirUser"]);

    // The whole API answers under the link's base, and its URLs stay under it.
    let (status, patient) = mock.fhir_get(&format!("{iss}/Patient/1"), token).await;
    assert_eq!((status, &patient["id"]), (StatusCode::OK, &json!("1")));
    let (status, page) = mock.fhir_get(&format!("{iss}/Observation?_count=1"), token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let next = link(&page, "next").expect("more than one observation");
    assert!(next.starts_with(&format!("{iss}/Observation?")), "{next}");
    assert!(page["entry"][0]["fullUrl"].as_str().unwrap().starts_with(&iss));
    let (status, _) = mock.fhir_get(&next, token).await;
    assert_eq!(status, StatusCode::OK);
    let created = mock
        .http
        .post(format!("{iss}/Observation"))
        .bearer_auth(token)
        .json(&json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "pulse"}, "subject": {"reference": "Patient/1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(&format!("{iss}/Observation/")), "{location}");
    // A Bundle's entries may name the link's base or the server's own.
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("{iss}/Patient/1")}},
        {"request": {"method": "GET", "url": mock.fhir("Patient/1")}}]});
    let answered: serde_json::Value = mock
        .http
        .post(&iss)
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .body(batch.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for entry in 0..2 {
        assert_eq!(answered["entry"][entry]["resource"]["id"], "1", "{answered}");
    }

    // A verifier for an authorization that had no challenge is a PKCE downgrade.
    let (verifier, challenge) = pkce();
    let done = mock.authorize(&authorize("standalone-app", None)).await;
    let (status, body) = redeem(&done.redirect_param("code").unwrap(), Some(&verifier)).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        body["error_description"].as_str().unwrap().contains("RFC 9700"),
        "{body}"
    );
    // An app that chooses PKCE is held to it: no verifier, no token.
    let done = mock
        .authorize(&authorize("standalone-app", Some(&challenge)))
        .await;
    let (status, body) = redeem(&done.redirect_param("code").unwrap(), None).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");

    // Without "app chooses", PKCE stays required; a link not made here is refused
    // at the FHIR base and at /authorize.
    let (_, strict) = launch_links(
        &mock,
        &[
            ("launch_url", "http://127.0.0.1:5173/app"),
            ("client_id", "demo-app"),
            ("patient", "1"),
        ],
    )
    .await;
    let mut params = authorize_params(&mock, "launch/patient patient/*.rs", "");
    params.retain(|(k, _)| !k.starts_with("code_challenge"));
    set_param(&mut params, "aud", &strict);
    let refused = mock.authorize(&params).await;
    assert_eq!(
        refused.redirect_param("error").as_deref(),
        Some("invalid_request")
    );
    assert!(refused.error_description().contains("code_challenge is required"));
    // A link made for one registered client is not another's.
    let (status, other) = mock
        .register(json!({"client_name": "Other", "redirect_uris": [APP_REDIRECT],
            "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    let (_, challenge) = pkce();
    let mut as_other = authorize_params(&mock, "launch/patient patient/*.rs", &challenge);
    set_param(&mut as_other, "aud", &strict);
    set_param(&mut as_other, "client_id", other["client_id"].as_str().unwrap());
    let refused = mock.authorize(&as_other).await;
    assert!(refused.error_description().contains("another client"));
    // One character of the signature changed, not its last (whose low bits may not count).
    let middle = strict.len() - 20;
    let changed = if &strict[middle..=middle] == "A" { "B" } else { "A" };
    let forged = format!("{}{changed}{}", &strict[..middle], &strict[middle + 1..]);
    let (status, outcome) = mock.fhir_get(&format!("{forged}/metadata"), token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    // …which a browser app may read.
    let refused = mock
        .http
        .get(format!("{forged}/metadata"))
        .header("origin", "http://127.0.0.1:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");
    set_param(&mut params, "aud", &forged);
    let refused = mock.authorize(&params).await;
    assert!(refused.error_description().contains("did not make"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_page_edits_and_deletes_with_the_registration_token() {
    let mock = start().await;
    let done = mock
        .post_page(
            "clients",
            &[
                ("client_name", "Ward board"),
                ("redirect_uris", "http://localhost:3000/cb"),
            ],
        )
        .await;
    let code_of = |html: &str, id: &str| {
        let start = html.find(&format!(r#"id="{id}">"#)).unwrap() + id.len() + 6;
        html[start..start + html[start..].find('<').unwrap()].to_owned()
    };
    let client_id = code_of(&done.html, "registered-client-id");
    let token = code_of(&done.html, "registered-registration-token");
    let edit = page(
        mock.http
            .get(mock.auth(&format!("clients/{client_id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(edit.html.contains("http://localhost:3000/cb"), "{}", edit.html);
    let endpoint = format!("clients/{client_id}");

    let refused = mock
        .post_page(
            &endpoint,
            &[
                ("registration_access_token", "guess"),
                ("redirect_uris", "http://localhost:4000/cb"),
                ("decision", "save"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.html.contains("not this client"), "{}", refused.html);

    let saved = mock
        .post_page(
            &endpoint,
            &[
                ("registration_access_token", token.as_str()),
                (
                    "redirect_uris",
                    "http://localhost:4000/cb\r\nhttp://localhost:4000/other",
                ),
                ("scope", "openid patient/*.rs"),
                ("decision", "save"),
            ],
        )
        .await;
    assert!(
        saved.html.contains(&format!("Saved {client_id}")),
        "{}",
        saved.html
    );
    let read = mock
        .http
        .get(mock.auth(&format!("register/{client_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(
        read["redirect_uris"],
        json!(["http://localhost:4000/cb", "http://localhost:4000/other"])
    );
    assert_eq!(read["scope"], "openid patient/*.rs");

    let deleted = mock
        .post_page(
            &endpoint,
            &[
                ("registration_access_token", token.as_str()),
                ("decision", "delete"),
            ],
        )
        .await;
    assert!(
        deleted.html.contains(&format!("Deleted {client_id}")),
        "{}",
        deleted.html
    );
    let list = page(mock.http.get(mock.auth("clients")).send().await.unwrap()).await;
    assert!(!list.html.contains(&client_id));
}
