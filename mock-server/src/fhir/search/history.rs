//! `_history` (R4 §3.1.0.5): the versions of one resource, of a type, or of the
//! whole server, newest first, as a history Bundle. `_since`, `_at` and `_count`
//! work as the spec says, and later pages see what the first one saw (the same
//! snapshot as search pages). Each version is shown only when the token may see
//! it; a type the token may not read is left out of the server's history.

use std::collections::HashMap;

use serde_json::{Value, json};
use smart_protocol::Interaction;

use super::date::{self, Range};
use super::execute::bundle_head;
use super::window::Window;
use crate::auth::verify::AccessContext;
use crate::fhir::compartment::{Visibility, visibility};
use crate::fhir::outcome::Outcome;
use crate::fhir::store::{Snapshot, Version};
use crate::state::{AppState, FhirBase};

/// The history Bundle of `kind/id`, of `kind`, or of everything.
pub(crate) fn history(
    state: &AppState,
    access: &AccessContext,
    base: &FhirBase,
    kind: Option<&str>,
    id: Option<&str>,
    query: &[(String, String)],
) -> Result<Vec<u8>, Outcome> {
    let path = match (kind, id) {
        (Some(kind), Some(id)) => format!("{kind}/{id}/_history"),
        (Some(kind), None) => format!("{kind}/_history"),
        (None, _) => "_history".to_owned(),
    };
    let mut at = None;
    let window = Window::parse(query, &path, "_since, _at and _count", |name, value| {
        if name != "_at" {
            return Ok(false);
        }
        at = Some(
            date::parse(value).ok_or_else(|| format!("_at must be a date or an instant, not {value:?}"))?,
        );
        Ok(true)
    })?;
    state.fhir.read(|store| {
        let snapshot = window.snapshot(store, &path)?;
        let versions: Vec<&Version> = match (kind, id) {
            (Some(kind), Some(id)) => {
                let visible = visibility(access, Interaction::History, kind, &[])?;
                let all = store.versions(kind, id);
                if all.is_empty() {
                    return Err(Outcome::not_found(format!("{kind}/{id} is not known")));
                }
                if !all.iter().all(|v| visible.allows(v)) {
                    return Err(Outcome::forbidden(format!(
                        "{kind}/{id} is outside what this token may see"
                    )));
                }
                all.into_iter()
                    .rev()
                    .filter(|v| v.seq <= snapshot && window.changed(v))
                    .collect()
            }
            (Some(kind), None) => {
                let visible = visibility(access, Interaction::History, kind, &[])?;
                store
                    .changes(Some(kind), window.since, snapshot)
                    .into_iter()
                    .filter(|v| visible.allows(v))
                    .collect()
            }
            (None, _) => {
                // One scope decision per type, not per version.
                let mut visibilities: HashMap<&str, Option<Visibility>> = HashMap::new();
                store
                    .changes(None, window.since, snapshot)
                    .into_iter()
                    .filter(|v| {
                        visibilities
                            .entry(v.key().0)
                            .or_insert_with(|| visibility(access, Interaction::History, v.key().0, &[]).ok())
                            .as_ref()
                            .is_some_and(|visible| visible.allows(v))
                    })
                    .collect()
            }
        };
        let versions = match at {
            Some(at) => versions
                .into_iter()
                .filter(|v| current_during(store, v, at, snapshot))
                .collect(),
            None => versions,
        };
        let total = versions.len();
        let base = base.as_str();
        let paging = window.paging(format!("{base}/{path}"), snapshot);
        let entries: Vec<Value> = paging
            .page(versions)
            .into_iter()
            .map(|v| entry(base, v))
            .collect();
        let mut bundle = bundle_head("history", paging.links(total));
        bundle["total"] = json!(total);
        bundle["entry"] = Value::Array(entries);
        Ok(bundle.to_string().into_bytes())
    })
}

/// `_at`: whether `version` was the current one at some moment of `at`, from its
/// own `lastUpdated` until the next version's (a deletion is never current).
fn current_during(store: &dyn Snapshot, version: &Version, at: Range, snapshot: u64) -> bool {
    if version.deleted {
        return false;
    }
    let (kind, id) = version.key();
    let from = version.last_updated.timestamp_millis();
    let until = store
        .versions(kind, id)
        .iter()
        .find(|later| later.version_id > version.version_id && later.seq <= snapshot)
        .map_or(i64::MAX, |later| later.last_updated.timestamp_millis());
    from < at.end && until > at.start
}

/// One version as a history entry: the resource (unless deleted) and what made it.
fn entry(base: &str, version: &Version) -> Value {
    let (kind, id) = version.key();
    let method = match (version.deleted, version.version_id) {
        (true, _) => "DELETE",
        (false, 1) => "POST",
        (false, _) => "PUT",
    };
    let mut entry = json!({
        "fullUrl": format!("{base}/{kind}/{id}"),
        "request": {"method": method, "url": if method == "POST" { kind.to_owned() } else { format!("{kind}/{id}") }},
        "response": {
            "status": if version.deleted { "204" } else if method == "POST" { "201" } else { "200" },
            "etag": version.etag(),
            "lastModified": crate::fhir::instant(version.last_updated),
            "location": format!("{kind}/{id}/_history/{}", version.version_id),
        },
    });
    if !version.deleted {
        entry["resource"] = version.resource();
    }
    entry
}
