//! Starting the server: a configured key file, and what happens when it is wrong.

use ccri_mock::{Config, SigningAlg, SigningKey};
use serde_json::Value;

fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("ccri-mock-{name}-{}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a_configured_key_file_signs_and_is_published() {
    use rsa::Generate;
    use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
    let pem = rsa::PrivateKey::try_generate()
        .unwrap()
        .to_pkcs1_pem(LineEnding::LF)
        .unwrap();
    let path = write_temp("key.pem", &pem);
    let expected_kid = SigningKey::from_pem_file(&path, SigningAlg::RS256)
        .unwrap()
        .kid()
        .to_owned();

    let server = ccri_mock::spawn(Config {
        port: 0,
        key_file: Some(path.clone()),
        ..Config::default()
    })
    .await
    .unwrap();
    let jwks: Value = reqwest::get(server.urls.auth("jwk"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks["keys"][0]["kid"], expected_kid,
        "the same key always has the same kid"
    );
    let token: Value = reqwest::Client::new()
        .post(server.urls.auth("token"))
        .basic_auth("patient-access", Some(ccri_mock::PATIENT_ACCESS_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(token["access_token"].is_string());
    server.shutdown().await;
    std::fs::remove_file(path).unwrap();
}

#[tokio::test]
async fn a_bad_key_file_is_a_clear_start_error() {
    let start_error = |path: &std::path::Path| {
        ccri_mock::spawn(Config {
            port: 0,
            key_file: Some(path.to_owned()),
            ..Config::default()
        })
    };
    let path = write_temp("bad.pem", "not a key");
    let error = start_error(&path).await.expect_err("refused");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    std::fs::remove_file(&path).unwrap();
    let missing = start_error(&path).await.expect_err("refused");
    assert!(missing.to_string().contains("cannot read key file"), "{missing}");
}

#[tokio::test]
async fn an_es256_key_file_is_read_as_pkcs8() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use base64::Engine;
    let der = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let path = write_temp(
        "ec.pem",
        &format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"),
    );
    let key = SigningKey::from_pem_file(&path, SigningAlg::ES256).unwrap();
    assert_eq!(key.jwks().keys[0].common.key_id.as_deref(), Some(key.kid()));
    // The same file is not an RSA key, and the error says which it wanted.
    let error = SigningKey::from_pem_file(&path, SigningAlg::RS256).unwrap_err();
    assert!(
        error.to_string().contains("not a private key for RS256"),
        "{error}"
    );
    std::fs::remove_file(&path).unwrap();
}
