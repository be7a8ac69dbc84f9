//! Runs a parsed search against the store and builds the searchset Bundle:
//! chains and `_has` resolved over what the token may read, matches (narrowed to
//! what the token may see), sorting, paging with stable links, `_include` and
//! `_revinclude` (with `:iterate`, each included resource checked against the
//! token like any other read), and `_summary`/`_elements`.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value, json};
use smart_protocol::Interaction;

use super::{
    Criterion, Include, MAX_COUNT, OFFSET, ResourceSet, SNAPSHOT, SearchRequest, Summary, parse, sort_key,
};
use crate::auth::verify::AccessContext;
use crate::fhir::compartment::{Visibility, visibility};
use crate::fhir::definitions::{ParamType, R4, is_element};
use crate::fhir::outcome::Outcome;
use crate::fhir::store::{Candidates, Snapshot, Version};
use crate::lint::Lint;
use crate::state::{AppState, FhirBase};

/// How many rounds of `:iterate` are followed.
const ITERATE_DEPTH: usize = 4;

pub(crate) fn search(
    state: &AppState,
    access: &AccessContext,
    base: &FhirBase,
    kind: &str,
    query: &[(String, String)],
    lenient: bool,
) -> Result<Vec<u8>, Outcome> {
    let (mut request, visible) = prepare(access, kind, query, lenient)?;
    state.fhir.read(|store| {
        let snapshot = request.snapshot.unwrap_or_else(|| store.seq());
        if snapshot > store.seq() {
            return Err(
                Outcome::invalid(format!("{SNAPSHOT}={snapshot} is in the future"))
                    .at(format!("{kind}?{SNAPSHOT}")),
            );
        }
        let criteria = std::mem::take(&mut request.criteria);
        let mut matches: Vec<_> = filter(store, access, kind, visible, criteria, snapshot)?.collect();
        if !request.sort.is_empty() {
            let mut keyed: Vec<_> = matches
                .into_iter()
                .map(|v| {
                    (
                        request
                            .sort
                            .iter()
                            .map(|s| sort_key(&v.index, s.param))
                            .collect::<Vec<_>>(),
                        v,
                    )
                })
                .collect();
            keyed.sort_by(|(a, _), (b, _)| {
                a.iter()
                    .zip(b)
                    .zip(&request.sort)
                    .map(|((x, y), sort)| {
                        let order = x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal);
                        if sort.descending { order.reverse() } else { order }
                    })
                    .find(|order| order.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            matches = keyed.into_iter().map(|(_, v)| v).collect();
        }

        let total = matches.len();
        let base = base.as_str();
        let paging = Paging {
            path: format!("{base}/{kind}"),
            echo: &request.echo,
            snapshot,
            offset: request.offset,
            count: request.count,
        };
        let mut page = Vec::new();
        let mut included = Vec::new();
        if request.summary != Summary::Count {
            page = paging.page(matches);
            included = includes(store, access, &request, &page, snapshot);
        }
        let mut head = bundle_head("searchset", paging.links(total));
        if request.total || request.summary == Summary::Count {
            head["total"] = json!(total);
        }
        let entries = page
            .iter()
            .map(|&v| (v, Mode::Match, trimmed(&request, v)))
            .chain(included.iter().map(|&v| (v, Mode::Include, None)));
        Ok(write_bundle(&head, base, entries))
    })
}

/// Where a page of results starts, and how the links to the pages around it look.
pub(super) struct Paging<'a> {
    /// The URL the links start with, `…/Observation`.
    pub path: String,
    /// The request's own parameters, repeated in every link.
    pub echo: &'a [(String, String)],
    pub snapshot: u64,
    pub offset: usize,
    pub count: usize,
}

impl Paging<'_> {
    /// This page of `matches`.
    pub(super) fn page<T>(&self, matches: Vec<T>) -> Vec<T> {
        matches.into_iter().skip(self.offset).take(self.count).collect()
    }

    /// `self`, and `next`/`previous` when there are pages there.
    pub(super) fn links(&self, total: usize) -> Vec<Value> {
        let link = |relation: &str, offset: usize| {
            let mut pairs = self.echo.to_vec();
            pairs.push((SNAPSHOT.into(), self.snapshot.to_string()));
            pairs.push((OFFSET.into(), offset.to_string()));
            let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            json!({"relation": relation, "url": format!("{}?{query}", self.path)})
        };
        let mut links = vec![link("self", self.offset)];
        // Saturating: a huge `_offset` must end the paging, not wrap to its start.
        if self.count > 0 && self.offset.saturating_add(self.count) < total {
            links.push(link("next", self.offset + self.count));
        }
        if self.offset > 0 {
            links.push(link("previous", self.offset.saturating_sub(self.count)));
        }
        links
    }
}

/// A Bundle of `kind` without its entries.
pub(super) fn bundle_head(kind: &str, links: Vec<Value>) -> Value {
    json!({
        "resourceType": "Bundle",
        "id": crate::fhir::new_id(),
        "meta": {"lastUpdated": crate::fhir::now_instant()},
        "type": kind,
        "link": links,
    })
}

/// Why a resource is in a searchset (`entry.search.mode`).
#[derive(Clone, Copy)]
pub(super) enum Mode {
    Match,
    Include,
}

/// The parsed search, and what the token may search (a granular scope may be
/// satisfied by the search's own parameters).
fn prepare(
    access: &AccessContext,
    kind: &str,
    query: &[(String, String)],
    lenient: bool,
) -> Result<(SearchRequest, Visibility), Outcome> {
    let request = parse(kind, query, lenient).map_err(|e| {
        let outcome = Outcome::invalid(e.message).at(format!("{kind}?{}", e.parameter));
        let value = query
            .iter()
            .find(|(name, _)| *name == e.parameter)
            .map(|(_, v)| v.as_str());
        if e.parameter == "_count"
            && value
                .and_then(|v| v.parse::<usize>().ok())
                .is_some_and(|c| c > MAX_COUNT)
        {
            outcome.lint(Lint::CountAboveLimit)
        } else if super::unknown(kind, &e.parameter) {
            outcome.lint(Lint::UnknownSearchParameter)
        } else {
            outcome
        }
    })?;
    let params: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Ok((request, visibility(access, Interaction::Search, kind, &params)?))
}

/// The resources of `kind` that meet every criterion and that `visible` allows,
/// found as they are read: a caller that looks further into each (`_has` does)
/// finds its index rows still in the cache.
fn filter<'a>(
    store: &'a dyn Snapshot,
    access: &AccessContext,
    kind: &str,
    visible: Visibility,
    criteria: Vec<Criterion>,
    snapshot: u64,
) -> Result<impl Iterator<Item = &'a Version> + use<'a>, Outcome> {
    let criteria = criteria
        .into_iter()
        .map(|c| resolve(c, store, access, snapshot))
        .collect::<Result<Vec<_>, _>>()?;
    let pinned = match &visible.patients {
        Some(patients) => Some(patients.iter().map(String::as_str).collect()),
        None => criteria.iter().find_map(Criterion::patients),
    };
    let candidates = candidates(store, kind, pinned.as_ref(), &criteria, snapshot);
    Ok(candidates.into_iter().filter(move |v| {
        let (kind, id) = v.key();
        visible.allows(v) && criteria.iter().all(|c| c.matches(kind, id, &v.index))
    }))
}

/// The current resources of `kind` that the search `query` (criteria only, no
/// result parameters) finds among those the token may search: conditional
/// interactions use it.
pub(crate) fn find(
    store: &dyn Snapshot,
    access: &AccessContext,
    kind: &str,
    query: &[(String, String)],
) -> Result<Vec<Version>, Outcome> {
    let (request, visible) = prepare(access, kind, query, false)?;
    if request.criteria.is_empty() {
        return Err(Outcome::invalid(format!(
            "a conditional request needs search criteria, such as {kind}?identifier=…"
        )));
    }
    let found = filter(store, access, kind, visible, request.criteria, store.seq())?;
    Ok(found.cloned().collect())
}

/// The versions a search looks at, from the narrowest index its criteria allow:
/// the given patients' compartments, else the resources with a searched token
/// code (or `_id`, or found by `_has`), else every resource of the type.
fn candidates<'a>(
    store: &'a dyn Snapshot,
    kind: &str,
    patients: Option<&BTreeSet<&str>>,
    criteria: &[Criterion],
    snapshot: u64,
) -> Vec<&'a Version> {
    let candidates = match patients {
        Some(patients) => store.for_patients(kind, &patients.iter().copied().collect::<Vec<_>>()),
        None => match criteria
            .iter()
            .filter_map(|c| indexed(store, kind, c))
            .min_by_key(Candidates::len)
        {
            Some(candidates) => candidates,
            None => return store.every(kind, snapshot).collect(),
        },
    };
    store.resolve(kind, candidates, snapshot).collect()
}

/// The resources a criterion can match, when an index says: a token criterion's
/// (`code=a,b`, `_id=x`) from the code index, a resolved `_has`'s from its set.
fn indexed(store: &dyn Snapshot, kind: &str, criterion: &Criterion) -> Option<Candidates> {
    if let Criterion::IsOneOf(set) = criterion {
        return Some(store.with_ids(kind, &set.ids(kind).collect::<Vec<_>>()));
    }
    let (param, codes) = criterion.codes()?;
    Some(match param {
        "_id" => store.with_ids(kind, &codes),
        _ => store.with_codes(kind, param, &codes),
    })
}

/// Turns chains and `_has` into the sets of resources they allow, found among what
/// the token may search: a chain never reveals, through what it matches, a
/// resource the token could not read itself.
fn resolve(
    criterion: Criterion,
    store: &dyn Snapshot,
    access: &AccessContext,
    snapshot: u64,
) -> Result<Criterion, Outcome> {
    let matching = |kind: &str, inner: Criterion| {
        let visible = visibility(access, Interaction::Search, kind, &[])?;
        filter(store, access, kind, visible, vec![inner], snapshot)
    };
    Ok(match criterion {
        Criterion::Chain { param, targets } => {
            let mut found = ResourceSet::default();
            let (mut searched, mut refused) = (false, None);
            // `matching` resolves nested chains too, so a target type refused
            // deeper down counts as refused here, not as a failed search.
            for (kind, inner) in targets {
                match matching(kind, inner) {
                    Ok(versions) => {
                        searched = true;
                        for version in versions {
                            found.insert(version.key().0, version.key().1);
                        }
                    }
                    Err(outcome) => refused = Some(outcome),
                }
            }
            // Refused only when the token may search none of the target types.
            if !searched && let Some(outcome) = refused {
                return Err(outcome);
            }
            Criterion::RefersTo {
                param,
                targets: found,
            }
        }
        Criterion::Has { source, param, inner } => {
            let mut found = ResourceSet::default();
            for version in matching(source, *inner)? {
                for (kind, id) in version.index.references(&param.name) {
                    found.insert(kind, id);
                }
            }
            Criterion::IsOneOf(found)
        }
        other => other,
    })
}

/// The Bundle as JSON text: its head, then each entry around the resource text the
/// store serialised when it was written (re-serialising every resource per search
/// would cost more than the search itself), unless `_summary` or `_elements`
/// trimmed it.
pub(super) fn write_bundle<'a>(
    head: &Value,
    base: &str,
    entries: impl Iterator<Item = (&'a Version, Mode, Option<Value>)>,
) -> Vec<u8> {
    let mut out = head.to_string().into_bytes();
    out.pop(); // the closing brace
    out.extend_from_slice(br#","entry":["#);
    for (index, (version, mode, trimmed)) in entries.enumerate() {
        if index > 0 {
            out.push(b',');
        }
        let (kind, id) = version.key();
        let full_url = Value::String(format!("{base}/{kind}/{id}"));
        out.extend_from_slice(format!(r#"{{"fullUrl":{full_url},"resource":"#).as_bytes());
        match trimmed {
            Some(resource) => out.extend_from_slice(resource.to_string().as_bytes()),
            None => out.extend_from_slice(&version.json),
        }
        let mode = match mode {
            Mode::Match => "match",
            Mode::Include => "include",
        };
        out.extend_from_slice(format!(r#","search":{{"mode":"{mode}"}}}}"#).as_bytes());
    }
    out.extend_from_slice(b"]}");
    out
}

/// The resource as `_summary` or `_elements` asks for it, tagged SUBSETTED
/// (R4 §3.1.1.5.8–9); `None` when it is sent whole (and then not parsed).
fn trimmed(request: &SearchRequest, version: &Version) -> Option<Value> {
    let (kind, _) = version.key();
    let always = |name: &str| matches!(name, "resourceType" | "id" | "meta");
    let keep: Box<dyn Fn(&str) -> bool> = match (&request.elements, request.summary) {
        (Some(elements), _) => Box::new(move |name| {
            always(name) || R4.is_mandatory(kind, name) || elements.iter().any(|e| is_element(e, name))
        }),
        (None, Summary::True) => Box::new(move |name| always(name) || R4.in_summary(kind, name)),
        (None, Summary::Text) => {
            Box::new(move |name| always(name) || name == "text" || R4.is_mandatory(kind, name))
        }
        (None, Summary::Data) => Box::new(|name| name != "text"),
        (None, Summary::False | Summary::Count) => return None,
    };
    let Value::Object(members) = version.resource() else {
        return None;
    };
    let mut kept: Map<String, Value> = members.into_iter().filter(|(name, _)| keep(name)).collect();
    let meta = kept.entry("meta").or_insert_with(|| json!({}));
    let subsetted =
        json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"});
    match meta.get_mut("tag") {
        Some(Value::Array(tags)) => tags.push(subsetted),
        _ => meta["tag"] = json!([subsetted]),
    }
    Some(Value::Object(kept))
}

/// The resources `_include` and `_revinclude` add, each visible to the token:
/// first from the page, then, for `:iterate`, from what was just added.
fn includes<'a>(
    store: &'a dyn Snapshot,
    access: &AccessContext,
    request: &SearchRequest,
    page: &[&'a Version],
    snapshot: u64,
) -> Vec<&'a Version> {
    let mut seen = ResourceSet::default();
    for version in page {
        seen.insert(version.key().0, version.key().1);
    }
    // One scope decision per (type, interaction), not per resource.
    let mut visibilities: HashMap<(String, Interaction), Option<Visibility>> = HashMap::new();
    let mut allowed = |interaction, version: &Version| {
        visibilities
            .entry((version.key().0.to_owned(), interaction))
            .or_insert_with(|| visibility(access, interaction, version.key().0, &[]).ok())
            .as_ref()
            .is_some_and(|v| v.allows(version))
    };
    let mut found = Vec::new();
    let mut frontier: Vec<&Version> = page.to_vec();
    for round in 0..ITERATE_DEPTH {
        let mut added = Vec::new();
        let applies = |include: &&Include| round == 0 || include.iterate;
        for include in request.include.iter().filter(applies) {
            for version in frontier.iter().filter(|v| v.key().0 == include.source) {
                let references = reference_params(include).flat_map(|param| version.index.references(param));
                for (kind, id) in references {
                    if include.target.is_none_or(|t| t == kind)
                        && let Some(target) = store.at(kind, id, snapshot)
                        && allowed(Interaction::Read, target)
                        && seen.insert(kind, id)
                    {
                        added.push(target);
                    }
                }
            }
        }
        let mut targets = ResourceSet::default();
        for version in &frontier {
            targets.insert(version.key().0, version.key().1);
        }
        // Resources pointing at patients are found through the patient index.
        let patients: Option<BTreeSet<&str>> = frontier
            .iter()
            .map(|v| (v.key().0 == "Patient").then_some(v.key().1))
            .collect();
        for include in request.revinclude.iter().filter(applies) {
            let pinned = patients.as_ref().filter(|_| include.param.is_some());
            for version in candidates(store, include.source, pinned, &[], snapshot) {
                let points_at_frontier = reference_params(include).any(|param| {
                    version
                        .index
                        .references(param)
                        .any(|(k, i)| targets.contains(k, i))
                });
                if points_at_frontier
                    && allowed(Interaction::Search, version)
                    && seen.insert(version.key().0, version.key().1)
                {
                    added.push(version);
                }
            }
        }
        if added.is_empty() {
            break;
        }
        found.extend(added.iter().copied());
        frontier = added;
    }
    found
}

/// The parameter an include names, or with `*` every reference parameter of its source.
fn reference_params(include: &Include) -> Box<dyn Iterator<Item = &'static str>> {
    match include.param {
        Some(param) => Box::new(std::iter::once(param.name.as_str())),
        None => Box::new(
            R4.params(include.source)
                .filter(|p| p.param_type == ParamType::Reference)
                .map(|p| p.name.as_str()),
        ),
    }
}
