//! `Patient/{id}/$everything` and `Patient/$everything` (R4 Patient-everything
//! operation): the patient, every resource in their compartment, and the
//! resources those refer to (the Practitioner, the Medication…), each only when
//! the token may read it. `start`, `end`, `_since`, `_type` and `_count` as the
//! operation defines them; pages are stable like search pages.

use smart_protocol::Interaction;

use super::ResourceSet;
use super::date::{self, Range};
use super::execute::{Mode, bundle_head, write_bundle};
use super::window::Window;
use crate::auth::verify::AccessContext;
use crate::fhir::compartment::visibility;
use crate::fhir::definitions::R4;
use crate::fhir::index::IndexValue;
use crate::fhir::outcome::Outcome;
use crate::fhir::store::{Snapshot, Version};
use crate::state::{AppState, FhirBase};

/// `_type`: only these types.
struct Types(Option<Vec<String>>);

impl Types {
    fn wants(&self, kind: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t == kind))
    }
}

/// `start`/`end`: the care dates asked for. The operation leaves "care date" to the
/// server; here it is the resource's `date` search parameter, which the definitions
/// give the types whose resources are care events (R4's `clinical-date`:
/// Observation.effective, Encounter.period, Procedure.performed, …). What has no
/// care date (the Patient, a Medication, an undated resource) is always in.
struct CareDates(Option<Range>);

impl CareDates {
    fn covers(&self, version: &Version) -> bool {
        let Some(range) = self.0 else { return true };
        let mut dates = version
            .index
            .values("date")
            .filter_map(|value| match value {
                IndexValue::Date(date) => Some(*date),
                _ => None,
            })
            .peekable();
        dates.peek().is_none() || dates.any(|date| date.start < range.end && date.end > range.start)
    }
}

/// The searchset Bundle of `$everything` for Patient `id`, or for every patient
/// the token may see.
pub(crate) fn everything(
    state: &AppState,
    access: &AccessContext,
    base: &FhirBase,
    id: Option<&str>,
    query: &[(String, String)],
) -> Result<Vec<u8>, Outcome> {
    let path = match id {
        Some(id) => format!("Patient/{id}/$everything"),
        None => "Patient/$everything".to_owned(),
    };
    let mut types = Types(None);
    let (mut start, mut end) = (None, None);
    let offered = "start, end, _since, _type and _count";
    let window = Window::parse(query, &path, offered, |name, value| {
        let date = || date::parse(value).ok_or_else(|| format!("{name} must be a date, not {value:?}"));
        match name {
            "_type" => {
                let wanted: Vec<String> = value.split(',').map(|t| t.trim().to_owned()).collect();
                if let Some(unknown) = wanted.iter().find(|t| !R4.is_type(t)) {
                    return Err(format!("_type: {unknown} is not a FHIR R4 resource type"));
                }
                types.0 = Some(wanted);
            }
            "start" => start = Some(date()?.start),
            "end" => end = Some(date()?.end),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let care = CareDates((start.is_some() || end.is_some()).then(|| Range {
        start: start.unwrap_or(i64::MIN),
        end: end.unwrap_or(i64::MAX),
    }));
    state.fhir.read(|store| {
        let snapshot = window.snapshot(store, &path)?;
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
            gather(
                store,
                access,
                (&window, &types, &care),
                patient,
                snapshot,
                &mut seen,
                &mut found,
            );
        }
        let total = found.len();
        let base = base.as_str();
        let paging = window.paging(format!("{base}/{path}"), snapshot);
        let mut head = bundle_head("searchset", paging.links(total));
        head["total"] = serde_json::json!(total);
        let page = paging.page(found);
        Ok(write_bundle(
            &head,
            base,
            page.into_iter().map(|v| (v, Mode::Match, None)),
        ))
    })
}

/// Adds to `found` the patient, their compartment, and what those refer to, in
/// that order, each once and only when the token may read it.
fn gather<'a>(
    store: &'a dyn Snapshot,
    access: &AccessContext,
    (window, types, care): (&Window, &Types, &CareDates),
    patient: &'a Version,
    snapshot: u64,
    seen: &mut ResourceSet,
    found: &mut Vec<&'a Version>,
) {
    let id = patient.key().1;
    let start = found.len();
    if seen.insert("Patient", id) && types.wants("Patient") && window.changed(patient) && care.covers(patient)
    {
        found.push(patient);
    }
    let compartment_types = R4
        .types()
        .filter(|kind| *kind != "Patient" && R4.compartment(kind).is_some_and(|params| !params.is_empty()));
    for kind in compartment_types.filter(|kind| types.wants(kind)) {
        let Ok(visible) = visibility(access, Interaction::Search, kind, &[]) else {
            continue;
        };
        for version in store.resolve(kind, store.for_patients(kind, &[id]), snapshot) {
            if version.index.patients().iter().any(|p| *p == *id)
                && visible.allows(version)
                && window.changed(version)
                && care.covers(version)
                && seen.insert(kind, version.key().1)
            {
                found.push(version);
            }
        }
    }
    // What the patient's resources refer to, read with the token's read rights.
    let mut referenced = Vec::new();
    for version in &found[start..] {
        for (kind, other) in version.index.targets() {
            if types.wants(kind)
                && let Some(target) = store.at(kind, other, snapshot)
                && window.changed(target)
                && care.covers(target)
                && visibility(access, Interaction::Read, kind, &[]).is_ok_and(|v| v.allows(target))
                && seen.insert(kind, other)
            {
                referenced.push(target);
            }
        }
    }
    found.extend(referenced);
}
