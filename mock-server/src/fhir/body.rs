//! The body of a create or update: FHIR JSON of the type in the URL, or a clear
//! OperationOutcome saying why not (413 too large, 415 not JSON, 400 malformed).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde_json::Value;

use super::outcome::Outcome;
use crate::state::AppState;

/// A parsed resource body: a JSON object with a `resourceType`.
pub(crate) struct ResourceBody(pub Value);

impl FromRequest<AppState> for ResourceBody {
    type Rejection = Outcome;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Outcome> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !matches!(media_type.as_str(), "application/fhir+json" | "application/json") {
            return Err(Outcome::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not-supported",
                format!("send the resource as application/fhir+json, not {content_type:?}"),
            ));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Outcome::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-costly",
                    "the resource is larger than this server accepts",
                )
            } else {
                Outcome::invalid(format!("cannot read the body: {rejection}"))
            }
        })?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| Outcome::invalid(format!("malformed JSON: {e}")))?;
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
