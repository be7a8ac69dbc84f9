//! `GET {fhir}/metadata`: the CapabilityStatement, public, declaring SMART with the
//! `SMART-on-FHIR` code CCRI leaves out, and the legacy `oauth-uris` extension for
//! clients that predate `.well-known/smart-configuration`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use smart_protocol::discovery::OAUTH_URIS_EXTENSION;

use super::outcome::fhir_json;
use crate::state::AppState;

pub async fn capability_statement(State(state): State<AppState>) -> Response {
    let uri = |name: &str, endpoint: &str| json!({"url": name, "valueUri": state.urls.auth(endpoint)});
    let resources: Vec<_> = [
        "Patient",
        "Practitioner",
        "Organization",
        "Encounter",
        "Observation",
    ]
    .iter()
    .map(|kind| json!({"type": kind, "interaction": [{"code": "read"}]}))
    .collect();
    let body = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-28",
        "publisher": "ccri-mock",
        "kind": "instance",
        "software": {"name": "ccri-mock", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Local mock of the Care Connect Reference Implementation", "url": state.urls.fhir_base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "security": {
                "cors": true,
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR"
                }]}],
                "extension": [{
                    "url": OAUTH_URIS_EXTENSION,
                    "extension": [
                        uri("authorize", "authorize"), uri("token", "token"), uri("register", "register"),
                        uri("introspect", "introspect"), uri("revoke", "revoke")
                    ]
                }]
            },
            "resource": resources
        }]
    });
    fhir_json(StatusCode::OK, &body)
}
