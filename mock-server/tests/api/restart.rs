//! The `ccri-mock` binary on a SQLite store, killed with SIGKILL and started again:
//! what an app and its developer made before is still there.

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

use crate::binary::{Binary, TempDir, free_port};
use crate::common::{APP_REDIRECT, pkce};

/// The binary on `port`, keeping everything in `dir`'s SQLite file.
async fn start(dir: &TempDir, port: u16) -> Binary {
    let store = format!("sqlite:{}", dir.path().join("mock.db").display());
    let config = dir.path().join("config.toml").display().to_string();
    Binary::start(port, ["--store", &store, "--config", &config]).await
}

/// An app that gets its tokens without pages (bernie logs in and consents).
const CONFIG: &str = r#"
[[clients]]
client_id = "kept-app"
redirect_uris = ["http://127.0.0.1:5173/"]
scope = "openid fhirUser launch/patient offline_access patient/*.cruds"
skip_login = "bernie"
skip_auth = true
"#;

/// A full launch of `kept-app`: its token response.
async fn launch(mock: &Binary) -> Value {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (verifier, challenge) = pkce();
    let fhir_base = mock.fhir("");
    let authorized = http
        .get(mock.auth("authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "kept-app"),
            ("redirect_uri", APP_REDIRECT),
            (
                "scope",
                "openid fhirUser launch/patient offline_access patient/*.cruds",
            ),
            ("state", "s"),
            ("aud", fhir_base.trim_end_matches('/')),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let location = authorized.headers()[LOCATION].to_str().unwrap();
    let code = url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"));
    let tokens = http
        .post(mock.auth("token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", "kept-app"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(tokens.status(), StatusCode::OK);
    tokens.json().await.unwrap()
}

async fn refresh(mock: &Binary, refresh_token: &Value) -> StatusCode {
    reqwest::Client::new()
        .post(mock.auth("token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str().unwrap()),
            ("client_id", "kept-app"),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

async fn json_at(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn read(url: &str, token: &Value) -> StatusCode {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token.as_str().unwrap())
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_keeps_clients_resources_and_tokens_through_a_sigkill() {
    let dir = TempDir::new("restart");
    std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
    let port = free_port();
    let http = reqwest::Client::new();

    let before = start(&dir, port).await;
    let registered: Value = http
        .post(before.auth("register"))
        .json(&json!({"client_name": "Kept", "redirect_uris": [APP_REDIRECT],
                      "token_endpoint_auth_method": "none", "scope": "patient/*.rs"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kept = launch(&before).await;
    let revoked = launch(&before).await;
    let created = http
        .post(before.fhir("Observation"))
        .bearer_auth(kept["access_token"].as_str().unwrap())
        .json(&json!({"resourceType": "Observation", "status": "final",
                      "code": {"text": "kept through a restart"},
                      "subject": {"reference": "Patient/1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let observation = created.headers()[LOCATION].to_str().unwrap().to_owned();
    let revocation = http
        .post(before.auth("revoke"))
        .form(&[
            ("token", revoked["refresh_token"].as_str().unwrap()),
            ("client_id", "kept-app"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revocation.status(), StatusCode::OK);
    let jwks = json_at(&before.auth("jwk")).await;
    before.kill();

    let after = start(&dir, port).await;
    assert_eq!(json_at(&after.auth("jwk")).await, jwks, "the same signing key");
    // The access token issued before still verifies, and reads what was written.
    assert_eq!(read(&observation, &kept["access_token"]).await, StatusCode::OK);
    assert_eq!(refresh(&after, &kept["refresh_token"]).await, StatusCode::OK);
    // The registered client can read its registration.
    let registration = http
        .get(registered["registration_client_uri"].as_str().unwrap())
        .bearer_auth(registered["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(registration.status(), StatusCode::OK);
    let registration: Value = registration.json().await.unwrap();
    assert_eq!(registration["client_id"], registered["client_id"]);
    // What was revoked stays revoked: the grant's refresh and access tokens both.
    assert_eq!(
        refresh(&after, &revoked["refresh_token"]).await,
        StatusCode::BAD_REQUEST
    );
    let patient = after.fhir("Patient/1");
    assert_eq!(
        read(&patient, &revoked["access_token"]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(read(&patient, &kept["access_token"]).await, StatusCode::OK);
}
