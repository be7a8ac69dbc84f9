//! Starting the server: a configured key file, and what happens when it is wrong.

use ccri_mock::{Config, SigningKey};
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
    let expected_kid = SigningKey::from_pem_file(&path).unwrap().kid().to_owned();

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
