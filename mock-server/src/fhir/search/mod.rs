//! FHIR search (R4 §3.1.1): a query string becomes a [`SearchRequest`] — criteria
//! that must all hold, each an OR of values — plus the result parameters
//! (`_count`, `_sort`, `_include`, `_revinclude`, `_summary`, `_elements`,
//! `_total`) and the paging state the mock puts in its own `next`/`previous` links.
//!
//! Every parameter FHIR R4 defines for the type is understood (see
//! [`crate::fhir::definitions`]). Anything else is a 400 naming the parameter — a
//! filter silently ignored would return more than the app asked for — unless the
//! request says `Prefer: handling=lenient`.

pub(crate) mod date;
pub(crate) mod everything;
pub(crate) mod execute;
pub(crate) mod history;
pub(crate) mod matching;
pub(super) mod window;

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::fhir::definitions::{Param, ParamType, R4};
use crate::fhir::index::{Index, IndexValue, Text, fold};
use crate::reference;
use matching::{Modifier, SearchValue};

/// Page size when `_count` is absent, and the largest page served.
pub(crate) const DEFAULT_COUNT: usize = 20;
pub(crate) const MAX_COUNT: usize = 1000;

/// Paging parameters of the mock's own links: where the page starts, and the store
/// sequence number the search was first run at, so later pages see the same results
/// whatever was written since.
pub(crate) const OFFSET: &str = "_offset";
pub(crate) const SNAPSHOT: &str = "_snapshot";

/// Resources by type and id: what a chain or `_has` resolved to.
#[derive(Debug, Default)]
pub(crate) struct ResourceSet(HashMap<String, HashSet<String>>);

impl ResourceSet {
    /// Adds `kind/id`; false if it was there already.
    pub(crate) fn insert(&mut self, kind: &str, id: &str) -> bool {
        self.0.entry(kind.to_owned()).or_default().insert(id.to_owned())
    }

    pub(crate) fn contains(&self, kind: &str, id: &str) -> bool {
        self.0.get(kind).is_some_and(|ids| ids.contains(id))
    }

    /// The ids of the members of type `kind`.
    pub(crate) fn ids(&self, kind: &str) -> impl Iterator<Item = &str> {
        self.0.get(kind).into_iter().flatten().map(String::as_str)
    }

    /// The ids, when every member is a Patient.
    fn only_patients(&self) -> Option<BTreeSet<&str>> {
        match self.0.len() {
            0 => Some(BTreeSet::new()),
            1 => Some(self.0.get("Patient")?.iter().map(String::as_str).collect()),
            _ => None,
        }
    }
}

/// One condition of a search.
#[derive(Debug)]
pub(crate) enum Criterion {
    /// `name[:modifier]=a,b`: any of the values matches (with `:not`, none does).
    Values {
        param: &'static Param,
        modifier: Modifier,
        values: Vec<SearchValue>,
    },
    /// `name:missing=true|false`.
    Missing { param: &'static Param, missing: bool },
    /// `subject:Patient.name=x`: `param` refers to a resource of one of these types
    /// that matches the inner criterion. [`execute`] resolves it to [`Self::RefersTo`].
    Chain {
        param: &'static Param,
        targets: Vec<(&'static str, Criterion)>,
    },
    /// `_has:Observation:patient:code=x`: some `source` matching `inner` refers to
    /// this resource through `param`. Resolved to [`Self::IsOneOf`].
    Has {
        source: &'static str,
        param: &'static Param,
        inner: Box<Criterion>,
    },
    /// A resolved chain: `param` refers to one of these resources.
    RefersTo {
        param: &'static Param,
        targets: ResourceSet,
    },
    /// A resolved `_has`: the resource is one of these.
    IsOneOf(ResourceSet),
}

impl Criterion {
    /// Whether the resource `kind/id` with `index` meets this criterion. An
    /// unresolved chain or `_has` meets nothing (fail closed).
    pub(crate) fn matches(&self, kind: &str, id: &str, index: &Index) -> bool {
        match self {
            Criterion::Values {
                param,
                modifier: Modifier::Not,
                values,
            } => !index
                .values(&param.name)
                .any(|v| values.iter().any(|s| matching::matches(s, &Modifier::None, v))),
            Criterion::Values {
                param,
                modifier,
                values,
            } => index
                .values(&param.name)
                .any(|v| values.iter().any(|s| matching::matches(s, modifier, v))),
            Criterion::Missing { param, missing } => index.values(&param.name).next().is_none() == *missing,
            Criterion::RefersTo { param, targets } => {
                index.references(&param.name).any(|(k, i)| targets.contains(k, i))
            }
            Criterion::IsOneOf(set) => set.contains(kind, id),
            Criterion::Chain { .. } | Criterion::Has { .. } => false,
        }
    }

    /// The token parameter and the codes this criterion asks for, when it matches
    /// only resources with one of them (`code=a,b`; not `:not`, `:text`, nor a
    /// value without a code such as `system|`).
    pub(crate) fn codes(&self) -> Option<(&str, Vec<&str>)> {
        match self {
            Criterion::Values {
                param,
                modifier: Modifier::None,
                values,
            } if param.param_type == ParamType::Token => values
                .iter()
                .map(|value| match value {
                    SearchValue::Token { code: Some(code), .. } => Some(code.as_str()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(|codes| (param.name.as_str(), codes)),
            _ => None,
        }
    }

    /// The patients this criterion pins the search to — `Patient` values of a
    /// reference parameter, given or found by a chain — so the store can answer it
    /// from its patient index.
    pub(crate) fn patients(&self) -> Option<BTreeSet<&str>> {
        match self {
            Criterion::Values {
                param,
                modifier: Modifier::None,
                values,
            } if param.param_type == ParamType::Reference => values
                .iter()
                .map(|value| match value {
                    SearchValue::Reference { kind: Some(t), id } if t == "Patient" => Some(id.as_str()),
                    SearchValue::Reference { kind: None, id } if param.targets == ["Patient"] => {
                        Some(id.as_str())
                    }
                    _ => None,
                })
                .collect(),
            Criterion::RefersTo { targets, .. } => targets.only_patients(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Sort {
    pub param: &'static Param,
    pub descending: bool,
}

/// `_include`/`_revinclude=Source:param[:Target]`, or `Source:*`.
#[derive(Debug)]
pub(crate) struct Include {
    pub source: &'static str,
    /// `None`: every reference parameter of `source`.
    pub param: Option<&'static Param>,
    pub target: Option<&'static str>,
    /// `:iterate`: also from what was included.
    pub iterate: bool,
}

/// `_summary` (R4 §3.1.1.5.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Summary {
    False,
    True,
    Text,
    Data,
    Count,
}

#[derive(Debug)]
pub(crate) struct SearchRequest {
    pub criteria: Vec<Criterion>,
    pub count: usize,
    pub offset: usize,
    pub snapshot: Option<u64>,
    pub sort: Vec<Sort>,
    pub include: Vec<Include>,
    pub revinclude: Vec<Include>,
    pub summary: Summary,
    /// `_elements`: the top-level elements to keep.
    pub elements: Option<Vec<String>>,
    pub total: bool,
    /// The request's own parameters (not paging ones), repeated in the links.
    pub echo: Vec<(String, String)>,
}

/// A search that cannot run: which parameter, and why.
#[derive(Debug)]
pub(crate) struct SearchError {
    pub parameter: String,
    pub message: String,
}

/// Parses a search of `kind`. With `lenient`, unknown parameters are dropped
/// (and left out of the links) instead of refused.
pub(crate) fn parse(
    kind: &str,
    query: &[(String, String)],
    lenient: bool,
) -> Result<SearchRequest, SearchError> {
    parse_pairs(kind, query, lenient).map_err(|(parameter, message)| SearchError { parameter, message })
}

fn parse_pairs(
    kind: &str,
    query: &[(String, String)],
    lenient: bool,
) -> Result<SearchRequest, (String, String)> {
    let mut request = SearchRequest {
        criteria: Vec::new(),
        count: DEFAULT_COUNT,
        offset: 0,
        snapshot: None,
        sort: Vec::new(),
        include: Vec::new(),
        revinclude: Vec::new(),
        summary: Summary::False,
        elements: None,
        total: true,
        echo: Vec::new(),
    };
    for (name, value) in query {
        let echo = parse_pair(&mut request, kind, name, value, lenient).map_err(|e| (name.clone(), e))?;
        if echo {
            request.echo.push((name.clone(), value.clone()));
        }
    }
    Ok(request)
}

/// Applies one pair to `request`; says whether the links should repeat it.
fn parse_pair(
    request: &mut SearchRequest,
    kind: &str,
    name: &str,
    value: &str,
    lenient: bool,
) -> Result<bool, String> {
    Ok(match name {
        "_count" => {
            request.count = value.parse().ok().filter(|c| *c <= MAX_COUNT).ok_or_else(|| {
                format!("_count must be a whole number from 0 to {MAX_COUNT}, not {value:?}")
            })?;
            true
        }
        OFFSET => {
            request.offset = value.parse().map_err(|_| format!("{OFFSET} must be a number"))?;
            false
        }
        SNAPSHOT => {
            request.snapshot = Some(
                value
                    .parse()
                    .map_err(|_| format!("{SNAPSHOT} must be a number"))?,
            );
            false
        }
        "_sort" => {
            request.sort = parse_sort(kind, value)?;
            true
        }
        "_include" | "_include:iterate" => {
            let include = parse_include(name, value)?;
            if !include.iterate && include.source != kind {
                return Err(format!(
                    "_include={value}: a search of {kind} includes from {kind}:<parameter> (or use _include:iterate)"
                ));
            }
            request.include.push(include);
            true
        }
        "_revinclude" | "_revinclude:iterate" => {
            request.revinclude.push(parse_include(name, value)?);
            true
        }
        "_summary" => {
            request.summary = match value {
                "true" => Summary::True,
                "text" => Summary::Text,
                "data" => Summary::Data,
                "count" => Summary::Count,
                "false" => Summary::False,
                other => {
                    return Err(format!(
                        "_summary must be true, text, data, count or false, not {other}"
                    ));
                }
            };
            true
        }
        "_elements" => {
            request.elements = Some(value.split(',').map(|e| e.trim().to_owned()).collect());
            true
        }
        "_total" => {
            request.total = match value {
                "none" => false,
                "estimate" | "accurate" => true,
                other => return Err(format!("_total must be none, estimate or accurate, not {other}")),
            };
            true
        }
        "_format" => match value {
            "json" | "application/json" | "application/fhir+json" => true,
            other => return Err(format!("_format={other}: this server only speaks JSON")),
        },
        "_pretty" => true,
        _ => match parse_criterion(kind, name, value) {
            Ok(criterion) => {
                request.criteria.push(criterion);
                true
            }
            Err(_) if lenient && unknown(kind, name) => false,
            Err(error) => return Err(error),
        },
    })
}

/// Whether `name` names no parameter of `kind` (as opposed to a bad value or
/// modifier, which `Prefer: handling=lenient` does not excuse).
fn unknown(kind: &str, name: &str) -> bool {
    let base = name.split([':', '.']).next().unwrap_or_default();
    base != "_has" && R4.param(kind, base).is_none()
}

fn find(kind: &str, name: &str) -> Result<&'static Param, String> {
    R4.param(kind, name).ok_or_else(|| {
        let mut near: Vec<&str> = R4
            .params(kind)
            .map(|p| p.name.as_str())
            .filter(|p| !p.starts_with('_'))
            .collect();
        near.sort_by_key(|p| strsim::levenshtein(p, name));
        near.truncate(5);
        format!(
            "unknown search parameter `{name}` for {kind} (closest: {}; every parameter is listed in the CapabilityStatement)",
            near.join(", ")
        )
    })
}

/// One `name[:modifier]=value[,value…]` pair, a chain (`subject:Patient.name`) or a
/// reverse chain (`_has:…`). Also used for the constraints of granular SMART
/// scopes (`patient/Observation.rs?category=…`).
pub(crate) fn parse_criterion(kind: &str, name: &str, value: &str) -> Result<Criterion, String> {
    if let Some(rest) = name.strip_prefix("_has:") {
        return parse_has(kind, rest, value);
    }
    if let Some((head, rest)) = name.split_once('.') {
        return parse_chain(kind, head, rest, value);
    }
    let (base, modifier) = match name.split_once(':') {
        Some((base, modifier)) => (base, Some(modifier)),
        None => (name, None),
    };
    let param = find(kind, base)?;
    if value.is_empty() {
        return Err(format!("search parameter {name} has no value"));
    }
    // Before `:missing`: a parameter the mock does not index has no values to miss.
    if param.expression.is_none() || param.param_type == ParamType::Special {
        return Err(format!(
            "the search parameter {base} is not supported by this server (it needs full-text or special search)"
        ));
    }
    if modifier == Some("missing") {
        return match value {
            "true" | "false" => Ok(Criterion::Missing {
                param,
                missing: value == "true",
            }),
            _ => Err(format!("{name} must be true or false")),
        };
    }
    let modifier = parse_modifier(param, modifier)?;
    let values = value
        .split(',')
        .map(|v| {
            parse_value(param, &modifier, v)
                .ok_or_else(|| format!("{name}={v} is not a valid {} value", param.param_type.as_str()))
        })
        .collect::<Result<_, _>>()?;
    Ok(Criterion::Values {
        param,
        modifier,
        values,
    })
}

fn parse_modifier(param: &Param, modifier: Option<&str>) -> Result<Modifier, String> {
    use ParamType as T;
    Ok(match (param.param_type, modifier) {
        (_, None) => Modifier::None,
        (T::String, Some("exact")) => Modifier::Exact,
        (T::String, Some("contains")) => Modifier::Contains,
        (T::Token, Some("text")) => Modifier::Text,
        (T::Token, Some("not")) => Modifier::Not,
        (T::Uri, Some("above")) => Modifier::Above,
        (T::Uri, Some("below")) => Modifier::Below,
        (T::Reference, Some("identifier")) => Modifier::Identifier,
        (T::Reference, Some(kind)) if R4.is_type(kind) => {
            if !param.targets.is_empty() && !param.targets.iter().any(|t| t == kind) {
                return Err(format!(
                    "{} cannot refer to a {kind} (it refers to {})",
                    param.name,
                    param.targets.join(", ")
                ));
            }
            Modifier::Type(kind.to_owned())
        }
        (T::Token, Some(m @ ("in" | "not-in" | "above" | "below" | "of-type"))) => {
            return Err(format!(
                "the modifier :{m} needs a terminology server, which this mock does not have"
            ));
        }
        (_, Some(modifier)) => {
            return Err(format!(
                "the modifier :{modifier} is not supported on {} parameter {}",
                param.param_type.as_str(),
                param.name
            ));
        }
    })
}

fn parse_value(param: &Param, modifier: &Modifier, value: &str) -> Option<SearchValue> {
    if param.param_type != ParamType::Composite {
        return parse_typed(param.param_type, &param.targets, modifier, value);
    }
    // `a$b`: each part parsed as its component's type.
    let parts: Vec<&str> = value.split('$').collect();
    if parts.len() != param.components.len() {
        return None;
    }
    parts
        .iter()
        .zip(&param.components)
        .map(|(part, component)| parse_typed(component.param_type, &[], &Modifier::None, part))
        .collect::<Option<_>>()
        .map(SearchValue::Composite)
}

/// One value of a parameter (or composite part) of `param_type`; `targets` are a
/// reference's possible target types.
fn parse_typed(
    param_type: ParamType,
    targets: &[String],
    modifier: &Modifier,
    value: &str,
) -> Option<SearchValue> {
    Some(match (param_type, modifier) {
        (ParamType::Token, Modifier::Text) => SearchValue::String(fold(value)),
        (ParamType::Token, _) | (ParamType::Reference, Modifier::Identifier) => token_value(value),
        (ParamType::Date, _) => {
            let (prefix, text) = date::Prefix::split(value);
            SearchValue::Date {
                prefix,
                range: date::parse(text)?,
            }
        }
        (ParamType::String, Modifier::Exact) => SearchValue::String(value.to_owned()),
        (ParamType::String, _) => SearchValue::String(fold(value)),
        (ParamType::Number | ParamType::Quantity, _) => number_value(param_type, value)?,
        (ParamType::Reference, _) => match reference::parts(value) {
            Some((kind, id)) => SearchValue::Reference {
                kind: Some(kind.to_owned()),
                id: id.to_owned(),
            },
            None if !value.contains('/') => SearchValue::Reference {
                kind: (targets.len() == 1).then(|| targets[0].clone()),
                id: value.to_owned(),
            },
            None if value.contains(':') => SearchValue::Url(value.to_owned()),
            None => return None,
        },
        (ParamType::Uri, _) => SearchValue::Uri(value.to_owned()),
        // A composite inside a composite does not occur in R4.
        (ParamType::Composite | ParamType::Special, _) => return None,
    })
}

fn token_value(value: &str) -> SearchValue {
    match value.split_once('|') {
        Some((system, code)) => SearchValue::Token {
            system: Some(system.to_owned()),
            code: (!code.is_empty()).then(|| code.to_owned()),
        },
        None => SearchValue::Token {
            system: None,
            code: Some(value.to_owned()),
        },
    }
}

/// `[prefix]number` or, for quantities, `[prefix]number|system|code` (`number||unit`).
fn number_value(param_type: ParamType, value: &str) -> Option<SearchValue> {
    let (prefix, rest) = date::Prefix::split(value);
    let mut parts = rest.split('|');
    let number_text = parts.next()?;
    let number: f64 = number_text.parse().ok()?;
    let (system, code) = match (param_type, parts.next(), parts.next()) {
        (ParamType::Quantity, system, code) => (
            system.filter(|s| !s.is_empty()).map(str::to_owned),
            code.filter(|c| !c.is_empty()).map(str::to_owned),
        ),
        (_, None, None) => (None, None),
        _ => return None,
    };
    // Implicit precision (§3.1.1.4.1): `100` means 99.5 up to 100.5, `1e2` too.
    let mantissa = number_text.split(['e', 'E']).next().unwrap_or(number_text);
    let decimals = mantissa.split_once('.').map_or(0, |(_, d)| d.len());
    let exponent: i32 = number_text
        .split_once(['e', 'E'])
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    // Saturating: `1e-2147483648` must be refused below, not overflow here.
    let scale = exponent.saturating_sub(i32::try_from(decimals).unwrap_or(i32::MAX));
    let half = 0.5 * 10f64.powi(scale);
    if !number.is_finite() || !half.is_finite() {
        return None;
    }
    Some(SearchValue::Number {
        prefix,
        value: number,
        low: number - half,
        high: number + half,
        system,
        code,
    })
}

/// `subject:Patient.name` or `subject.name`: `head` is the reference parameter
/// (with an optional type), `rest` the parameter of the target (perhaps a chain).
fn parse_chain(kind: &str, head: &str, rest: &str, value: &str) -> Result<Criterion, String> {
    let (name, target) = match head.split_once(':') {
        Some((name, target)) => (name, Some(target)),
        None => (head, None),
    };
    let param = find(kind, name)?;
    if param.param_type != ParamType::Reference {
        return Err(format!(
            "{name} is a {} parameter: only references can be chained",
            param.param_type.as_str()
        ));
    }
    let candidates: Vec<&'static str> = match target {
        Some(target) => {
            let target = R4
                .types()
                .find(|t| *t == target)
                .ok_or_else(|| format!("{head}: unknown resource type {target}"))?;
            vec![target]
        }
        None if param.targets.is_empty() => R4.types().collect(),
        None => R4
            .types()
            .filter(|t| param.targets.iter().any(|x| x == t))
            .collect(),
    };
    let next = rest.split([':', '.']).next().unwrap_or_default();
    let targets: Vec<(&'static str, Criterion)> = candidates
        .into_iter()
        .filter(|t| next == "_has" || R4.param(t, next).is_some())
        .map(|t| parse_criterion(t, rest, value).map(|c| (t, c)))
        .collect::<Result<_, _>>()?;
    if targets.is_empty() {
        return Err(format!(
            "{head}.{rest}: no type {name} refers to has a search parameter `{next}`"
        ));
    }
    Ok(Criterion::Chain { param, targets })
}

/// `Source:param:rest` of `_has:Source:param:rest`.
fn parse_has(kind: &str, spec: &str, value: &str) -> Result<Criterion, String> {
    let mut parts = spec.splitn(3, ':');
    let (Some(source), Some(name), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "_has:{spec} must be _has:Type:reference-parameter:parameter"
        ));
    };
    let source = R4
        .types()
        .find(|t| *t == source)
        .ok_or_else(|| format!("_has:{spec}: unknown resource type {source}"))?;
    let param = find(source, name)?;
    if param.param_type != ParamType::Reference
        || !(param.targets.is_empty() || param.targets.iter().any(|t| t == kind))
    {
        return Err(format!("_has:{spec}: {source}.{name} does not refer to a {kind}"));
    }
    let inner = parse_criterion(source, rest, value)?;
    Ok(Criterion::Has {
        source,
        param,
        inner: Box::new(inner),
    })
}

fn parse_sort(kind: &str, value: &str) -> Result<Vec<Sort>, String> {
    value
        .split(',')
        .map(|key| {
            let (name, descending) = match key.strip_prefix('-') {
                Some(name) => (name, true),
                None => (key, false),
            };
            let param = find(kind, name)?;
            if matches!(param.param_type, ParamType::Composite | ParamType::Special)
                || param.expression.is_none()
            {
                return Err(format!(
                    "cannot sort {kind} by the {} parameter `{name}`",
                    param.param_type.as_str()
                ));
            }
            Ok(Sort { param, descending })
        })
        .collect()
}

/// `Source:param[:Target]` or `Source:*`.
fn parse_include(name: &str, value: &str) -> Result<Include, String> {
    let mut parts = value.split(':');
    let (source, param, target) = (parts.next().unwrap_or_default(), parts.next(), parts.next());
    let source = R4
        .types()
        .find(|t| *t == source)
        .ok_or_else(|| format!("{name}={value}: unknown resource type {source}"))?;
    let param = match param {
        Some("*") => None,
        Some(param) => Some(
            find(source, param)
                .ok()
                .filter(|p| p.param_type == ParamType::Reference)
                .ok_or_else(|| format!("{name}={value}: {source} has no reference parameter `{param}`"))?,
        ),
        None => return Err(format!("{name}={value} must be Type:parameter or Type:*")),
    };
    let target = target
        .map(|t| {
            R4.types()
                .find(|k| *k == t)
                .ok_or_else(|| format!("{name}={value}: unknown resource type {t}"))
        })
        .transpose()?;
    Ok(Include {
        source,
        param,
        target,
        iterate: name.ends_with(":iterate"),
    })
}

/// The value a resource sorts by: the least of its values of the parameter.
pub(crate) fn sort_key(index: &Index, param: &Param) -> SortKey {
    let key = index
        .values(&param.name)
        .filter_map(|v| match v {
            IndexValue::Date(range) => Some(SortValue::Number(range.start as f64)),
            IndexValue::Number(n) | IndexValue::Quantity { value: n, .. } => Some(SortValue::Number(*n)),
            IndexValue::String { folded, .. } => Some(SortValue::Text(*folded)),
            IndexValue::Token { code: Some(code), .. } => Some(SortValue::Text(*code)),
            IndexValue::Reference { url, .. } | IndexValue::Uri(url) => Some(SortValue::Text(*url)),
            _ => None,
        })
        .min_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    SortKey {
        missing: key.is_none(),
        value: key,
    }
}

/// Resources without a value sort after those with one (in ascending order).
#[derive(Debug, PartialEq, PartialOrd)]
pub(crate) struct SortKey {
    missing: bool,
    value: Option<SortValue>,
}

#[derive(Debug, PartialEq, PartialOrd)]
enum SortValue {
    Number(f64),
    Text(Text),
}
