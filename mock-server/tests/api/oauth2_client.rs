//! A standard Rust OAuth client, the `oauth2` crate, as a second judge of the auth
//! server: what it sends and parses is RFC 6749/7009/7636/7662 as someone else
//! read them, not as these tests' own helpers do. (Revocation it will only send
//! over https, which the mock does not serve yet.)

#[path = "../../examples/backend_service.rs"]
#[allow(dead_code, reason = "the example's main is for `cargo run --example`")]
mod backend_service;

use crate::common::*;
use ccri_mock::PATIENT_ACCESS_SECRET;
use oauth2::basic::{BasicClient, BasicTokenType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, ConfigurationError, CsrfToken,
    IntrospectionUrl, PkceCodeChallenge, RedirectUrl, RefreshToken, RevocationUrl, Scope,
    StandardRevocableToken, TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use reqwest::StatusCode;

/// A client that never follows redirects, as an OAuth client must not.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_backend_example_reads_a_patient() {
    let mock = start().await;
    let patient = backend_service::read_patient(&mock.server.urls.origin, "1")
        .await
        .unwrap();
    assert_eq!(patient["resourceType"], "Patient");
    assert_eq!(patient["id"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_with_basic_auth_then_introspection() {
    let mock = start().await;
    let client = BasicClient::new(ClientId::new("patient-access".into()))
        .set_client_secret(ClientSecret::new(PATIENT_ACCESS_SECRET.into()))
        .set_auth_type(AuthType::BasicAuth)
        .set_token_uri(TokenUrl::new(mock.auth("token")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(mock.auth("introspect")).unwrap());
    let token = client
        .exchange_client_credentials()
        .request_async(&http())
        .await
        .unwrap();
    assert_eq!(*token.token_type(), BasicTokenType::Bearer);
    assert_eq!(token.expires_in().unwrap().as_secs(), 90 * 60);
    let scopes: Vec<String> = token.scopes().unwrap().iter().map(|s| s.to_string()).collect();
    assert_eq!(scopes, ["profile", "patient/Patient.read", "user/Patient.read"]);

    let introspection = client
        .introspect(token.access_token())
        .request_async(&http())
        .await
        .unwrap();
    assert!(introspection.active());
    assert_eq!(introspection.client_id().unwrap().as_str(), "patient-access");
    assert_eq!(introspection.token_type(), Some(&BasicTokenType::Bearer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_with_pkce_refresh_and_revocation() {
    let mock = start().await;
    let client = BasicClient::new(ClientId::new("demo-app".into()))
        .set_auth_uri(AuthUrl::new(mock.auth("authorize")).unwrap())
        .set_token_uri(TokenUrl::new(mock.auth("token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(APP_REDIRECT.into()).unwrap())
        .set_revocation_url(RevocationUrl::new(mock.auth("revoke")).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(["openid", "fhirUser", "offline_access", "patient/*.rs"].map(|s| Scope::new(s.into())))
        .add_extra_param("aud", &mock.server.urls.fhir_base)
        .set_pkce_challenge(challenge)
        .url();
    let login = page(mock.http.get(url.as_str()).send().await.unwrap()).await;
    let done = mock.walk(login, "bernie", None, "allow").await;
    assert_eq!(
        done.redirect_param("state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = done.redirect_param("code").unwrap();

    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .unwrap();
    let access = token.access_token().secret().clone();
    assert_eq!(
        mock.get_with_token(&mock.fhir("Patient/1"), &access).await.0,
        StatusCode::OK
    );

    let refresh = token.refresh_token().unwrap().clone();
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .request_async(&http())
        .await
        .unwrap();
    assert_ne!(refreshed.access_token().secret(), &access);

    // oauth2 sends revocations only over https (RFC 7009 §2.1 requires TLS), and
    // the mock serves plain http on loopback: it says so, and the request is posted
    // by hand, as RFC 7009 §2.1 spells it.
    let revocation = client.revoke_token(StandardRevocableToken::RefreshToken(RefreshToken::new(
        refresh.secret().clone(),
    )));
    assert!(matches!(
        revocation,
        Err(ConfigurationError::InsecureUrl("revocation"))
    ));
    let form = [
        ("token", refresh.secret().as_str()),
        ("token_type_hint", "refresh_token"),
        ("client_id", "demo-app"),
    ];
    assert_eq!(mock.revoke(None, &form).await, StatusCode::OK);
    let refused = client
        .exchange_refresh_token(&refresh)
        .request_async(&http())
        .await;
    assert!(refused.is_err(), "a revoked refresh token still worked");
    let (status, _) = mock
        .get_with_token(&mock.fhir("Patient/1"), refreshed.access_token().secret())
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revoking the refresh token ends its grant"
    );
}
