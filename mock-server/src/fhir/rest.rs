//! The RESTful interactions (FHIR R4 §3.1.0), apart from how they arrive: a
//! [`Call`] comes from an HTTP request ([`super::routes`]) or from an entry of a
//! batch or transaction Bundle ([`super::transaction`]), and gives a [`Reply`]
//! that each renders its own way. So a Bundle entry is checked, scoped and
//! stored exactly like the same request sent alone.
//!
//! Reads take a snapshot of the store themselves; changes run inside a store
//! transaction ([`Writer`]), so a transaction Bundle can run several and roll all back.

use axum::http::StatusCode;
use serde_json::{Value, json};
use smart_protocol::Interaction;

use super::compartment::visibility;
use super::definitions::R4;
use super::outcome::Outcome;
use super::search::{everything, execute, history};
use super::store::{Found, Snapshot, Version, WriteError, Writer};
use super::validate::validate;
use crate::auth::verify::AccessContext;
use crate::state::{AppState, FhirBase};

/// Search parameters: `(name, value)` pairs in the order sent.
pub(crate) type Query = Vec<(String, String)>;

/// A request that only reads.
pub(crate) enum Lookup {
    Read {
        kind: String,
        id: String,
    },
    Vread {
        kind: String,
        id: String,
        version: String,
    },
    /// `_history` of one resource, a type (`id` absent) or the whole server (both absent).
    History {
        kind: Option<String>,
        id: Option<String>,
        query: Query,
    },
    Search {
        kind: String,
        query: Query,
        lenient: bool,
    },
    /// `Patient/{id}/$everything`, or `Patient/$everything` when `id` is absent.
    Everything {
        id: Option<String>,
        query: Query,
    },
}

/// Which resource a change is about: one named by id, or the one a search finds
/// (a conditional update, patch or delete, R4 §3.1.0.4.3).
pub(crate) enum Target {
    Id(String),
    Condition(Query),
}

/// A request that writes.
pub(crate) enum Change {
    /// `id` is the new resource's, chosen by the caller (a transaction must know it
    /// before it stores anything, to point other entries at it).
    Create {
        kind: String,
        id: String,
        resource: Value,
        if_none_exist: Option<Query>,
    },
    Update {
        kind: String,
        target: Target,
        resource: Value,
        if_match: Option<u64>,
    },
    /// A JSON Patch document (RFC 6902).
    Patch {
        kind: String,
        target: Target,
        patch: Value,
        if_match: Option<u64>,
    },
    Delete {
        kind: String,
        target: Target,
        if_match: Option<u64>,
    },
}

pub(crate) enum Call {
    Lookup(Lookup),
    Change(Change),
}

/// What an interaction gives back.
pub(crate) enum Reply {
    /// A read: the version found.
    Found(Version),
    /// A write (or a conditional create that found its match): 201 when created.
    Written { version: Version, created: bool },
    /// A delete, with the deletion's version (none when a conditional delete matched nothing).
    Deleted(Option<Version>),
    /// A Bundle (search, history, `$everything`) as JSON text.
    Bundle(Vec<u8>),
}

impl Reply {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Reply::Written { created: true, .. } => StatusCode::CREATED,
            Reply::Deleted(_) => StatusCode::NO_CONTENT,
            _ => StatusCode::OK,
        }
    }
}

/// Performs one call on its own: a change is its own transaction.
pub(crate) fn perform(
    state: &AppState,
    access: &AccessContext,
    base: &FhirBase,
    call: Call,
) -> Result<Reply, Outcome> {
    match call {
        Call::Lookup(lookup) => look_up(state, access, base, lookup),
        Call::Change(change) => state.fhir.transaction(|tx| apply(tx, access, change)),
    }
}

/// Answers `lookup`; the Bundles it makes link under `base`.
pub(crate) fn look_up(
    state: &AppState,
    access: &AccessContext,
    base: &FhirBase,
    lookup: Lookup,
) -> Result<Reply, Outcome> {
    match lookup {
        Lookup::Read { kind, id } => read(state, access, &kind, &id).map(Reply::Found),
        Lookup::Vread { kind, id, version } => vread(state, access, &kind, &id, &version).map(Reply::Found),
        Lookup::History { kind, id, query } => {
            if let Some(kind) = &kind {
                supported(kind)?;
            }
            history::history(state, access, base, kind.as_deref(), id.as_deref(), &query).map(Reply::Bundle)
        }
        Lookup::Search { kind, query, lenient } => {
            supported(&kind)?;
            execute::search(state, access, base, &kind, &query, lenient).map(Reply::Bundle)
        }
        Lookup::Everything { id, query } => {
            everything::everything(state, access, base, id.as_deref(), &query).map(Reply::Bundle)
        }
    }
}

/// Performs a change inside the transaction `tx`.
pub(crate) fn apply(tx: &mut dyn Writer, access: &AccessContext, change: Change) -> Result<Reply, Outcome> {
    match change {
        Change::Create {
            kind,
            id,
            resource,
            if_none_exist,
        } => create(tx, access, &kind, id, resource, if_none_exist.as_deref()),
        Change::Update {
            kind,
            target,
            resource,
            if_match,
        } => {
            supported(&kind)?;
            let mut resource = resource;
            let id = match target {
                Target::Id(id) => id,
                Target::Condition(query) => match update_target(tx, access, &kind, &query, &resource)? {
                    // The body may leave the id out: the search named the resource.
                    Some(id) => {
                        resource["id"] = json!(id);
                        id
                    }
                    None => return create(tx, access, &kind, super::new_id(), resource, None),
                },
            };
            update(tx, access, &kind, &id, resource, if_match)
        }
        Change::Patch {
            kind,
            target,
            patch,
            if_match,
        } => {
            supported(&kind)?;
            let id = existing_target(tx, access, &kind, target)?;
            let resource = patched(tx, access, &kind, &id, patch)?;
            update(tx, access, &kind, &id, resource, if_match)
        }
        Change::Delete {
            kind,
            target,
            if_match,
        } => {
            supported(&kind)?;
            let id = match target {
                Target::Id(id) => id,
                Target::Condition(query) => {
                    let ids: Vec<String> = execute::find(tx, access, &kind, &query)?
                        .iter()
                        .map(|v| v.key().1.to_owned())
                        .collect();
                    match ids.as_slice() {
                        // Nothing matched: nothing to delete, which is what was asked.
                        [] => return Ok(Reply::Deleted(None)),
                        [one] => one.clone(),
                        many if if_match.is_some() => {
                            let why = "If-Match names one version of one resource";
                            return Err(ambiguous("DELETE", &kind, &query, many.len(), why));
                        }
                        many if many.len() > MAX_MULTIPLE_DELETE => {
                            let why = format!("one conditional delete removes at most {MAX_MULTIPLE_DELETE}");
                            return Err(ambiguous("DELETE", &kind, &query, many.len(), &why));
                        }
                        // Every match, in this one store transaction (conditionalDelete = multiple).
                        many => {
                            for id in many {
                                delete(tx, access, &kind, id, None)?;
                            }
                            return Ok(Reply::Deleted(None));
                        }
                    }
                }
            };
            delete(tx, access, &kind, &id, if_match).map(|v| Reply::Deleted(Some(v)))
        }
    }
}

pub(crate) fn supported(kind: &str) -> Result<(), Outcome> {
    if R4.is_type(kind) {
        Ok(())
    } else {
        Err(Outcome::not_found(format!(
            "this server has no resource type {kind}"
        )))
    }
}

fn valid_id(id: &str) -> Result<(), Outcome> {
    if super::is_valid_id(id) {
        Ok(())
    } else {
        Err(Outcome::invalid(format!("{id:?} is not a valid FHIR id")))
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

fn gone(kind: &str, id: &str) -> Outcome {
    Outcome::new(StatusCode::GONE, "deleted", format!("{kind}/{id} was deleted"))
}

fn read(state: &AppState, access: &AccessContext, kind: &str, id: &str) -> Result<Version, Outcome> {
    supported(kind)?;
    let visible = visibility(access, Interaction::Read, kind, &[])?;
    match state.fhir.find(kind, id)? {
        Found::Missing => Err(Outcome::not_found(format!("{kind}/{id} is not known"))),
        Found::Current(v) | Found::Deleted(v) if !visible.allows(&v) => {
            Err(Outcome::forbidden(outside(kind, id, access)))
        }
        Found::Deleted(_) => Err(gone(kind, id)),
        Found::Current(version) => Ok(version),
    }
}

fn vread(
    state: &AppState,
    access: &AccessContext,
    kind: &str,
    id: &str,
    version: &str,
) -> Result<Version, Outcome> {
    supported(kind)?;
    let visible = visibility(access, Interaction::Vread, kind, &[])?;
    let number: u64 = version
        .parse()
        .map_err(|_| Outcome::invalid(format!("{version:?} is not a version id")))?;
    let found = state
        .fhir
        .vread(kind, id, number)?
        .ok_or_else(|| Outcome::not_found(format!("{kind}/{id}/_history/{version} is not known")))?;
    if !visible.allows(&found) {
        return Err(Outcome::forbidden(outside(kind, id, access)));
    }
    if found.deleted {
        return Err(Outcome::new(
            StatusCode::GONE,
            "deleted",
            format!("{kind}/{id} was deleted in version {version}"),
        ));
    }
    Ok(found)
}

/// The body is a `kind` and valid R4 JSON.
fn check_type(kind: &str, resource: &Value) -> Result<(), Outcome> {
    match resource["resourceType"].as_str() {
        Some(found) if found == kind => validate(resource).map_err(|invalid| {
            Outcome::invalid(format!("not a valid {kind}: {}", invalid.describe(kind))).at(invalid.path(kind))
        }),
        found => Err(Outcome::invalid(format!(
            "the body is a {}, but the URL says {kind}",
            found.unwrap_or("?")
        ))
        .at(format!("{kind}.resourceType"))),
    }
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

/// More matches than a conditional interaction takes (R4 §3.1.0.4.3): 412, with
/// the rule it broke.
fn ambiguous(method: &str, kind: &str, query: &[(String, String)], matches: usize, rule: &str) -> Outcome {
    let query = serde_urlencoded::to_string(query).unwrap_or_default();
    Outcome::new(
        StatusCode::PRECONDITION_FAILED,
        "multiple-matches",
        format!("conditional {method} {kind}?{query} matches {matches} resources: {rule}"),
    )
}

/// The rule of conditional create, update and patch.
const AT_MOST_ONE: &str = "it must match at most one";

/// Most resources one conditional delete removes; a broader one is refused (412),
/// as HAPI FHIR refuses one past its own limit.
const MAX_MULTIPLE_DELETE: usize = 1_000;

/// The id of the one resource `query` finds; `None` when it finds none.
fn only_match(
    tx: &dyn Snapshot,
    access: &AccessContext,
    kind: &str,
    query: &Query,
    method: &str,
) -> Result<Option<String>, Outcome> {
    match execute::find(tx, access, kind, query)?.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.key().1.to_owned())),
        many => Err(ambiguous(method, kind, query, many.len(), AT_MOST_ONE)),
    }
}

/// A conditional update's target (R4 §3.1.0.4.3): the one match (whose id the
/// body may repeat but not contradict), the body's own id when nothing matches
/// (update as create), or `None` to create with a new id.
fn update_target(
    tx: &dyn Snapshot,
    access: &AccessContext,
    kind: &str,
    query: &Query,
    resource: &Value,
) -> Result<Option<String>, Outcome> {
    let body_id = resource.get("id").and_then(Value::as_str);
    match (only_match(tx, access, kind, query, "PUT")?, body_id) {
        (Some(found), Some(body_id)) if found != body_id => Err(Outcome::invalid(format!(
            "the search finds {kind}/{found}, but the body's id is {body_id:?}"
        ))
        .at(format!("{kind}.id"))),
        (found, body_id) => Ok(found.or(body_id.map(str::to_owned))),
    }
}

/// The id of the existing resource a patch is about: exactly one match for a
/// conditional patch.
fn existing_target(
    tx: &dyn Snapshot,
    access: &AccessContext,
    kind: &str,
    target: Target,
) -> Result<String, Outcome> {
    match target {
        Target::Id(id) => Ok(id),
        Target::Condition(query) => only_match(tx, access, kind, &query, "PATCH")?.ok_or_else(|| {
            let query = serde_urlencoded::to_string(&query).unwrap_or_default();
            Outcome::not_found(format!("conditional PATCH {kind}?{query} matches nothing"))
        }),
    }
}

fn create(
    tx: &mut dyn Writer,
    access: &AccessContext,
    kind: &str,
    id: String,
    mut resource: Value,
    if_none_exist: Option<&[(String, String)]>,
) -> Result<Reply, Outcome> {
    supported(kind)?;
    check_type(kind, &resource)?;
    // The server assigns the id, and the check sees the resource as it will be stored.
    resource["id"] = json!(id);
    let visible = visibility(access, Interaction::Create, kind, &[])?;
    if !visible.allows_write(&resource) {
        return Err(Outcome::forbidden(format!(
            "this token may not create that {kind}: {}",
            outside(kind, "(new)", access)
        )));
    }
    // Conditional create (R4 §3.1.0.8.1): none found → create, one → that one, more → 412.
    if let Some(query) = if_none_exist {
        let found = execute::find(tx, access, kind, query).map_err(|e| e.at("If-None-Exist"))?;
        match found.as_slice() {
            [] => {}
            [one] => {
                return Ok(Reply::Written {
                    version: one.clone(),
                    created: false,
                });
            }
            many => {
                return Err(ambiguous("create", kind, query, many.len(), AT_MOST_ONE).at("If-None-Exist"));
            }
        }
    }
    Ok(Reply::Written {
        version: tx.create(kind, resource),
        created: true,
    })
}

fn update(
    tx: &mut dyn Writer,
    access: &AccessContext,
    kind: &str,
    id: &str,
    resource: Value,
    if_match: Option<u64>,
) -> Result<Reply, Outcome> {
    valid_id(id)?;
    check_type(kind, &resource)?;
    match resource.get("id").and_then(Value::as_str) {
        Some(body_id) if body_id == id => {}
        Some(body_id) => {
            return Err(
                Outcome::invalid(format!("the body's id {body_id:?} differs from the URL's {id:?}"))
                    .at(format!("{kind}.id")),
            );
        }
        None => {
            return Err(
                Outcome::invalid("an update must carry the resource's id in the body")
                    .at(format!("{kind}.id")),
            );
        }
    }
    let visible = visibility(access, Interaction::Update, kind, &[])?;
    let existing_allowed = match tx.find(kind, id, None) {
        Found::Current(v) | Found::Deleted(v) => visible.allows(&v),
        Found::Missing => true,
    };
    if !existing_allowed || !visible.allows_write(&resource) {
        return Err(Outcome::forbidden(outside(kind, id, access)));
    }
    let (version, created) = tx
        .update(kind, id, resource, if_match)
        .map_err(|e| conflict(e, kind, id))?;
    Ok(Reply::Written { version, created })
}

/// The current `kind/id` with the JSON Patch applied: what the update will store.
fn patched(
    tx: &dyn Snapshot,
    access: &AccessContext,
    kind: &str,
    id: &str,
    patch: Value,
) -> Result<Value, Outcome> {
    let visible = visibility(access, Interaction::Update, kind, &[])?;
    let current = match tx.find(kind, id, None) {
        Found::Missing => return Err(Outcome::not_found(format!("{kind}/{id} is not known"))),
        Found::Current(v) | Found::Deleted(v) if !visible.allows(&v) => {
            return Err(Outcome::forbidden(outside(kind, id, access)));
        }
        Found::Deleted(_) => return Err(gone(kind, id)),
        Found::Current(version) => version,
    };
    let patch: json_patch::Patch = serde_json::from_value(patch)
        .map_err(|e| Outcome::invalid(format!("not a JSON Patch document (RFC 6902): {e}")))?;
    let mut resource = current.resource();
    json_patch::patch(&mut resource, &patch).map_err(|e| {
        let status = match e.kind {
            json_patch::PatchErrorKind::TestFailed => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        Outcome::new(
            status,
            "processing",
            format!(
                "JSON Patch operation {} ({}) failed: {}",
                e.operation, e.path, e.kind
            ),
        )
        .at(super::validate::path(kind, &e.path.to_string()))
    })?;
    if !resource.is_object() {
        return Err(Outcome::invalid("the patched resource is not a JSON object"));
    }
    Ok(resource)
}

fn delete(
    tx: &mut dyn Writer,
    access: &AccessContext,
    kind: &str,
    id: &str,
    if_match: Option<u64>,
) -> Result<Version, Outcome> {
    let visible = visibility(access, Interaction::Delete, kind, &[])?;
    if let Found::Current(existing) = tx.find(kind, id, None)
        && !visible.allows(&existing)
    {
        return Err(Outcome::forbidden(outside(kind, id, access)));
    }
    tx.delete(kind, id, if_match).map_err(|e| conflict(e, kind, id))
}

/// The operations this server offers, by name; anything else is a clear 501.
pub(crate) fn operation(kind: &str, id: Option<String>, name: &str, query: Query) -> Result<Lookup, Outcome> {
    match (kind, name) {
        ("Patient", "everything") => Ok(Lookup::Everything { id, query }),
        _ => Err(unsupported_operation(name)),
    }
}

pub(crate) fn unsupported_operation(name: &str) -> Outcome {
    Outcome::new(
        StatusCode::NOT_IMPLEMENTED,
        "not-supported",
        format!("the operation ${name} is not supported by this server (it offers Patient/$everything)"),
    )
}

/// An ETag, `W/"3"` (or a bare `3`), as the version number it names.
pub(crate) fn version_tag(text: &str) -> Result<u64, Outcome> {
    let number = text.trim().trim_start_matches("W/").trim_matches('"');
    number
        .parse()
        .map_err(|_| Outcome::invalid(format!("{text:?} is not an ETag like W/\"1\"")))
}
