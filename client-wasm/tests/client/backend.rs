//! Client credentials (CCRI's quickstart) and dynamic registration.

use crate::support::*;
use serde_json::json;
use smart_fhir_client::engine::backend::{
    ClientCredentialsOptions, Credential, client_credentials, register,
};
use smart_protocol::{ClientMetadata, ClientRegistration, ClientSecret, PrivateJwk, TokenResponse};

#[tokio::test]
async fn ccri_client_credentials_by_discovery_or_token_url() {
    let mock = start_mock(|_| {}).await;
    let platform = TestPlatform::new();
    let mut options = ClientCredentialsOptions {
        token_url: None,
        iss: Some(mock.urls.fhir_base.clone()),
        client_id: "patient-access".into(),
        credential: Credential::Secret(ClientSecret::new(ccri_mock::PATIENT_ACCESS_SECRET)),
        scope: None,
    };
    let response = TokenResponse::from_json(&client_credentials(&platform, &options).await.unwrap()).unwrap();
    assert_eq!(response.expires_in, Some(5400));
    assert_eq!(
        response.scope.unwrap().to_string(),
        "profile patient/Patient.read user/Patient.read"
    );

    options.iss = None;
    options.token_url = Some(mock.urls.auth("token"));
    options.credential = Credential::Secret(ClientSecret::new("wrong"));
    let error = client_credentials(&platform, &options).await.unwrap_err();
    assert_eq!(
        (error.code_text().to_string(), error.status),
        ("invalid_client".into(), Some(401))
    );
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
    let registration: ClientRegistration = serde_json::from_value(
        register(&platform, &mock.urls.fhir_base, &json(&metadata))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(!registration.client_id.is_empty());
    assert!(registration.client_secret.is_some());

    let bad = ClientMetadata {
        redirect_uris: vec!["http://evil.example/cb".into()],
        ..ClientMetadata::default()
    };
    let error = register(&platform, &mock.urls.fhir_base, &json(&bad))
        .await
        .unwrap_err();
    assert_eq!(error.code_text(), "invalid_redirect_uri");
}

/// Client metadata as the client sends it.
fn json(metadata: &ClientMetadata) -> serde_json::Value {
    serde_json::to_value(metadata).unwrap()
}

/// A backend service's RSA key: the signing half for the platform, the public JWK to register.
fn backend_key(kid: &str) -> (jsonwebtoken::EncodingKey, serde_json::Value) {
    use rsa::Generate;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let private = rsa::PrivateKey::try_generate().unwrap();
    let encoding = jsonwebtoken::EncodingKey::from_rsa_der(private.to_pkcs1_der().unwrap().as_bytes());
    let mut jwk =
        jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, jsonwebtoken::Algorithm::RS384).unwrap();
    jwk.common.key_id = Some(kid.into());
    (encoding, serde_json::to_value(jwk).unwrap())
}

#[tokio::test]
async fn backend_services_with_a_signed_assertion() {
    let mock = start_mock(|_| {}).await;
    let platform = TestPlatform::new();
    let (key, public) = backend_key("backend-1");
    platform.signing_keys.borrow_mut().insert("backend-1".into(), key);
    let metadata: ClientMetadata = serde_json::from_value(json!({
        "client_name": "Nightly export",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [public]},
        "scope": "system/Patient.rs"
    }))
    .unwrap();
    let registration = register(&platform, &mock.urls.fhir_base, &json(&metadata))
        .await
        .unwrap();
    let client_id = registration["client_id"].as_str().unwrap().to_owned();
    let private = PrivateJwk::new(json!({"kty": "RSA", "kid": "backend-1"}).to_string());
    let mut options = ClientCredentialsOptions {
        token_url: None,
        iss: Some(mock.urls.fhir_base.clone()),
        client_id,
        credential: Credential::PrivateKey(private),
        scope: Some("system/Patient.rs".parse().unwrap()),
    };
    let response = client_credentials(&platform, &options).await.unwrap();
    assert!(response["expires_in"].as_u64().unwrap() <= 300);

    // Signed by a key the server does not know for this client.
    let (other, _) = backend_key("backend-1");
    platform
        .signing_keys
        .borrow_mut()
        .insert("backend-1".into(), other);
    let error = client_credentials(&platform, &options).await.unwrap_err();
    assert_eq!(error.code_text(), "invalid_client");
    options.credential = Credential::PrivateKey(PrivateJwk::new(json!({"kty": "oct"}).to_string()));
    assert_eq!(
        client_credentials(&platform, &options)
            .await
            .unwrap_err()
            .code_text(),
        "invalid_options"
    );
}
