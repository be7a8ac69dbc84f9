//! Runs a parsed search against the store and builds the searchset Bundle:
//! matches (narrowed to what the token may see), sorting, paging with stable
//! links, and `_include`/`_revinclude` (each included resource checked against the
//! token like any other read).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};
use smart_protocol::Interaction;

use super::matching::{self, reference_parts};
use super::{Criterion, OFFSET, SNAPSHOT, SearchRequest, parse, sort_key};
use crate::auth::verify::AccessContext;
use crate::fhir::compartment::{Visibility, visibility};
use crate::fhir::outcome::Outcome;
use crate::fhir::store::Inner;
use crate::state::AppState;

pub fn search(
    state: &AppState,
    access: &AccessContext,
    kind: &str,
    query: &[(String, String)],
) -> Result<Value, Outcome> {
    let request = parse(kind, query).map_err(Outcome::invalid)?;
    let params: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let visible = visibility(access, Interaction::Search, kind, &params)?;
    let store = state.fhir.read_lock();
    let snapshot = request.snapshot.unwrap_or_else(|| store.seq());
    if snapshot > store.seq() {
        return Err(Outcome::invalid(format!(
            "{SNAPSHOT}={snapshot} is in the future"
        )));
    }

    // A patient filter, from the token's compartment or the query, picks the
    // candidates from the index; without one the whole type is scanned.
    let pinned = visible
        .compartment
        .as_deref()
        .or_else(|| request.criteria.iter().find_map(Criterion::patient));
    let ids = match pinned {
        Some(patient) => store.ids_for_patient(kind, patient),
        None => store.ids(kind),
    };
    let mut matches: Vec<Arc<Value>> = ids
        .filter_map(|id| store.at(kind, id, Some(snapshot)))
        .map(|version| version.resource)
        .filter(|resource| visible.allows(resource) && request.criteria.iter().all(|c| c.matches(resource)))
        .collect();
    if !request.sort.is_empty() {
        let mut keyed: Vec<_> = matches
            .into_iter()
            .map(|r| {
                (
                    request
                        .sort
                        .iter()
                        .map(|s| sort_key(&r, s.param))
                        .collect::<Vec<_>>(),
                    r,
                )
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            a.iter()
                .zip(b)
                .zip(&request.sort)
                .map(|((x, y), sort)| if sort.descending { y.cmp(x) } else { x.cmp(y) })
                .find(|order| order.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        matches = keyed.into_iter().map(|(_, r)| r).collect();
    }

    let total = matches.len();
    let base = &state.urls.fhir_base;
    let link = |relation: &str, offset: usize| {
        let mut pairs = request.echo.clone();
        pairs.push((SNAPSHOT.into(), snapshot.to_string()));
        pairs.push((OFFSET.into(), offset.to_string()));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        json!({"relation": relation, "url": format!("{base}/{kind}?{query}")})
    };
    let mut links = vec![link("self", request.offset)];
    let mut entries = Vec::new();
    if !request.summary_count {
        let page: Vec<Arc<Value>> = matches
            .into_iter()
            .skip(request.offset)
            .take(request.count)
            .collect();
        if request.count > 0 && request.offset + request.count < total {
            links.push(link("next", request.offset + request.count));
        }
        if request.offset > 0 {
            links.push(link("previous", request.offset.saturating_sub(request.count)));
        }
        let included = includes(&store, access, &request, &page, snapshot);
        let entry = |resource: &Value, mode: &str| {
            let kind = resource["resourceType"].as_str().unwrap_or_default();
            let id = resource["id"].as_str().unwrap_or_default();
            json!({"fullUrl": format!("{base}/{kind}/{id}"), "resource": resource, "search": {"mode": mode}})
        };
        entries.extend(page.iter().map(|r| entry(r, "match")));
        entries.extend(included.iter().map(|r| entry(r, "include")));
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": crate::fhir::new_id(),
        "meta": {"lastUpdated": crate::fhir::now_instant()},
        "type": "searchset",
        "link": links,
        "entry": entries,
    });
    if request.total {
        bundle["total"] = json!(total);
    }
    Ok(bundle)
}

/// The resources `_include` and `_revinclude` add, each visible to the token.
fn includes(
    store: &Inner,
    access: &AccessContext,
    request: &SearchRequest,
    page: &[Arc<Value>],
    snapshot: u64,
) -> Vec<Arc<Value>> {
    let mut seen: HashSet<String> = page.iter().map(|r| key(r)).collect();
    // One scope decision per (type, interaction), not per resource.
    let mut visibilities: HashMap<(String, Interaction), Option<Visibility>> = HashMap::new();
    let mut allowed = |kind: &str, interaction, resource: &Value| {
        visibilities
            .entry((kind.to_owned(), interaction))
            .or_insert_with(|| visibility(access, interaction, kind, &[]).ok())
            .as_ref()
            .is_some_and(|v| v.allows(resource))
    };
    let mut found = Vec::new();
    for param in &request.include {
        for resource in page {
            for element in param
                .paths
                .iter()
                .flat_map(|path| matching::values(resource, path))
            {
                let Some((target, id)) = element
                    .get("reference")
                    .and_then(Value::as_str)
                    .and_then(reference_parts)
                else {
                    continue;
                };
                if !param.targets.is_empty() && !param.targets.contains(&target) {
                    continue;
                }
                if let Some(version) = store.at(target, id, Some(snapshot))
                    && allowed(target, Interaction::Read, &version.resource)
                    && seen.insert(key(&version.resource))
                {
                    found.push(version.resource);
                }
            }
        }
    }
    let targets: HashSet<String> = page.iter().map(|r| key(r)).collect();
    // Resources pointing at patients are found through the patient index.
    let patients: Option<Vec<&str>> = page
        .iter()
        .map(|r| {
            (r["resourceType"] == "Patient")
                .then(|| r["id"].as_str())
                .flatten()
        })
        .collect();
    for (source, param) in &request.revinclude {
        let ids: Vec<&String> = match &patients {
            Some(patients) if param.paths == ["subject"] || param.paths == ["patient"] => patients
                .iter()
                .flat_map(|p| store.ids_for_patient(source, p))
                .collect(),
            _ => store.ids(source).collect(),
        };
        for id in ids {
            let Some(version) = store.at(source, id, Some(snapshot)) else {
                continue;
            };
            let points_at_page = param
                .paths
                .iter()
                .flat_map(|path| matching::values(&version.resource, path))
                .any(|e| {
                    e.get("reference")
                        .and_then(Value::as_str)
                        .and_then(reference_parts)
                        .is_some_and(|(k, i)| targets.contains(&format!("{k}/{i}")))
                });
            if points_at_page
                && allowed(source, Interaction::Search, &version.resource)
                && seen.insert(key(&version.resource))
            {
                found.push(version.resource);
            }
        }
    }
    found
}

fn key(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    )
}
