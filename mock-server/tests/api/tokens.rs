//! Access token verification, introspection, revocation and dynamic registration.

use crate::common::*;
use base64::Engine;
use ccri_mock::PATIENT_ACCESS_SECRET;
use ccri_mock::{SigningAlg, SigningKey, TokenKind};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_are_refused() {
    let mock = start().await;
    let good = mock.patient_access_token().await;
    let url = mock.fhir("Patient/1");
    assert_eq!(mock.get_with_token(&url, &good).await.0, StatusCode::OK);

    let claims = claims_of(&good);
    let kid = KEY.kid().to_owned();
    let header_json = |alg: &str| {
        b64(json!({"alg": alg, "typ": "at+jwt", "kid": kid})
            .to_string()
            .as_bytes())
    };

    // alg: none with no signature.
    let none = format!("{}.{}.", header_json("none"), b64(claims.to_string().as_bytes()));
    // HS256 "signed" with the public key, the classic confusion attack.
    let public_jwk = serde_json::to_vec(&KEY.jwks().keys[0]).unwrap();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    hs_header.typ = Some("at+jwt".into());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &EncodingKey::from_secret(&public_jwk).unwrap(),
    )
    .unwrap();
    // A tampered payload: patient/ scope widened to everything.
    let mut widened = claims.clone();
    widened["scope"] = json!("system/*.cruds");
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(widened.to_string().as_bytes()),
        parts[2]
    );
    // Signed by another key, claiming our kid and with a foreign kid.
    let other = SigningKey::generate(SigningAlg::RS256).unwrap();
    let foreign = other.sign(TokenKind::Access, &claims);
    let foreign_parts: Vec<&str> = foreign.split('.').collect();
    let stolen_kid = format!("{}.{}.{}", parts[0], foreign_parts[1], foreign_parts[2]);
    // Expired, wrong audience, wrong issuer: signed with the real key.
    let mut expired = claims.clone();
    expired["exp"] = json!(1_000_000);
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("https://other.example/fhir");
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("https://other.example/auth");
    // Genuine claims and signature, but typed as an id_token (RFC 9068 §4).
    let as_id_token = KEY.sign(TokenKind::Id, &claims);

    for (name, token) in [
        ("alg none", none),
        ("HS256 with the public key", hs256),
        ("tampered", tampered),
        ("foreign key", foreign),
        ("foreign signature under our kid", stolen_kid),
        ("expired", KEY.sign(TokenKind::Access, &expired)),
        ("wrong aud", KEY.sign(TokenKind::Access, &wrong_aud)),
        ("wrong iss", KEY.sign(TokenKind::Access, &wrong_iss)),
        ("typ JWT instead of at+jwt", as_id_token),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let response = mock.http.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.contains("invalid_token"), "{name}: {challenge}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["resourceType"], "OperationOutcome", "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_of_active_revoked_and_unknown_tokens() {
    let mock = start().await;
    let token = mock.patient_access_token().await;
    let introspect = |token: String| {
        let request = mock
            .http
            .post(mock.auth("introspect"))
            .basic_auth("patient-access", Some(PATIENT_ACCESS_SECRET))
            .form(&[("token", token)]);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()
        }
    };
    let active = introspect(token.clone()).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], "patient-access");
    assert_eq!(active["scope"], "profile patient/Patient.read user/Patient.read");
    assert!(active["exp"].as_u64().unwrap() > active["iat"].as_u64().unwrap());

    assert_eq!(introspect("garbage".into()).await, json!({"active": false}));

    // Revoke it: introspection and the FHIR API agree at once.
    let basic = Some(("patient-access", PATIENT_ACCESS_SECRET));
    assert_eq!(mock.revoke(basic, &[("token", &token)]).await, StatusCode::OK);
    assert_eq!(introspect(token.clone()).await, json!({"active": false}));
    assert_eq!(
        mock.get_with_token(&mock.fhir("Patient/1"), &token).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Introspection needs client authentication.
    let response = mock
        .http
        .post(mock.auth("introspect"))
        .form(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_refresh_token_ends_the_grant() {
    let mock = start().await;
    let (code, verifier) = mock
        .code_for("launch/patient offline_access patient/*.rs", "bernie", None)
        .await;
    let (_, body) = mock.exchange(&code, &verifier).await;
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    let form = [("token", refresh), ("client_id", "demo-app")];
    assert_eq!(mock.revoke(None, &form).await, StatusCode::OK);
    assert_eq!(
        mock.get_with_token(&mock.fhir("Patient/1"), access).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = mock.refresh(refresh, None).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // Revoking an unknown token is not an error (RFC 7009 §2.2).
    let form = [("token", "nope"), ("client_id", "demo-app")];
    assert_eq!(mock.revoke(None, &form).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_access_token_then_refresh() {
    let mock = start_with(|c| c.token_ttl_secs = 1).await;
    let (code, verifier) = mock
        .code_for("launch/patient offline_access patient/*.rs", "bernie", None)
        .await;
    let (_, body) = mock.exchange(&code, &verifier).await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(body["expires_in"], 1);
    // exp has one-second resolution: wait until it is certainly past.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        mock.get_with_token(&mock.fhir("Patient/1"), access).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The inspector says what the app did wrong.
    let records = mock.get_json(&mock.auth("inspector/requests")).await;
    assert_eq!(
        records[0]["lints"][0]["id"], "expired-token-used",
        "{}",
        records[0]
    );
    let (status, fresh) = mock.refresh(body["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = mock
        .get_with_token(&mock.fhir("Patient/1"), fresh["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// A public app that asks offline_access, never refreshes and launches again once
/// its access token has expired is told it asked for nothing; one that refreshes
/// (or gave its refresh token back) is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_app_that_never_refreshes_is_told_offline_access_was_for_nothing() {
    let mock = start_with(|c| c.token_ttl_secs = 1).await;
    let launch = async || {
        let (code, verifier) = mock
            .code_for("launch/patient offline_access patient/*.rs", "bernie", None)
            .await;
        let (status, body) = mock.exchange(&code, &verifier).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let records = mock.get_json(&mock.auth("inspector/requests")).await;
        let exchange = records[0].clone();
        assert!(
            exchange["path"].as_str().unwrap().ends_with("/ccri-auth/token"),
            "{exchange}"
        );
        let lints: Vec<String> = exchange["lints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect();
        (body["refresh_token"].as_str().unwrap().to_owned(), lints)
    };
    let (first, lints) = launch().await;
    assert!(lints.is_empty(), "{lints:?}");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (second, lints) = launch().await;
    assert_eq!(lints, ["offline-access-unused"]);

    // Refreshed, and the unused one given back: launching again is then no mistake.
    assert_eq!(mock.refresh(&second, None).await.0, StatusCode::OK);
    let form = [("token", first.as_str()), ("client_id", "demo-app")];
    assert_eq!(mock.revoke(None, &form).await, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (_, lints) = launch().await;
    assert!(lints.is_empty(), "{lints:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_registration_then_launch() {
    let mock = start().await;
    let (status, registered) = mock
        .register(json!({
            "client_name": "My app",
            "redirect_uris": [APP_REDIRECT],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid fhirUser launch/patient offline_access patient/*.rs"
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let secret = registered["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(registered["client_name"], "My app");

    let (verifier, challenge) = pkce();
    let params: Vec<(String, String)> = authorize_params(&mock, "launch/patient patient/*.rs", &challenge)
        .into_iter()
        .map(|(k, v)| {
            if k == "client_id" {
                (k, client_id.clone())
            } else {
                (k, v)
            }
        })
        .collect();
    let login = mock.authorize(&params).await;
    let done = mock.walk(login, "bernie", None, "allow").await;
    let code = done.redirect_param("code").unwrap();
    let (status, body) = mock
        .token(
            Some((&client_id, &secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", APP_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_registrations() {
    let mock = start().await;
    for (metadata, error) in [
        (
            json!({"grant_types": ["authorization_code"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": ["ftp://x/cb"]}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": [APP_REDIRECT], "token_endpoint_auth_method": "magic"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [APP_REDIRECT], "grant_types": ["password"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [APP_REDIRECT], "scope": "patient/X.sr"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        (json!("not an object"), "invalid_client_metadata"),
    ] {
        let (status, body) = mock.register(metadata.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{metadata}");
        assert_eq!(body["error"], error, "{metadata}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_configuration_jwks_and_userinfo() {
    let mock = start().await;
    let config = mock
        .get_json(&mock.auth(".well-known/openid-configuration"))
        .await;
    assert_eq!(config["issuer"], mock.server.urls.auth_base);
    assert_eq!(config["jwks_uri"], mock.auth("jwk"));
    assert_eq!(config["userinfo_endpoint"], mock.auth("userinfo"));
    assert_eq!(config["id_token_signing_alg_values_supported"], json!(["RS256"]));

    let jwks = mock.get_json(&mock.auth("jwk")).await;
    assert_eq!(jwks["keys"][0]["kid"], KEY.kid());
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "the private exponent is never published"
    );

    let (code, verifier) = mock
        .code_for("openid fhirUser launch/patient patient/*.rs", "bernie", None)
        .await;
    let (_, body) = mock.exchange(&code, &verifier).await;
    let id_token = claims_of(body["id_token"].as_str().unwrap());
    assert_eq!(id_token["aud"], "demo-app");
    assert_eq!(id_token["fhirUser"], mock.fhir("Patient/1"));
    let (status, userinfo) = mock
        .get_with_token(&mock.auth("userinfo"), body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(userinfo["fhirUser"], mock.fhir("Patient/1"));
    assert_eq!(userinfo["name"], "Bernie Kanfeld");
    assert_eq!(
        mock.http
            .get(mock.auth("userinfo"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_client_reads_updates_and_deletes_itself() {
    let mock = start().await;
    let (status, registered) = mock
        .register(json!({"client_name": "Ward app", "redirect_uris": [APP_REDIRECT]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let secret = registered["client_secret"].as_str().unwrap().to_owned();
    let token = registered["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = registered["registration_client_uri"].as_str().unwrap().to_owned();
    assert_eq!(uri, mock.auth(&format!("register/{client_id}")));
    let call = |method: reqwest::Method, bearer: &str, body: Option<Value>| {
        let mut request = mock.http.request(method, &uri).bearer_auth(bearer);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    let (status, read) = call(reqwest::Method::GET, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(
        (read["client_name"].as_str(), read["client_secret"].as_str()),
        (Some("Ward app"), Some(secret.as_str()))
    );

    // An update replaces the metadata; the id, secret and token stay.
    let (status, updated) = call(
        reqwest::Method::PUT,
        &token,
        Some(json!({"client_id": client_id, "client_secret": secret, "client_name": "Ward app 2",
                    "redirect_uris": [APP_REDIRECT, "http://localhost:5173/cb"], "scope": "openid patient/*.rs"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["client_name"], "Ward app 2");
    assert_eq!(updated["scope"], "openid patient/*.rs");
    assert_eq!(
        (
            updated["client_secret"].as_str(),
            updated["registration_access_token"].as_str()
        ),
        (Some(secret.as_str()), Some(token.as_str()))
    );
    let (_, read) = call(reqwest::Method::GET, &token, None).await;
    assert_eq!(read["redirect_uris"].as_array().unwrap().len(), 2);

    for (body, says) in [
        (
            json!({"client_id": "other", "redirect_uris": [APP_REDIRECT]}),
            "client_id",
        ),
        (
            json!({"client_id": client_id, "client_secret": "wrong", "redirect_uris": [APP_REDIRECT]}),
            "client_secret",
        ),
        (
            json!({"client_id": client_id, "registration_access_token": token, "redirect_uris": [APP_REDIRECT]}),
            "set by the server",
        ),
        (
            json!({"client_id": client_id, "redirect_uris": ["http://evil.example/cb"]}),
            "plain http",
        ),
    ] {
        let (status, refused) = call(reqwest::Method::PUT, &token, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert!(
            refused["error_description"].as_str().unwrap().contains(says),
            "{says}: {refused}"
        );
    }
    // Another token, or none, learns nothing: the same 401 for every client id. A
    // second registered client's token reaches neither way across, by any method.
    let (_, other) = mock
        .register(json!({"client_name": "Other app", "redirect_uris": [APP_REDIRECT]}))
        .await;
    let other_token = other["registration_access_token"].as_str().unwrap();
    let other_uri = other["registration_client_uri"].as_str().unwrap();
    let body = json!({"client_id": client_id, "redirect_uris": [APP_REDIRECT]});
    for (bearer, target) in [
        ("wrong", uri.as_str()),
        (token.as_str(), &mock.auth("register/patient-access")),
        (token.as_str(), other_uri),
        (other_token, uri.as_str()),
    ] {
        for method in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let response = mock
                .http
                .request(method.clone(), target)
                .bearer_auth(bearer)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{method} {target}");
            assert!(
                response.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .contains("invalid_token")
            );
        }
    }
    let (status, _) = call(reqwest::Method::GET, &token, None).await;
    assert_eq!(status, StatusCode::OK, "still there after the refused DELETEs");

    // Deleting ends the client and the tokens it holds.
    let (status, body) = mock
        .token(
            Some((&client_id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "no client_credentials grant: {body}"
    );
    let response = mock.http.delete(&uri).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _) = call(reqwest::Method::GET, &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = mock
        .token(
            Some((&client_id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_oauth_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_client_ends_its_access_tokens() {
    let mock = start().await;
    let (_, registered) = mock
        .register(json!({"grant_types": ["client_credentials"], "scope": "system/Patient.rs"}))
        .await;
    let client_id = registered["client_id"].as_str().unwrap();
    let secret = registered["client_secret"].as_str().unwrap();
    let (status, body) = mock
        .token(Some((client_id, secret)), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        mock.get_with_token(&mock.fhir("Patient/1"), access).await.0,
        StatusCode::OK
    );
    let uri = registered["registration_client_uri"].as_str().unwrap();
    let token = registered["registration_access_token"].as_str().unwrap();
    mock.http.delete(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(
        mock.get_with_token(&mock.fhir("Patient/1"), access).await.0,
        StatusCode::UNAUTHORIZED
    );
}
