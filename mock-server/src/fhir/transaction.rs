//! Batch and transaction Bundles POSTed to the base (R4 §3.1.0.11).
//!
//! Each entry's `request` becomes the same [`Call`] an HTTP request would, so it
//! is scoped and checked exactly like one.
//!
//! - A **batch** performs its entries one by one; each answers on its own, a
//!   failure in its entry's `response.outcome`.
//! - A **transaction** is all or nothing: its changes run in one store
//!   transaction, in the spec's order (DELETE, POST, PUT/PATCH), after the
//!   `urn:uuid:` full URLs of new resources have been given ids and every
//!   reference to them (and every conditional reference, `Patient?identifier=…`)
//!   rewritten. The first failure rolls all back and is the answer, naming its
//!   entry. Its reads run after the changes are committed.

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Value, json};

use super::outcome::Outcome;
use super::rest::{self, Call, Change, Lookup, Query, Reply, Target};
use super::search::execute;
use super::store::{Snapshot, Writer};
use crate::auth::verify::AccessContext;
use crate::state::{AppState, FhirBase};

/// One entry of the posted Bundle: where it is, its `fullUrl`, and its request.
struct Entry {
    index: usize,
    full_url: Option<String>,
    call: Call,
}

/// Processes a batch or transaction Bundle into its response Bundle.
/// `minimal` (`Prefer: return=minimal`) leaves the written resources out.
pub(crate) fn process(
    state: &AppState,
    access: &AccessContext,
    base: &FhirBase,
    mut bundle: Value,
    minimal: bool,
) -> Result<Value, Outcome> {
    if bundle["resourceType"] != "Bundle" {
        return Err(Outcome::invalid("POST to the base takes a batch or transaction Bundle").at("Bundle"));
    }
    // Taken, not copied: a transaction may be many MiB.
    let entries = match bundle["entry"].take() {
        Value::Null => Vec::new(),
        Value::Array(entries) => entries,
        _ => return Err(Outcome::invalid("entry must be an array").at("Bundle.entry")),
    };
    let parsed = entries.into_iter().enumerate().map(|(index, entry)| {
        // The base the Bundle came to, or the server's own (a launch link's base is
        // an alias of it): an app may write either.
        parse_entry(&[base.as_str(), &state.urls.fhir_base], entry)
            .map(|(full_url, call)| Entry {
                index,
                full_url,
                call,
            })
            .map_err(|e| e.in_entry(index))
    });
    let responses = match bundle["type"].as_str() {
        Some("batch") => parsed
            .map(|entry| {
                let reply = entry.and_then(|entry| rest::perform(state, access, base, entry.call));
                response(base.as_str(), reply, minimal)
            })
            .collect(),
        Some("transaction") => transaction(state, access, base, parsed.collect::<Result<_, _>>()?, minimal)?,
        other => {
            return Err(Outcome::invalid(format!(
                "Bundle.type must be batch or transaction, not {}",
                other.unwrap_or("absent")
            ))
            .at("Bundle.type"));
        }
    };
    let kind = format!("{}-response", bundle["type"].as_str().unwrap_or_default());
    Ok(json!({
        "resourceType": "Bundle",
        "id": super::new_id(),
        "type": kind,
        "entry": responses,
    }))
}

/// Runs a transaction; the responses are in the entries' order.
fn transaction(
    state: &AppState,
    access: &AccessContext,
    base: &FhirBase,
    entries: Vec<Entry>,
    minimal: bool,
) -> Result<Vec<Value>, Outcome> {
    let count = entries.len();
    let (changes, lookups): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|e| matches!(e.call, Call::Change(_)));
    let mut replies: Vec<Option<Result<Reply, Outcome>>> = (0..count).map(|_| None).collect();
    let written = state.fhir.transaction(|tx| apply_all(tx, access, changes))?;
    for (index, reply) in written {
        replies[index] = Some(Ok(reply));
    }
    for entry in lookups {
        if let Call::Lookup(lookup) = entry.call {
            replies[entry.index] = Some(rest::look_up(state, access, base, lookup));
        }
    }
    Ok(replies
        .into_iter()
        .flatten()
        .map(|reply| response(base.as_str(), reply, minimal))
        .collect())
}

/// The order R4 §3.1.0.11.2 processes a transaction's changes in.
fn order(change: &Change) -> u8 {
    match change {
        Change::Delete { .. } => 0,
        Change::Create { .. } => 1,
        Change::Update { .. } | Change::Patch { .. } => 2,
    }
}

/// Applies a transaction's changes inside `tx`, returning each entry's reply.
fn apply_all(
    tx: &mut dyn Writer,
    access: &AccessContext,
    entries: Vec<Entry>,
) -> Result<Vec<(usize, Reply)>, Outcome> {
    let mut changes: Vec<(usize, Option<String>, Change)> = entries
        .into_iter()
        .filter_map(|e| match e.call {
            Call::Change(change) => Some((e.index, e.full_url, change)),
            Call::Lookup(_) => None,
        })
        .collect();
    refuse_overlaps(tx, access, &changes)?;
    changes.sort_by_key(|(index, _, change)| (order(change), *index));
    let mut replies = Vec::new();
    // Deletes first, so a create in the same transaction may take their place.
    let first_create = changes
        .iter()
        .position(|(_, _, c)| order(c) > 0)
        .unwrap_or(changes.len());
    for (index, _, change) in changes.drain(..first_create) {
        replies.push((
            index,
            rest::apply(tx, access, change).map_err(|e| e.in_entry(index))?,
        ));
    }
    // Each new resource's id, before anything refers to it.
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut pending = Vec::new();
    for (index, full_url, change) in changes {
        let change = match change {
            Change::Create {
                kind,
                id,
                resource,
                if_none_exist: Some(query),
            } => match execute::find(tx, access, &kind, &query)
                .map_err(|e| e.in_entry(index))?
                .as_slice()
            {
                [] => Change::Create {
                    kind,
                    id,
                    resource,
                    if_none_exist: None,
                },
                [one] => {
                    if let Some(url) = full_url {
                        ids.insert(url, format!("{kind}/{}", one.key().1));
                    }
                    replies.push((
                        index,
                        Reply::Written {
                            version: one.clone(),
                            created: false,
                        },
                    ));
                    continue;
                }
                many => {
                    return Err(Outcome::new(
                        StatusCode::PRECONDITION_FAILED,
                        "multiple-matches",
                        format!(
                            "ifNoneExist matches {} resources; it must match at most one",
                            many.len()
                        ),
                    )
                    .in_entry(index));
                }
            },
            other => other,
        };
        if let (
            Some(url),
            Change::Create { kind, id, .. }
            | Change::Update {
                kind,
                target: Target::Id(id),
                ..
            },
        ) = (&full_url, &change)
            && url.starts_with("urn:")
        {
            ids.insert(url.clone(), format!("{kind}/{id}"));
        }
        pending.push((index, change));
    }
    for (index, mut change) in pending {
        if let Change::Create { resource, .. } | Change::Update { resource, .. } = &mut change {
            resolve_references(tx, access, resource, &ids).map_err(|e| e.in_entry(index))?;
        }
        replies.push((
            index,
            rest::apply(tx, access, change).map_err(|e| e.in_entry(index))?,
        ));
    }
    Ok(replies)
}

/// Two entries of a transaction may not change the same resource (R4 §3.1.0.11.2),
/// counting the resources each conditional update, patch or delete resolves to,
/// as they are before any change.
fn refuse_overlaps(
    tx: &dyn Snapshot,
    access: &AccessContext,
    changes: &[(usize, Option<String>, Change)],
) -> Result<(), Outcome> {
    let mut seen: HashSet<(&str, String)> = HashSet::new();
    for (index, _, change) in changes {
        let (kind, target) = match change {
            Change::Update { kind, target, .. }
            | Change::Patch { kind, target, .. }
            | Change::Delete { kind, target, .. } => (kind, target),
            Change::Create { .. } => continue,
        };
        let ids = match target {
            Target::Id(id) => vec![id.clone()],
            Target::Condition(query) => execute::find(tx, access, kind, query)
                .map_err(|e| e.in_entry(*index))?
                .iter()
                .map(|v| v.key().1.to_owned())
                .collect(),
        };
        for id in ids {
            if !seen.insert((kind, id.clone())) {
                return Err(Outcome::invalid(format!(
                    "{kind}/{id} is changed by more than one entry of this transaction"
                ))
                .in_entry(*index));
            }
        }
    }
    Ok(())
}

/// Rewrites, in `resource`, each reference to a new entry's `urn:uuid:` to the id
/// it was given, and each conditional reference to the one resource it finds.
fn resolve_references(
    tx: &dyn Snapshot,
    access: &AccessContext,
    resource: &mut Value,
    ids: &HashMap<String, String>,
) -> Result<(), Outcome> {
    match resource {
        Value::Object(members) => {
            if let Some(Value::String(reference)) = members.get_mut("reference") {
                if let Some(id) = ids.get(reference.as_str()) {
                    *reference = id.clone();
                } else if reference.starts_with("urn:uuid:") || reference.starts_with("urn:oid:") {
                    return Err(Outcome::invalid(format!(
                        "{reference} is not the fullUrl of any entry of this transaction"
                    )));
                } else if let Some((kind, query)) = reference.split_once('?')
                    && !kind.contains('/')
                {
                    let query: Query = serde_urlencoded::from_str(query)
                        .map_err(|e| Outcome::invalid(format!("conditional reference {reference}: {e}")))?;
                    let found = execute::find(tx, access, kind, &query)?;
                    let [one] = found.as_slice() else {
                        return Err(Outcome::new(
                            StatusCode::PRECONDITION_FAILED,
                            "not-found",
                            format!(
                                "conditional reference {reference} matches {} resources; it must match exactly one",
                                found.len()
                            ),
                        ));
                    };
                    *reference = format!("{kind}/{}", one.key().1);
                }
            }
            for value in members.values_mut() {
                resolve_references(tx, access, value, ids)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                resolve_references(tx, access, item, ids)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// An entry's `request` as a call: the method, the URL relative to the base
/// (an absolute one under one of `bases` is made relative), and the entry's resource.
fn parse_entry(bases: &[&str], mut entry: Value) -> Result<(Option<String>, Call), Outcome> {
    let body = entry
        .get_mut("resource")
        .map(Value::take)
        .filter(Value::is_object);
    let request = &entry["request"];
    let method = request["method"]
        .as_str()
        .ok_or_else(|| Outcome::invalid("the entry has no request.method").at("request.method"))?;
    let url = request["url"]
        .as_str()
        .ok_or_else(|| Outcome::invalid("the entry has no request.url").at("request.url"))?;
    let url = bases
        .iter()
        .filter_map(|base| url.strip_prefix(base))
        .find(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
        .unwrap_or(url)
        .trim_start_matches('/');
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let query: Query = serde_urlencoded::from_str(query)
        .map_err(|e| Outcome::invalid(format!("malformed query in request.url: {e}")).at("request.url"))?;
    let segments: Vec<String> = path.split('/').map(str::to_owned).collect();
    let full_url = entry["fullUrl"].as_str().map(str::to_owned);
    let resource = move || {
        body.ok_or_else(|| Outcome::invalid(format!("a {method} entry needs a resource")).at("resource"))
    };
    let if_match = request["ifMatch"]
        .as_str()
        .map(|tag| rest::version_tag(tag).map_err(|e| e.at("request.ifMatch")))
        .transpose()?;
    let target = |id: Option<&String>| match id {
        Some(id) => Target::Id(id.clone()),
        None => Target::Condition(query.clone()),
    };
    let unsupported = || {
        Outcome::new(
            StatusCode::BAD_REQUEST,
            "not-supported",
            format!("{method} {url} is not an interaction this server offers"),
        )
        .at("request.url")
    };
    let call = match (method, segments.as_slice()) {
        ("GET" | "HEAD", [history]) if history == "_history" => Call::Lookup(Lookup::History {
            kind: None,
            id: None,
            query,
        }),
        ("GET" | "HEAD", [kind]) => Call::Lookup(Lookup::Search {
            kind: kind.clone(),
            query,
            lenient: false,
        }),
        ("POST", [kind, search]) if search == "_search" => Call::Lookup(Lookup::Search {
            kind: kind.clone(),
            query,
            lenient: false,
        }),
        ("GET" | "HEAD", [kind, history]) if history == "_history" => Call::Lookup(Lookup::History {
            kind: Some(kind.clone()),
            id: None,
            query,
        }),
        ("GET" | "HEAD", [kind, id]) => match id.strip_prefix('$') {
            Some(name) => Call::Lookup(rest::operation(kind, None, name, query)?),
            None => Call::Lookup(Lookup::Read {
                kind: kind.clone(),
                id: id.clone(),
            }),
        },
        ("GET" | "HEAD", [kind, id, history]) if history == "_history" => Call::Lookup(Lookup::History {
            kind: Some(kind.clone()),
            id: Some(id.clone()),
            query,
        }),
        ("GET" | "HEAD", [kind, id, operation]) if operation.starts_with('$') => {
            Call::Lookup(rest::operation(kind, Some(id.clone()), &operation[1..], query)?)
        }
        ("GET" | "HEAD", [kind, id, history, version]) if history == "_history" => {
            Call::Lookup(Lookup::Vread {
                kind: kind.clone(),
                id: id.clone(),
                version: version.clone(),
            })
        }
        ("POST", [kind]) => {
            let if_none_exist = request["ifNoneExist"]
                .as_str()
                .map(|q| serde_urlencoded::from_str(q.trim_start_matches('?')))
                .transpose()
                .map_err(|e| {
                    Outcome::invalid(format!("malformed ifNoneExist: {e}")).at("request.ifNoneExist")
                })?;
            Call::Change(Change::Create {
                kind: kind.clone(),
                id: super::new_id(),
                resource: resource()?,
                if_none_exist,
            })
        }
        ("PUT", [kind]) | ("PUT", [kind, _]) => Call::Change(Change::Update {
            kind: kind.clone(),
            target: target(segments.get(1)),
            resource: resource()?,
            if_match,
        }),
        ("PATCH", [kind]) | ("PATCH", [kind, _]) => Call::Change(Change::Patch {
            kind: kind.clone(),
            target: target(segments.get(1)),
            patch: binary_patch(&resource()?)?,
            if_match,
        }),
        ("DELETE", [kind]) | ("DELETE", [kind, _]) => Call::Change(Change::Delete {
            kind: kind.clone(),
            target: target(segments.get(1)),
            if_match,
        }),
        _ => return Err(unsupported()),
    };
    if let Call::Change(
        Change::Update {
            target: Target::Condition(q),
            ..
        }
        | Change::Delete {
            target: Target::Condition(q),
            ..
        }
        | Change::Patch {
            target: Target::Condition(q),
            ..
        },
    ) = &call
        && q.is_empty()
    {
        return Err(
            Outcome::invalid(format!("{method} {url} needs an id or search criteria")).at("request.url"),
        );
    }
    Ok((full_url, call))
}

/// A PATCH entry carries its JSON Patch as a Binary (R4 §3.1.0.11.1).
fn binary_patch(resource: &Value) -> Result<Value, Outcome> {
    if resource["resourceType"] != "Binary" || resource["contentType"] != "application/json-patch+json" {
        return Err(Outcome::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "a PATCH entry takes a Binary whose contentType is application/json-patch+json",
        )
        .at("resource"));
    }
    let data = resource["data"].as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| Outcome::invalid(format!("Binary.data is not base64: {e}")).at("resource.data"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Outcome::invalid(format!("Binary.data is not JSON: {e}")).at("resource.data"))
}

/// An entry of the response Bundle.
fn response(base: &str, reply: Result<Reply, Outcome>, minimal: bool) -> Value {
    let reply = match reply {
        Ok(reply) => reply,
        Err(outcome) => {
            return json!({"response": {"status": status_line(outcome.status()), "outcome": outcome.resource()}});
        }
    };
    let status = status_line(reply.status());
    match reply {
        Reply::Found(version) | Reply::Written { version, .. } => {
            let (kind, id) = version.key();
            let mut entry = json!({
                "fullUrl": format!("{base}/{kind}/{id}"),
                "response": {
                    "status": status,
                    "location": format!("{kind}/{id}/_history/{}", version.version_id),
                    "etag": version.etag(),
                    "lastModified": super::instant(version.last_updated),
                },
            });
            if !minimal {
                entry["resource"] = version.resource();
            }
            entry
        }
        Reply::Deleted(version) => {
            let mut entry = json!({"response": {"status": status}});
            if let Some(version) = version {
                entry["response"]["etag"] = json!(version.etag());
            }
            entry
        }
        Reply::Bundle(bytes) => json!({
            "resource": serde_json::from_slice::<Value>(&bytes).unwrap_or_default(),
            "response": {"status": status},
        }),
    }
}

fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    )
}
