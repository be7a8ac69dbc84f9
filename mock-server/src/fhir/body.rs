//! Request bodies: a resource (create, update, a Bundle) or a JSON Patch, or a
//! clear OperationOutcome saying why not (413 too large, 415 wrong media type,
//! 400 malformed).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde_json::Value;

use super::outcome::Outcome;
use crate::state::AppState;

/// A parsed resource body: a JSON object with a `resourceType`.
pub(crate) struct ResourceBody(pub Value);

/// A JSON Patch document (RFC 6902), sent as `application/json-patch+json`.
pub(crate) struct PatchBody(pub Value);

/// The body's media type, lower case, without parameters.
fn media_type(request: &Request) -> String {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn unsupported(message: String) -> Outcome {
    Outcome::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-supported", message)
}

/// The body as JSON, within the route's size limit.
async fn json(request: Request, state: &AppState) -> Result<Value, Outcome> {
    let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Outcome::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-costly",
                "the body is larger than this server accepts",
            )
        } else {
            Outcome::invalid(format!("cannot read the body: {rejection}"))
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Outcome::invalid(format!("malformed JSON: {e}")))
}

impl FromRequest<AppState> for ResourceBody {
    type Rejection = Outcome;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Outcome> {
        let media_type = media_type(&request);
        if !matches!(media_type.as_str(), "application/fhir+json" | "application/json") {
            return Err(unsupported(format!(
                "send the resource as application/fhir+json, not {media_type:?}"
            )));
        }
        let value = json(request, state).await?;
        if !value.is_object() {
            return Err(Outcome::invalid(
                "the body must be a JSON object (a FHIR resource)",
            ));
        }
        if value.get("resourceType").and_then(Value::as_str).is_none() {
            return Err(Outcome::invalid("the resource has no resourceType"));
        }
        if value.get("meta").is_some_and(|meta| !meta.is_object()) {
            return Err(Outcome::invalid("meta must be an object"));
        }
        Ok(ResourceBody(value))
    }
}

impl FromRequest<AppState> for PatchBody {
    type Rejection = Outcome;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Outcome> {
        let media_type = media_type(&request);
        if media_type != "application/json-patch+json" {
            return Err(unsupported(format!(
                "PATCH takes a JSON Patch (application/json-patch+json), not {media_type:?}; \
                 FHIRPath Patch is not supported by this server"
            )));
        }
        Ok(PatchBody(json(request, state).await?))
    }
}
