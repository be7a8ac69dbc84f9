//! `Patient/{id}/$everything` and `Patient/$everything` (R4 Patient-everything
//! operation): the patient, every resource in their compartment, and the
//! resources those refer to (the Practitioner, the Medication…), each only when
//! the token may read it. `_since`, `_type` and `_count` as the operation
//! defines them; pages are stable like search pages.

use chrono::{DateTime, Utc};
use smart_protocol::Interaction;

use super::execute::{Mode, Paging, bundle_head, write_bundle};
use super::{DEFAULT_COUNT, MAX_COUNT, OFFSET, ResourceSet, SNAPSHOT, date};
use crate::auth::verify::AccessContext;
use crate::fhir::compartment::visibility;
use crate::fhir::definitions::R4;
use crate::fhir::outcome::Outcome;
use crate::fhir::store::{Inner, Version};
use crate::state::AppState;

struct Request {
    since: Option<DateTime<Utc>>,
    /// `_type`: only these types.
    types: Option<Vec<String>>,
    count: usize,
    offset: usize,
    snapshot: Option<u64>,
    echo: Vec<(String, String)>,
}

impl Request {
    fn wants(&self, kind: &str) -> bool {
        self.types
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t == kind))
    }

    fn changed(&self, version: &Version) -> bool {
        self.since.is_none_or(|since| version.last_updated >= since)
    }
}

fn parse(query: &[(String, String)], path: &str) -> Result<Request, Outcome> {
    let mut request = Request {
        since: None,
        types: None,
        count: DEFAULT_COUNT,
        offset: 0,
        snapshot: None,
        echo: Vec::new(),
    };
    for (name, value) in query {
        let bad = |why: String| Outcome::invalid(why).at(format!("{path}?{name}"));
        match name.as_str() {
            "_since" => {
                let range = date::parse(value)
                    .ok_or_else(|| bad(format!("_since must be an instant, not {value:?}")))?;
                request.since = DateTime::from_timestamp_millis(range.start);
            }
            "_type" => {
                let types: Vec<String> = value.split(',').map(|t| t.trim().to_owned()).collect();
                if let Some(unknown) = types.iter().find(|t| !R4.is_type(t)) {
                    return Err(bad(format!("_type: {unknown} is not a FHIR R4 resource type")));
                }
                request.types = Some(types);
            }
            "_count" => {
                request.count = value
                    .parse()
                    .ok()
                    .filter(|c| *c <= MAX_COUNT)
                    .ok_or_else(|| bad(format!("_count must be a whole number from 0 to {MAX_COUNT}")))?;
            }
            OFFSET => {
                request.offset = value
                    .parse()
                    .map_err(|_| bad(format!("{OFFSET} must be a number")))?;
                continue;
            }
            SNAPSHOT => {
                request.snapshot = Some(
                    value
                        .parse()
                        .map_err(|_| bad(format!("{SNAPSHOT} must be a number")))?,
                );
                continue;
            }
            "_format" | "_pretty" => {}
            other => {
                return Err(bad(format!(
                    "$everything takes _since, _type and _count; {other} is not supported here"
                )));
            }
        }
        request.echo.push((name.clone(), value.clone()));
    }
    Ok(request)
}

/// The searchset Bundle of `$everything` for Patient `id`, or for every patient
/// the token may see.
pub(crate) fn everything(
    state: &AppState,
    access: &AccessContext,
    id: Option<&str>,
    query: &[(String, String)],
) -> Result<Vec<u8>, Outcome> {
    let path = match id {
        Some(id) => format!("Patient/{id}/$everything"),
        None => "Patient/$everything".to_owned(),
    };
    let request = parse(query, &path)?;
    let store = state.fhir.read_lock();
    let snapshot = request.snapshot.unwrap_or_else(|| store.seq()).min(store.seq());
    let patients: Vec<&Version> = match id {
        Some(id) => {
            let visible = visibility(access, Interaction::Read, "Patient", &[])?;
            let patient = store
                .at("Patient", id, snapshot)
                .ok_or_else(|| Outcome::not_found(format!("Patient/{id} is not known")))?;
            if !visible.allows(patient) {
                return Err(Outcome::forbidden(format!(
                    "Patient/{id} is outside what this token may see"
                )));
            }
            vec![patient]
        }
        None => {
            let visible = visibility(access, Interaction::Search, "Patient", &[])?;
            store
                .every("Patient", snapshot)
                .filter(|p| visible.allows(p))
                .collect()
        }
    };
    let mut seen = ResourceSet::default();
    let mut found = Vec::new();
    for patient in patients {
        gather(&store, access, &request, patient, snapshot, &mut seen, &mut found);
    }
    let total = found.len();
    let base = &state.urls.fhir_base;
    let paging = Paging {
        path: format!("{base}/{path}"),
        echo: &request.echo,
        snapshot,
        offset: request.offset,
        count: request.count,
    };
    let mut head = bundle_head("searchset", paging.links(total));
    head["total"] = serde_json::json!(total);
    let page = paging.page(found);
    Ok(write_bundle(
        &head,
        base,
        page.into_iter().map(|v| (v, Mode::Match, None)),
    ))
}

/// Adds to `found` the patient, their compartment, and what those refer to, in
/// that order, each once and only when the token may read it.
fn gather<'a>(
    store: &'a Inner,
    access: &AccessContext,
    request: &Request,
    patient: &'a Version,
    snapshot: u64,
    seen: &mut ResourceSet,
    found: &mut Vec<&'a Version>,
) {
    let id = patient.key().1;
    let start = found.len();
    if seen.insert("Patient", id) && request.wants("Patient") && request.changed(patient) {
        found.push(patient);
    }
    let compartment_types = R4
        .types()
        .filter(|kind| *kind != "Patient" && R4.compartment(kind).is_some_and(|params| !params.is_empty()));
    for kind in compartment_types.filter(|kind| request.wants(kind)) {
        let Ok(visible) = visibility(access, Interaction::Search, kind, &[]) else {
            continue;
        };
        for other in store.ids_for_patient(kind, id) {
            if let Some(version) = store.at(kind, other, snapshot)
                && version.index.patients().iter().any(|p| p == id)
                && visible.allows(version)
                && request.changed(version)
                && seen.insert(kind, other)
            {
                found.push(version);
            }
        }
    }
    // What the patient's resources refer to, read with the token's read rights.
    let mut referenced = Vec::new();
    for version in &found[start..] {
        for (kind, other) in version.index.targets() {
            if request.wants(kind)
                && let Some(target) = store.at(kind, other, snapshot)
                && request.changed(target)
                && visibility(access, Interaction::Read, kind, &[]).is_ok_and(|v| v.allows(target))
                && seen.insert(kind, other)
            {
                referenced.push(target);
            }
        }
    }
    found.extend(referenced);
}
