//! Starting the server: a configured key file, and what happens when it is wrong.

use ccri_mock::{Config, SigningAlg, SigningKey};
use serde_json::Value;

fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("ccri-mock-{name}-{}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

/// A client that trusts only `certificate_pem` (what a phone does once it
/// installed the mock's CA).
fn client_trusting(
    certificate_pem: &str,
) -> hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<axum::body::Bytes>,
> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(certificate_pem.as_bytes()) {
        roots.add(certificate.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_with_a_certificate_a_phone_can_trust() {
    use http_body_util::BodyExt;
    let server = ccri_mock::testing::start(|config| config.tls = true).await;
    assert!(
        server.urls.fhir_base.starts_with("https://127.0.0.1:"),
        "{}",
        server.urls.fhir_base
    );
    let ca = server.tls_certificate.clone().unwrap();
    let client = client_trusting(&ca);
    let get = |url: String| {
        let client = client.clone();
        async move {
            let response = client
                .request(
                    axum::http::Request::get(url)
                        .body(http_body_util::Empty::new())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let (status, discovery) = get(format!(
        "{}/.well-known/smart-configuration",
        server.urls.fhir_base
    ))
    .await;
    assert_eq!(status, 200, "{discovery}");
    let discovery: Value = serde_json::from_str(&discovery).unwrap();
    assert!(
        discovery["authorization_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    // The certificate to install is served, and it is the one the banner names.
    let (status, served) = get(server.urls.auth("certificate.pem")).await;
    assert_eq!((status.as_u16(), served.as_str()), (200, ca.as_str()));
    assert_eq!(server.tls_fingerprint.as_deref().map(str::len), Some(32 * 3 - 1));
    // Plain HTTP on the TLS port gets no answer it could mistake for the API.
    let plain = reqwest::get(format!("http://{}/ccri-fhir/R4/metadata", server.addr)).await;
    assert!(plain.is_err(), "{plain:?}");
    // Shut down, the port is closed at once, not left listening until a next
    // client arrives (a first connection would still have been accepted).
    let addr = server.addr;
    server.shutdown().await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let late = tokio::net::TcpStream::connect(addr).await;
    assert!(late.is_err(), "{addr} still accepts connections after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_given_certificate_and_clear_errors_when_it_is_wrong() {
    use http_body_util::BodyExt;
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = write_temp("tls-cert.pem", &generated.cert.pem());
    let key = write_temp("tls-key.pem", &generated.signing_key.serialize_pem());
    let server = ccri_mock::testing::start(|config| {
        config.tls_cert = Some(cert.clone());
        config.tls_key = Some(key.clone());
    })
    .await;
    let trusted = server.tls_certificate.clone().unwrap();
    let response = client_trusting(&generated.cert.pem())
        .request(
            axum::http::Request::get(format!("{}/metadata", server.urls.fhir_base))
                .body(http_body_util::Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    assert_eq!(
        trusted.trim(),
        generated.cert.pem().trim(),
        "the given certificate is the one served"
    );
    server.shutdown().await;

    for (tls_cert, tls_key, says) in [
        (Some(cert.clone()), None, "go together"),
        (
            Some(key.clone()),
            Some(key.clone()),
            "cannot read TLS certificate",
        ),
        (Some(cert.clone()), Some(cert.clone()), "cannot read TLS key"),
    ] {
        let error = ccri_mock::spawn(Config {
            port: 0,
            tls_cert,
            tls_key,
            ..Config::default()
        })
        .await
        .expect_err("refused");
        assert!(error.to_string().contains(says), "{says}: {error}");
    }
    std::fs::remove_file(&cert).unwrap();
    std::fs::remove_file(&key).unwrap();
}
