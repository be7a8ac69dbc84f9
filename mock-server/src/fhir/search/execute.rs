//! Runs a parsed search against the store and builds the searchset Bundle:
//! matches (narrowed to what the token may see), sorting, paging with stable
//! links, and `_include`/`_revinclude` (each included resource checked against the
//! token like any other read).

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{Value, json};
use smart_protocol::Interaction;

use super::matching;
use super::{Criterion, OFFSET, SNAPSHOT, SearchRequest, parse, sort_key};
use crate::auth::verify::AccessContext;
use crate::fhir::compartment::{Visibility, visibility};
use crate::fhir::outcome::Outcome;
use crate::fhir::store::{Inner, Version};
use crate::reference;
use crate::state::AppState;

pub(crate) fn search(
    state: &AppState,
    access: &AccessContext,
    kind: &str,
    query: &[(String, String)],
) -> Result<Vec<u8>, Outcome> {
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

    // The token's compartments, or else a patient filter in the query, pick the
    // candidates from the index; without either the whole type is scanned.
    let pinned: Option<BTreeSet<&str>> = match &visible.patients {
        Some(patients) => Some(patients.iter().map(String::as_str).collect()),
        None => request
            .criteria
            .iter()
            .find_map(Criterion::patient)
            .map(|p| BTreeSet::from([p])),
    };
    let ids: Box<dyn Iterator<Item = &String>> = match &pinned {
        Some(patients) => Box::new(
            patients
                .iter()
                .flat_map(|patient| store.ids_for_patient(kind, patient))
                .collect::<BTreeSet<_>>()
                .into_iter(),
        ),
        None => store.ids(kind),
    };
    let mut matches: Vec<Version> = ids
        .filter_map(|id| store.at(kind, id, Some(snapshot)))
        .filter(|v| visible.allows(&v.resource) && request.criteria.iter().all(|c| c.matches(&v.resource)))
        .collect();
    if !request.sort.is_empty() {
        let mut keyed: Vec<_> = matches
            .into_iter()
            .map(|r| {
                (
                    request
                        .sort
                        .iter()
                        .map(|s| sort_key(&r.resource, s.param))
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
    let mut page = Vec::new();
    let mut included = Vec::new();
    if !request.summary_count {
        page = matches
            .into_iter()
            .skip(request.offset)
            .take(request.count)
            .collect();
        // Saturating: a huge `_offset` must end the paging, not wrap to its start.
        if request.count > 0 && request.offset.saturating_add(request.count) < total {
            links.push(link("next", request.offset + request.count));
        }
        if request.offset > 0 {
            links.push(link("previous", request.offset.saturating_sub(request.count)));
        }
        included = includes(&store, access, &request, &page, snapshot);
    }
    let mut head = json!({
        "resourceType": "Bundle",
        "id": crate::fhir::new_id(),
        "meta": {"lastUpdated": crate::fhir::now_instant()},
        "type": "searchset",
        "link": links,
    });
    if request.total {
        head["total"] = json!(total);
    }
    Ok(write_bundle(&head, base, &page, &included))
}

/// The Bundle as JSON text: its head, then each entry around the resource text the
/// store serialised when it was written (re-serialising every resource per search
/// would cost more than the search itself).
fn write_bundle(head: &Value, base: &str, page: &[Version], included: &[Version]) -> Vec<u8> {
    let mut out = head.to_string().into_bytes();
    out.pop(); // the closing brace
    out.extend_from_slice(br#","entry":["#);
    let entries = page
        .iter()
        .map(|v| (v, "match"))
        .chain(included.iter().map(|v| (v, "include")));
    for (index, (version, mode)) in entries.enumerate() {
        if index > 0 {
            out.push(b',');
        }
        let full_url = Value::String(format!("{base}/{}", key(&version.resource)));
        out.extend_from_slice(format!(r#"{{"fullUrl":{full_url},"resource":"#).as_bytes());
        out.extend_from_slice(&version.json);
        out.extend_from_slice(format!(r#","search":{{"mode":"{mode}"}}}}"#).as_bytes());
    }
    out.extend_from_slice(b"]}");
    out
}

/// The resources `_include` and `_revinclude` add, each visible to the token.
fn includes(
    store: &Inner,
    access: &AccessContext,
    request: &SearchRequest,
    page: &[Version],
    snapshot: u64,
) -> Vec<Version> {
    let mut seen: HashSet<String> = page.iter().map(|v| key(&v.resource)).collect();
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
        for resource in page.iter().map(|v| &*v.resource) {
            for element in param
                .paths
                .iter()
                .flat_map(|path| matching::values(resource, path))
            {
                let Some((target, id)) = element
                    .get("reference")
                    .and_then(Value::as_str)
                    .and_then(reference::parts)
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
                    found.push(version);
                }
            }
        }
    }
    let targets: HashSet<String> = page.iter().map(|v| key(&v.resource)).collect();
    // Resources pointing at patients are found through the patient index.
    let patients: Option<Vec<&str>> = page
        .iter()
        .map(|v| {
            (v.resource["resourceType"] == "Patient")
                .then(|| v.resource["id"].as_str())
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
                        .and_then(reference::parts)
                        .is_some_and(|(k, i)| targets.contains(&format!("{k}/{i}")))
                });
            if points_at_page
                && allowed(source, Interaction::Search, &version.resource)
                && seen.insert(key(&version.resource))
            {
                found.push(version);
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
