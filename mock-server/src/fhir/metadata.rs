//! `GET {fhir}/metadata`: the CapabilityStatement, public, declaring SMART with the
//! `SMART-on-FHIR` code CCRI leaves out, and the legacy `oauth-uris` extension for
//! clients that predate `.well-known/smart-configuration`. The resource list is
//! generated from the R4 definitions the engine runs on, so it lists exactly what
//! is served.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use smart_protocol::discovery::OAUTH_URIS_EXTENSION;

use super::definitions::{ParamType, R4};
use super::outcome::fhir_json;
use crate::state::{AppState, FhirBase};

pub(crate) async fn capability_statement(State(state): State<AppState>, base: FhirBase) -> Response {
    let uri = |name: &str, endpoint: &str| json!({"url": name, "valueUri": state.urls.auth(endpoint)});
    let interactions = [
        "read",
        "vread",
        "history-instance",
        "search-type",
        "create",
        "update",
        "patch",
        "delete",
        "history-type",
    ];
    let resources: Vec<_> = R4
        .types()
        .map(|kind| {
            let references = || R4.params(kind).filter(|p| p.param_type == ParamType::Reference);
            let mut search_include: Vec<String> =
                references().map(|p| format!("{kind}:{}", p.name)).collect();
            search_include.push(format!("{kind}:*"));
            let mut resource = json!({
                "type": kind,
                "interaction": interactions.iter().map(|code| json!({"code": code})).collect::<Vec<_>>(),
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalUpdate": true,
                "conditionalDelete": "multiple",
                "searchInclude": search_include,
                "searchRevInclude": rev_includes(kind),
                "searchParam": R4
                    .params(kind)
                    .filter(|p| p.expression.is_some() && p.param_type != ParamType::Special)
                    .map(|p| json!({"name": p.name, "type": p.param_type.as_str()}))
                    .collect::<Vec<_>>(),
            });
            if kind == "Patient" {
                resource["operation"] = json!([{
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"
                }]);
            }
            resource
        })
        .collect();
    let body = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-28",
        "publisher": "ccri-mock",
        "kind": "instance",
        "software": {"name": "ccri-mock", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Local mock of the Care Connect Reference Implementation", "url": base.as_str()},
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
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}]
        }]
    });
    fhir_json(StatusCode::OK, &body)
}

/// `Source:param` of every reference parameter that can point at `kind`.
fn rev_includes(kind: &str) -> Vec<String> {
    R4.types()
        .flat_map(|source| R4.params(source).map(move |p| (source, p)))
        .filter(|(_, p)| {
            p.param_type == ParamType::Reference
                && (p.targets.is_empty() || p.targets.iter().any(|t| t == kind))
        })
        .map(|(source, p)| format!("{source}:{}", p.name))
        .collect()
}
