//! The RESTful interactions (FHIR R4 §3.1.0): read, vread, history, search,
//! create, update, delete. Each checks the resource type, asks
//! [`visibility`] what the token may touch, and answers FHIR JSON with `ETag`,
//! `Location` and `Prefer` handled as the spec says.

use axum::extract::{Path, RawForm, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use smart_protocol::Interaction;

use super::access::Authorized;
use super::body::ResourceBody;
use super::compartment::visibility;
use super::definitions::R4;
use super::outcome::{Outcome, fhir_json, fhir_text};
use super::search::execute;
use super::store::{Found, Version, WriteError};
use crate::auth::verify::AccessContext;
use crate::state::AppState;

type Answer = Result<Response, Outcome>;

fn supported(kind: &str) -> Result<(), Outcome> {
    if R4.is_type(kind) {
        Ok(())
    } else {
        Err(Outcome::not_found(format!(
            "this server has no resource type {kind}"
        )))
    }
}

/// FHIR ids: `[A-Za-z0-9\-.]{1,64}`.
fn valid_id(id: &str) -> Result<(), Outcome> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Outcome::invalid(format!("{id:?} is not a valid FHIR id")))
    }
}

fn etag(version: &Version) -> HeaderValue {
    HeaderValue::from_str(&format!("W/\"{}\"", version.version_id)).expect("a number is a valid header")
}

/// A resource with its ETag.
fn versioned(status: StatusCode, version: &Version) -> Response {
    let mut response = fhir_text(status, version.json.clone());
    response.headers_mut().insert(header::ETAG, etag(version));
    response
}

pub(crate) async fn read(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    Path((kind, id)): Path<(String, String)>,
) -> Answer {
    supported(&kind)?;
    let visible = visibility(&access, Interaction::Read, &kind, &[])?;
    match state.fhir.find(&kind, &id) {
        Found::Missing => Err(Outcome::not_found(format!("{kind}/{id} is not known"))),
        Found::Current(v) | Found::Deleted(v) if !visible.allows(&v) => {
            Err(Outcome::forbidden(outside(&kind, &id, &access)))
        }
        Found::Deleted(_) => Err(Outcome::new(
            StatusCode::GONE,
            "deleted",
            format!("{kind}/{id} was deleted"),
        )),
        Found::Current(version) => Ok(versioned(StatusCode::OK, &version)),
    }
}

fn outside(kind: &str, id: &str, access: &AccessContext) -> String {
    match &access.patient {
        Some(patient) => {
            format!("{kind}/{id} is outside what this token may see (the compartment of Patient/{patient})")
        }
        None => format!("{kind}/{id} is outside what this token's scopes allow"),
    }
}

pub(crate) async fn vread(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    Path((kind, id, version)): Path<(String, String, String)>,
) -> Answer {
    supported(&kind)?;
    let visible = visibility(&access, Interaction::Vread, &kind, &[])?;
    let number: u64 = version
        .parse()
        .map_err(|_| Outcome::invalid(format!("{version:?} is not a version id")))?;
    let found = state
        .fhir
        .vread(&kind, &id, number)
        .ok_or_else(|| Outcome::not_found(format!("{kind}/{id}/_history/{version} is not known")))?;
    if !visible.allows(&found) {
        return Err(Outcome::forbidden(outside(&kind, &id, &access)));
    }
    if found.deleted {
        return Err(Outcome::new(
            StatusCode::GONE,
            "deleted",
            format!("{kind}/{id} was deleted in version {version}"),
        ));
    }
    Ok(versioned(StatusCode::OK, &found))
}

pub(crate) async fn history(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    Path((kind, id)): Path<(String, String)>,
) -> Answer {
    supported(&kind)?;
    let visible = visibility(&access, Interaction::History, &kind, &[])?;
    let versions = state.fhir.history(&kind, &id);
    if versions.is_empty() {
        return Err(Outcome::not_found(format!("{kind}/{id} is not known")));
    }
    if !versions.iter().all(|v| visible.allows(v)) {
        return Err(Outcome::forbidden(outside(&kind, &id, &access)));
    }
    let base = &state.urls.fhir_base;
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| {
            let url = format!("{base}/{kind}/{id}/_history/{}", v.version_id);
            let resource = v.resource();
            let last_modified = resource.pointer("/meta/lastUpdated").cloned().unwrap_or(Value::Null);
            let mut entry = json!({
                "fullUrl": format!("{base}/{kind}/{id}"),
                "request": {"method": if v.deleted { "DELETE" } else if v.version_id == 1 { "POST" } else { "PUT" }, "url": format!("{kind}/{id}")},
                "response": {"status": if v.deleted { "204" } else { "200" }, "etag": format!("W/\"{}\"", v.version_id), "lastModified": last_modified, "location": url},
            });
            if !v.deleted {
                entry["resource"] = resource;
            }
            entry
        })
        .collect();
    let bundle =
        json!({"resourceType": "Bundle", "type": "history", "total": entries.len(), "entry": entries});
    Ok(fhir_json(StatusCode::OK, &bundle))
}

fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, Outcome> {
    serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| Outcome::invalid(format!("malformed query string: {e}")))
}

/// `Prefer: handling=lenient`: unknown search parameters are ignored, not refused.
fn lenient(headers: &HeaderMap) -> bool {
    prefers(headers, "handling=lenient")
}

pub(crate) async fn search_get(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Answer {
    supported(&kind)?;
    let query = query_pairs(query.as_deref())?;
    Ok(fhir_text(
        StatusCode::OK,
        execute::search(&state, &access, &kind, &query, lenient(&headers))?,
    ))
}

/// `POST {type}/_search`: parameters in a form body (and the query string).
pub(crate) async fn search_post(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Answer {
    supported(&kind)?;
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_encoded && !form.is_empty() {
        return Err(Outcome::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "_search takes application/x-www-form-urlencoded parameters",
        ));
    }
    let mut params = query_pairs(query.as_deref())?;
    let body: Vec<(String, String)> = serde_urlencoded::from_bytes(&form)
        .map_err(|e| Outcome::invalid(format!("malformed form body: {e}")))?;
    params.extend(body);
    Ok(fhir_text(
        StatusCode::OK,
        execute::search(&state, &access, &kind, &params, lenient(&headers))?,
    ))
}

/// Whether a `Prefer` header asks for `preference` (`return=minimal`, …).
fn prefers(headers: &HeaderMap, preference: &str) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.replace(' ', "").split([',', ';']).any(|p| p == preference))
}

/// `Prefer: return=minimal` means no body.
fn wants_minimal(headers: &HeaderMap) -> bool {
    prefers(headers, "return=minimal")
}

/// `If-Match: W/"3"` → 3.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Outcome> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    let number = text.trim().trim_start_matches("W/").trim_matches('"');
    number
        .parse()
        .map(Some)
        .map_err(|_| Outcome::invalid(format!("If-Match {text:?} is not an ETag like W/\"1\"")))
}

fn written(state: &AppState, status: StatusCode, version: &Version, headers: &HeaderMap) -> Response {
    let (kind, id) = version.key();
    let mut response = if wants_minimal(headers) {
        status.into_response()
    } else {
        fhir_text(status, version.json.clone())
    };
    let location = format!(
        "{}/{kind}/{id}/_history/{}",
        state.urls.fhir_base, version.version_id
    );
    response.headers_mut().insert(header::ETAG, etag(version));
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn conflict(error: WriteError, kind: &str, id: &str) -> Outcome {
    match error {
        WriteError::VersionConflict { current } => Outcome::new(
            StatusCode::PRECONDITION_FAILED,
            "conflict",
            format!("If-Match does not name the current version of {kind}/{id} (W/\"{current}\")"),
        ),
        WriteError::NotFound => Outcome::not_found(format!("{kind}/{id} is not known")),
        WriteError::Gone => Outcome::new(
            StatusCode::GONE,
            "deleted",
            format!("{kind}/{id} was already deleted"),
        ),
    }
}

fn check_type(kind: &str, resource: &Value) -> Result<(), Outcome> {
    match resource["resourceType"].as_str() {
        Some(found) if found == kind => Ok(()),
        found => Err(Outcome::invalid(format!(
            "the body is a {}, but the URL says {kind}",
            found.unwrap_or("?")
        ))),
    }
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    Path(kind): Path<String>,
    headers: HeaderMap,
    ResourceBody(resource): ResourceBody,
) -> Answer {
    supported(&kind)?;
    check_type(&kind, &resource)?;
    // The server assigns the id, and the check sees the resource as it will be stored.
    let mut resource = resource;
    resource["id"] = json!(crate::fhir::new_id());
    let visible = visibility(&access, Interaction::Create, &kind, &[])?;
    if !visible.allows_write(&resource) {
        return Err(Outcome::forbidden(format!(
            "this token may not create that {kind}: {}",
            outside(&kind, "(new)", &access)
        )));
    }
    let Some(condition) = headers.get("if-none-exist") else {
        let version = state.fhir.create(&kind, resource);
        return Ok(written(&state, StatusCode::CREATED, &version, &headers));
    };
    // Conditional create (R4 §3.1.0.8.1): none found → create, one → 200 with it, more → 412.
    let condition = condition
        .to_str()
        .map_err(|_| Outcome::invalid("If-None-Exist is not text").at("If-None-Exist"))?;
    let query = query_pairs(Some(condition.trim_start_matches('?')))?;
    let created = state.fhir.create_unless(&kind, resource, |store| {
        execute::find(store, &access, &kind, &query)
    })?;
    match created {
        Ok(version) => Ok(written(&state, StatusCode::CREATED, &version, &headers)),
        Err(found) => match found.as_slice() {
            [one] => Ok(written(&state, StatusCode::OK, one, &headers)),
            _ => Err(Outcome::new(
                StatusCode::PRECONDITION_FAILED,
                "duplicate",
                format!(
                    "If-None-Exist: {condition} matches {} resources; it must match at most one",
                    found.len()
                ),
            )
            .at("If-None-Exist")),
        },
    }
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    ResourceBody(resource): ResourceBody,
) -> Answer {
    supported(&kind)?;
    valid_id(&id)?;
    check_type(&kind, &resource)?;
    match resource.get("id").and_then(Value::as_str) {
        Some(body_id) if body_id == id => {}
        Some(body_id) => {
            return Err(Outcome::invalid(format!(
                "the body's id {body_id:?} differs from the URL's {id:?}"
            )));
        }
        None => {
            return Err(Outcome::invalid(
                "an update must carry the resource's id in the body",
            ));
        }
    }
    let visible = visibility(&access, Interaction::Update, &kind, &[])?;
    let existing_allowed = match state.fhir.find(&kind, &id) {
        Found::Current(v) | Found::Deleted(v) => visible.allows(&v),
        Found::Missing => true,
    };
    if !existing_allowed || !visible.allows_write(&resource) {
        return Err(Outcome::forbidden(outside(&kind, &id, &access)));
    }
    let (version, created) = state
        .fhir
        .update(&kind, &id, resource, if_match(&headers)?)
        .map_err(|e| conflict(e, &kind, &id))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(written(&state, status, &version, &headers))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Authorized(access): Authorized,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    supported(&kind)?;
    let visible = visibility(&access, Interaction::Delete, &kind, &[])?;
    if let Found::Current(existing) = state.fhir.find(&kind, &id)
        && !visible.allows(&existing)
    {
        return Err(Outcome::forbidden(outside(&kind, &id, &access)));
    }
    let version = state
        .fhir
        .delete(&kind, &id, if_match(&headers)?)
        .map_err(|e| conflict(e, &kind, &id))?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::ETAG, etag(&version));
    Ok(response)
}

/// Any other path under the FHIR base.
pub(crate) async fn unknown(_: Authorized, uri: axum::http::Uri) -> Outcome {
    let path = uri.path();
    if let Some(operation) = path.split('/').find(|segment| segment.starts_with('$')) {
        return Outcome::new(
            StatusCode::NOT_IMPLEMENTED,
            "not-supported",
            format!("the operation {operation} is not supported by this server"),
        );
    }
    Outcome::not_found(format!("no FHIR interaction at {path}"))
}

/// `POST` to the base: a batch or transaction Bundle.
pub(crate) async fn batch(_: Authorized) -> Outcome {
    Outcome::new(
        StatusCode::NOT_IMPLEMENTED,
        "not-supported",
        "batch and transaction Bundles are not supported by this server yet: send each request on its own",
    )
}

/// A method the path does not take (`PATCH`, say): an OperationOutcome, not an empty 405.
pub(crate) async fn not_allowed(_: Authorized, method: axum::http::Method, uri: axum::http::Uri) -> Outcome {
    Outcome::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "not-supported",
        format!("{method} is not supported on {}", uri.path()),
    )
}
