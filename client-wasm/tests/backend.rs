//! Client credentials (CCRI's quickstart) and dynamic registration.
#![cfg(not(target_arch = "wasm32"))] // native: runs ccri-mock in-process

mod support;

use smart_fhir_client::core::backend::{ClientCredentialsOptions, client_credentials, register};
use smart_protocol::{ClientMetadata, ClientSecret};
use support::*;

#[tokio::test]
async fn ccri_client_credentials_by_discovery_or_token_url() {
    let mock = start_mock(|_| {}).await;
    let platform = TestPlatform::new();
    let mut options = ClientCredentialsOptions {
        token_url: None,
        iss: Some(mock.urls.fhir_base.clone()),
        client_id: "patient-access".into(),
        client_secret: ClientSecret::new(ccri_mock::config::PATIENT_ACCESS_SECRET),
        scope: None,
    };
    let response = client_credentials(&platform, &options).await.unwrap();
    assert_eq!(response.expires_in, Some(5400));
    assert_eq!(
        response.scope.unwrap().to_string(),
        "profile patient/Patient.read user/Patient.read"
    );

    options.iss = None;
    options.token_url = Some(mock.urls.auth("token"));
    options.client_secret = ClientSecret::new("wrong");
    let error = client_credentials(&platform, &options).await.unwrap_err();
    assert_eq!((error.code.as_str(), error.status), ("invalid_client", Some(401)));
}

#[tokio::test]
async fn dynamic_registration() {
    let mock = start_mock(|_| {}).await;
    let platform = TestPlatform::new();
    let metadata = ClientMetadata {
        client_name: Some("My app".into()),
        redirect_uris: vec!["http://localhost:3000/callback".into()],
        ..ClientMetadata::default()
    };
    let registration = register(&platform, &mock.urls.fhir_base, &metadata)
        .await
        .unwrap();
    assert!(!registration.client_id.is_empty());
    assert!(registration.client_secret.is_some());

    let bad = ClientMetadata {
        redirect_uris: vec!["http://evil.example/cb".into()],
        ..ClientMetadata::default()
    };
    let error = register(&platform, &mock.urls.fhir_base, &bad).await.unwrap_err();
    assert_eq!(error.code, "invalid_redirect_uri");
}
