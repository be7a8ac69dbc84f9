//! Round-trips of real protocol messages: what a server sends must parse, and what
//! we serialise must carry everything that was in it, unknown members included.

use serde_json::{Value, json};
use smart_protocol::{
    AccessToken, Capability, CapabilityStatementError, ClientSecret, CodeChallengeMethod, GrantType,
    OAuthError, OAuthErrorCode, OAuthUris, PkceVerifier, Scope, SmartConfiguration, TokenResponse,
};

/// The example of SMART App Launch 2.2 §"Example response", plus a vendor member.
fn smart_configuration_example() -> Value {
    json!({
        "issuer": "https://ehr.example.com",
        "jwks_uri": "https://ehr.example.com/.well-known/jwks.json",
        "authorization_endpoint": "https://ehr.example.com/auth/authorize",
        "token_endpoint": "https://ehr.example.com/auth/token",
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "registration_endpoint": "https://ehr.example.com/auth/register",
        "scopes_supported": ["openid", "profile", "launch", "launch/patient", "patient/*.rs", "user/*.rs", "offline_access"],
        "response_types_supported": ["code"],
        "management_endpoint": "https://ehr.example.com/user/manage",
        "introspection_endpoint": "https://ehr.example.com/user/introspect",
        "revocation_endpoint": "https://ehr.example.com/user/revoke",
        "code_challenge_methods_supported": ["S256"],
        "capabilities": ["launch-ehr", "permission-patient", "permission-v2", "client-public",
                         "client-confidential-symmetric", "context-ehr-patient", "sso-openid-connect",
                         "vendor-magic"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "associated_endpoints": [{"url": "https://dicom.example.com", "capabilities": ["launch-ehr"]}],
        "x-vendor-setting": {"nested": [1, 2, 3]}
    })
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn smart_configuration_round_trips_its_known_members() {
    let original = smart_configuration_example();
    let config: SmartConfiguration = serde_json::from_value(original.clone()).unwrap();
    assert_eq!(config.token_endpoint, "https://ehr.example.com/auth/token");
    assert!(config.has_capability(&Capability::LaunchEhr));
    assert!(config.has_capability(&Capability::Other("vendor-magic".into())));
    assert_eq!(config.grant_types_supported[1], GrantType::ClientCredentials);
    assert_eq!(
        config.code_challenge_methods_supported,
        [CodeChallengeMethod::S256]
    );
    assert!(config.allows_s256());
    // Members SMART does not define are ignored.
    let mut known = original;
    known.as_object_mut().unwrap().remove("x-vendor-setting");
    assert_eq!(serde_json::to_value(&config).unwrap(), known);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn plain_only_pkce_is_not_s256() {
    let mut value = smart_configuration_example();
    value["code_challenge_methods_supported"] = json!(["plain"]);
    let config: SmartConfiguration = serde_json::from_value(value).unwrap();
    assert!(!config.allows_s256());
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn smart_configuration_without_token_endpoint_is_an_error() {
    let mut value = smart_configuration_example();
    value.as_object_mut().unwrap().remove("token_endpoint");
    assert!(serde_json::from_value::<SmartConfiguration>(value).is_err());
}

fn capability_statement(service: Value) -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {
                "service": [service],
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "token", "valueUri": "https://data.developer.nhs.uk/ccri-auth/token"},
                        {"url": "authorize", "valueUri": "https://data.developer.nhs.uk/ccri-auth/authorize"},
                        {"url": "register", "valueUri": "https://data.developer.nhs.uk/ccri-auth/register"},
                        {"url": "revoke", "valueUrl": "https://data.developer.nhs.uk/ccri-auth/revoke"}
                    ]
                }]
            }
        }]
    })
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn oauth_uris_from_capability_statement_including_ccri_variant() {
    let smart = json!({"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
        "code": "SMART-on-FHIR"
    }]});
    // CCRI's coding has no code at all.
    let ccri = json!({"coding": [{"system": "http://hl7.org/fhir/restful-security-service"}]});
    for service in [smart, ccri] {
        let uris = OAuthUris::from_capability_statement(&capability_statement(service)).unwrap();
        assert_eq!(uris.token, "https://data.developer.nhs.uk/ccri-auth/token");
        assert_eq!(
            uris.authorize.as_deref(),
            Some("https://data.developer.nhs.uk/ccri-auth/authorize")
        );
        assert_eq!(
            uris.register.as_deref(),
            Some("https://data.developer.nhs.uk/ccri-auth/register")
        );
        assert_eq!(
            uris.revoke.as_deref(),
            Some("https://data.developer.nhs.uk/ccri-auth/revoke")
        );
        assert_eq!(uris.introspect, None);
        let config = uris.into_configuration();
        assert_eq!(
            config.token_endpoint,
            "https://data.developer.nhs.uk/ccri-auth/token"
        );
        assert!(config.capabilities.is_empty());
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn capability_statement_without_oauth_uris() {
    let patient = json!({"resourceType": "Patient"});
    assert_eq!(
        OAuthUris::from_capability_statement(&patient),
        Err(CapabilityStatementError::NotACapabilityStatement(Some(
            "Patient".into()
        )))
    );
    let mut statement = capability_statement(json!({}));
    statement["rest"][0]["security"]["extension"] = json!([]);
    assert_eq!(
        OAuthUris::from_capability_statement(&statement),
        Err(CapabilityStatementError::NoOAuthUris)
    );
    let mut statement = capability_statement(json!({}));
    statement["rest"][0]["security"]["extension"][0]["extension"] =
        json!([{"url": "authorize", "valueUri": "https://x/authorize"}]);
    assert_eq!(
        OAuthUris::from_capability_statement(&statement),
        Err(CapabilityStatementError::NoTokenEndpoint)
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn token_response_round_trips_with_launch_context() {
    let original = json!({
        "access_token": "eyJhbGciOiJSUzI1NiJ9.e30.sig",
        "token_type": "Bearer",
        "expires_in": 5400,
        "scope": "launch/patient openid fhirUser offline_access patient/*.rs",
        "refresh_token": "r-123",
        "id_token": "eyJ.id.token",
        "patient": "1",
        "encounter": "enc-7",
        "fhirContext": [
            {"reference": "Encounter/enc-7"},
            {"canonical": "http://example.org/Questionnaire/q|1.0", "type": "Questionnaire", "role": "https://example.org/role"},
            {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9876543210"}, "type": "Patient"}
        ],
        "need_patient_banner": true,
        "smart_style_url": "https://ehr.example.com/style.json",
        "intent": "reconcile-medications",
        "tenant": "2ddd6c3a",
        "x-vendor": [true]
    });
    let response: TokenResponse = serde_json::from_value(original.clone()).unwrap();
    assert!(response.token_type.is_bearer());
    assert_eq!(response.access_token.secret(), "eyJhbGciOiJSUzI1NiJ9.e30.sig");
    assert!(response.scope.as_ref().unwrap().contains(&Scope::OfflineAccess));
    assert_eq!(response.context.patient.as_deref(), Some("1"));
    assert_eq!(response.context.fhir_context.len(), 3);
    assert_eq!(
        response.context.fhir_context[1].resource_type.as_deref(),
        Some("Questionnaire")
    );
    assert_eq!(response.context.need_patient_banner, Some(true));
    let mut known = original;
    known.as_object_mut().unwrap().remove("x-vendor");
    assert_eq!(serde_json::to_value(&response).unwrap(), known);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn ccri_quickstart_token_response() {
    let response: TokenResponse = serde_json::from_str(
        r#"{"access_token":"a.b.c","token_type":"bearer","expires_in":5400,"scope":"profile patient/Patient.read user/Patient.read"}"#,
    )
    .unwrap();
    assert!(response.token_type.is_bearer());
    assert_eq!(response.expires_in, Some(5400));
    assert_eq!(response.context, Default::default());
    assert!(response.refresh_token.is_none());
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn token_response_with_a_malformed_scope_is_refused() {
    let result = serde_json::from_str::<TokenResponse>(
        r#"{"access_token":"a","token_type":"Bearer","scope":"patient/Observation.sr"}"#,
    );
    assert!(result.unwrap_err().to_string().contains("patient/Observation.sr"));
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn oauth_errors_serialise_and_parse() {
    let error = OAuthError::new(OAuthErrorCode::InvalidGrant, "code already used");
    let body = serde_json::to_value(&error).unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "code already used"})
    );
    assert_eq!(serde_json::from_value::<OAuthError>(body).unwrap(), error);
    assert_eq!(error.to_string(), "invalid_grant: code already used");

    let vendor: OAuthError =
        serde_json::from_str(r#"{"error":"slow_down","error_uri":"https://x"}"#).unwrap();
    assert_eq!(vendor.error, OAuthErrorCode::Other("slow_down".into()));
    assert_eq!(vendor.to_string(), "slow_down");

    assert_eq!(OAuthErrorCode::InvalidClient.http_status(), 401);
    assert_eq!(OAuthErrorCode::InvalidScope.http_status(), 400);
    for code in [
        "invalid_request",
        "unauthorized_client",
        "unsupported_grant_type",
        "access_denied",
        "invalid_redirect_uri",
        "invalid_client_metadata",
        "unsupported_token_type",
    ] {
        let parsed = OAuthErrorCode::from(code);
        assert!(!matches!(parsed, OAuthErrorCode::Other(_)), "{code}");
        assert_eq!(parsed.as_str(), code);
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn secrets_never_print() {
    let token = AccessToken::new("super-secret-token");
    let secret = ClientSecret::new("IShTVi8mRSV7bVREuU1freiDo79y");
    let verifier = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    let printed = format!("{token:?} {secret:?} {verifier:?}");
    assert_eq!(
        printed,
        "AccessToken([redacted]) ClientSecret([redacted]) PkceVerifier([redacted])"
    );
    let response: TokenResponse = serde_json::from_str(
        r#"{"access_token":"super-secret-token","token_type":"Bearer","refresh_token":"rt-secret"}"#,
    )
    .unwrap();
    let printed = format!("{response:?}");
    assert!(
        !printed.contains("super-secret-token") && !printed.contains("rt-secret"),
        "{printed}"
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn a_decoding_error_names_the_first_wrong_member() {
    let decode = |value: Value| TokenResponse::from_json(&value).unwrap_err().to_string();
    assert_eq!(
        decode(json!({"access_token": "a", "token_type": "Bearer", "expires_in": "3600"})),
        "`expires_in` must be a non-negative integer"
    );
    assert_eq!(
        decode(json!({"token_type": "Bearer", "fhirContext": {"reference": "Patient/1"}})),
        "`access_token` is missing"
    );
    assert_eq!(
        decode(json!({"access_token": "a", "token_type": "Bearer", "fhirContext": [{"reference": 7}]})),
        "`reference` must be a string"
    );
    assert_eq!(
        decode(json!(["not", "an", "object"])),
        "the message is not a JSON object"
    );
    // null is absent, as JSON.parse gives it.
    let response = TokenResponse::from_json(&json!({
        "access_token": "a", "token_type": "Bearer", "refresh_token": null, "expires_in": 60
    }))
    .unwrap();
    assert_eq!((response.refresh_token, response.expires_in), (None, Some(60)));
    let error = OAuthError::from_json(&json!({"error": 400})).unwrap_err();
    assert_eq!(error.to_string(), "`error` must be a string");
}
