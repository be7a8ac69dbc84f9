//! FHIR search (R4 §3.1.1): a query string becomes a [`SearchRequest`] — criteria
//! that must all hold, each an OR of values — plus the result parameters
//! (`_count`, `_sort`, `_include`, `_revinclude`, `_summary`, `_total`) and the
//! paging state the mock puts in its own `next`/`previous` links.
//!
//! Anything not understood is a 400 naming the parameter: a filter silently
//! ignored would return more than the app asked for.

pub(crate) mod date;
pub(crate) mod execute;
pub(crate) mod matching;
pub(crate) mod params;

use serde_json::Value;

use crate::reference;
use matching::{SearchValue, StringMatch, element_matches, fold};
use params::{Param, ParamType};

/// Page size when `_count` is absent, and the largest page served.
pub(crate) const DEFAULT_COUNT: usize = 20;
pub(crate) const MAX_COUNT: usize = 1000;

/// Paging parameters of the mock's own links: where the page starts, and the store
/// sequence number the search was first run at, so later pages see the same results
/// whatever was written since.
pub(crate) const OFFSET: &str = "_offset";
pub(crate) const SNAPSHOT: &str = "_snapshot";

/// One parameter of a search: all its values are alternatives.
#[derive(Debug)]
pub(crate) struct Criterion {
    pub param: &'static Param,
    pub mode: StringMatch,
    pub values: Vec<SearchValue>,
}

impl Criterion {
    pub(crate) fn matches(&self, resource: &Value) -> bool {
        self.param
            .paths
            .iter()
            .flat_map(|path| matching::values(resource, path))
            .any(|element| {
                self.values
                    .iter()
                    .any(|value| element_matches(element, value, self.mode))
            })
    }

    /// The patient id this criterion pins the search to, if it is `patient=…` or
    /// `subject=Patient/…` with one value: the store answers that from an index.
    pub(crate) fn patient(&self) -> Option<&str> {
        match self.values.as_slice() {
            [SearchValue::Reference { kind, id }]
                if self.param.paths == ["subject"] || self.param.paths == ["patient"] =>
            {
                match kind.as_deref() {
                    Some("Patient") => Some(id),
                    None if self.param.targets == ["Patient"] => Some(id),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Sort {
    pub param: &'static Param,
    pub descending: bool,
}

#[derive(Debug)]
pub(crate) struct SearchRequest {
    pub criteria: Vec<Criterion>,
    pub count: usize,
    pub offset: usize,
    pub snapshot: Option<u64>,
    pub sort: Vec<Sort>,
    /// `_include=Type:param`: references to follow from the matches.
    pub include: Vec<&'static Param>,
    /// `_revinclude=Type:param`: resources of `Type` pointing at the matches.
    pub revinclude: Vec<(&'static str, &'static Param)>,
    pub summary_count: bool,
    pub total: bool,
    /// The request's own parameters (not paging ones), repeated in the links.
    pub echo: Vec<(String, String)>,
}

/// Parses a search of `kind`.
pub(crate) fn parse(kind: &str, query: &[(String, String)]) -> Result<SearchRequest, String> {
    let mut request = SearchRequest {
        criteria: Vec::new(),
        count: DEFAULT_COUNT,
        offset: 0,
        snapshot: None,
        sort: Vec::new(),
        include: Vec::new(),
        revinclude: Vec::new(),
        summary_count: false,
        total: true,
        echo: Vec::new(),
    };
    for (name, value) in query {
        if name != OFFSET && name != SNAPSHOT {
            request.echo.push((name.clone(), value.clone()));
        }
        match name.as_str() {
            "_count" => {
                request.count = value.parse().ok().filter(|c| *c <= MAX_COUNT).ok_or_else(|| {
                    format!("_count must be a whole number from 0 to {MAX_COUNT}, not {value:?}")
                })?;
            }
            OFFSET => request.offset = value.parse().map_err(|_| format!("{OFFSET} must be a number"))?,
            SNAPSHOT => {
                request.snapshot = Some(
                    value
                        .parse()
                        .map_err(|_| format!("{SNAPSHOT} must be a number"))?,
                )
            }
            "_sort" => request.sort = parse_sort(kind, value)?,
            "_include" => request.include.push(parse_include(kind, value)?),
            "_revinclude" => request.revinclude.push(parse_revinclude(value)?),
            "_summary" => match value.as_str() {
                "count" => request.summary_count = true,
                "false" => {}
                other => return Err(format!("_summary={other} is not supported (count and false are)")),
            },
            "_total" => match value.as_str() {
                "none" => request.total = false,
                "estimate" | "accurate" => request.total = true,
                other => return Err(format!("_total must be none, estimate or accurate, not {other}")),
            },
            "_format" => match value.as_str() {
                "json" | "application/json" | "application/fhir+json" => {}
                other => return Err(format!("_format={other}: this server only speaks JSON")),
            },
            "_pretty" => {}
            _ => request.criteria.push(parse_criterion(kind, name, value)?),
        }
    }
    Ok(request)
}

/// One `name[:modifier]=value[,value…]` pair. Also used for the constraints of
/// granular SMART scopes (`patient/Observation.rs?category=…`).
pub(crate) fn parse_criterion(kind: &str, name: &str, value: &str) -> Result<Criterion, String> {
    let (base, modifier) = match name.split_once(':') {
        Some((base, modifier)) => (base, Some(modifier)),
        None => (name, None),
    };
    let param = params::find(kind, base).ok_or_else(|| {
        let known: Vec<&str> = params::all(kind).map(|p| p.name).collect();
        format!(
            "unknown search parameter `{base}` for {kind}; supported: {}",
            known.join(", ")
        )
    })?;
    let mode = match (param.param_type, modifier) {
        (_, None) => StringMatch::Prefix,
        (ParamType::String, Some("exact")) => StringMatch::Exact,
        (ParamType::String, Some("contains")) => StringMatch::Contains,
        (_, Some(modifier)) => {
            return Err(format!(
                "the modifier :{modifier} is not supported on {} parameter {base}",
                param.param_type.as_str()
            ));
        }
    };
    if value.is_empty() {
        return Err(format!("search parameter {name} has no value"));
    }
    let values = value
        .split(',')
        .map(|v| {
            parse_value(param, mode, v)
                .ok_or_else(|| format!("{name}={v} is not a valid {} value", param.param_type.as_str()))
        })
        .collect::<Result<_, _>>()?;
    Ok(Criterion { param, mode, values })
}

fn parse_value(param: &Param, mode: StringMatch, value: &str) -> Option<SearchValue> {
    Some(match param.param_type {
        ParamType::Token => match value.split_once('|') {
            Some((system, code)) => SearchValue::Token {
                system: Some(system.to_owned()),
                code: (!code.is_empty()).then(|| code.to_owned()),
            },
            None => SearchValue::Token {
                system: None,
                code: Some(value.to_owned()),
            },
        },
        ParamType::Date => {
            let (prefix, text) = date::Prefix::split(value).ok()?;
            SearchValue::Date {
                prefix,
                range: date::parse(text)?,
            }
        }
        ParamType::String if mode == StringMatch::Exact => SearchValue::String(value.to_owned()),
        ParamType::String => SearchValue::String(fold(value)),
        ParamType::Reference => match reference::parts(value) {
            Some((kind, id)) => SearchValue::Reference {
                kind: Some(kind.to_owned()),
                id: id.to_owned(),
            },
            None if !value.contains('/') => SearchValue::Reference {
                kind: (param.targets.len() == 1).then(|| param.targets[0].to_owned()),
                id: value.to_owned(),
            },
            None => return None,
        },
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
            let param = params::find(kind, name)
                .filter(|p| p.param_type != ParamType::Reference)
                .ok_or_else(|| format!("cannot sort {kind} by `{name}`"))?;
            Ok(Sort { param, descending })
        })
        .collect()
}

fn parse_include(kind: &str, value: &str) -> Result<&'static Param, String> {
    let mut parts = value.split(':');
    let (source, name) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if source != kind {
        return Err(format!(
            "_include={value}: a search of {kind} can only include {kind}:<parameter>"
        ));
    }
    reference_param(source, name, value)
}

fn parse_revinclude(value: &str) -> Result<(&'static str, &'static Param), String> {
    let mut parts = value.split(':');
    let (source, name) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let source = params::TYPES
        .iter()
        .map(|(t, _)| *t)
        .find(|t| *t == source)
        .ok_or_else(|| format!("_revinclude={value}: unknown resource type {source}"))?;
    Ok((source, reference_param(source, name, value)?))
}

fn reference_param(kind: &str, name: &str, value: &str) -> Result<&'static Param, String> {
    params::find(kind, name)
        .filter(|p| p.param_type == ParamType::Reference)
        .ok_or_else(|| format!("{value}: {kind} has no reference parameter `{name}`"))
}

/// The value a resource sorts by: the earliest date, or the least string/code.
pub(crate) fn sort_key(resource: &Value, param: &Param) -> SortKey {
    let elements = param
        .paths
        .iter()
        .flat_map(|path| matching::values(resource, path));
    let key = match param.param_type {
        ParamType::Date => elements
            .filter_map(date::of_element)
            .map(|r| SortValue::Date(r.start))
            .min(),
        _ => elements
            .filter_map(|e| e.as_str().or_else(|| e.get("code")?.as_str()))
            .map(|text| SortValue::Text(fold(text)))
            .min(),
    };
    SortKey {
        missing: key.is_none(),
        value: key,
    }
}

/// Resources without a value sort after those with one (in ascending order).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SortKey {
    missing: bool,
    value: Option<SortValue>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Date(i64),
    Text(String),
}
