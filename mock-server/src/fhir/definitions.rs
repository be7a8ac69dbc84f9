//! What FHIR R4 (4.0.1) defines, as the mock's FHIR engine reads it: the resource
//! types, the choice elements, every SearchParameter with its FHIRPath expression
//! compiled, and the Patient CompartmentDefinition.
//!
//! The data is `definitions/r4.json`, reduced from HL7's official definitions by
//! `scripts/definitions.mjs` (`make definitions`) and embedded, so types and
//! parameters are never written by hand and the binary needs no files. It is read
//! on first use (a few milliseconds; `bench/` measures cold start).

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::Deserialize;

use super::fhirpath::Expr;

/// Choice element name (`value`) → the types it may take (`Quantity`, `string`, …).
pub(crate) type Choices = HashMap<String, Vec<String>>;

pub(crate) static R4: LazyLock<Definitions> = LazyLock::new(|| {
    Definitions::from_json(include_str!("../../definitions/r4.json"))
        .expect("the embedded R4 definitions are consistent")
});

/// How a parameter's values are compared (FHIR R4 §3.1.1.4 "Search parameter types").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub(crate) enum ParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl ParamType {
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One search parameter as it applies to one resource type.
#[derive(Debug)]
pub(crate) struct Param {
    pub name: String,
    pub param_type: ParamType,
    /// Narrowed to this type's arms; `None` for `_text`, `_content` and `_query`,
    /// which the definitions give no expression.
    pub expression: Option<Expr>,
    /// For references: the types a target may have.
    pub targets: Vec<String>,
    /// For composites: each part's type and expression (relative to one value of
    /// `expression`).
    pub components: Vec<Component>,
}

#[derive(Debug, Clone)]
pub(crate) struct Component {
    pub param_type: ParamType,
    pub expression: Expr,
}

#[derive(Debug, Default)]
struct TypeDefinition {
    /// By name.
    params: BTreeMap<String, Param>,
    /// The parameters that put a resource of this type in a patient's compartment;
    /// `None`: never in one.
    compartment: Option<Vec<String>>,
    /// Top-level elements with `isSummary`, and those the type must have.
    summary: Vec<String>,
    mandatory: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Definitions {
    pub choices: Choices,
    types: BTreeMap<String, TypeDefinition>,
}

#[derive(Deserialize)]
struct RawDefinitions {
    types: Vec<String>,
    choices: Choices,
    params: Vec<RawParam>,
    compartment: HashMap<String, Vec<String>>,
    summary: HashMap<String, Vec<String>>,
    mandatory: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct RawParam {
    code: String,
    base: Vec<String>,
    #[serde(rename = "type")]
    param_type: ParamType,
    expression: Option<String>,
    #[serde(default)]
    target: Vec<String>,
    #[serde(default)]
    component: Vec<RawComponent>,
}

#[derive(Deserialize)]
struct RawComponent {
    #[serde(rename = "type")]
    param_type: ParamType,
    expression: String,
}

impl Definitions {
    fn from_json(text: &str) -> Result<Definitions, String> {
        let raw: RawDefinitions = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut types: BTreeMap<String, TypeDefinition> = raw
            .types
            .iter()
            .map(|kind| (kind.clone(), TypeDefinition::default()))
            .collect();
        for param in &raw.params {
            let expression = param
                .expression
                .as_deref()
                .map(|text| Expr::parse(text).map_err(|e| format!("{}: {e}", param.code)))
                .transpose()?;
            let components = param
                .component
                .iter()
                .map(|c| {
                    Ok(Component {
                        param_type: c.param_type,
                        expression: Expr::parse(&c.expression)?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            let kinds: Vec<&String> = if param
                .base
                .iter()
                .any(|b| b == "Resource" || b == "DomainResource")
            {
                raw.types.iter().collect()
            } else {
                param.base.iter().collect()
            };
            for kind in kinds {
                let definition = types
                    .get_mut(kind)
                    .ok_or_else(|| format!("{} is based on the unknown type {kind}", param.code))?;
                definition.params.insert(
                    param.code.clone(),
                    Param {
                        name: param.code.clone(),
                        param_type: param.param_type,
                        expression: expression.as_ref().map(|e| e.for_type(kind)),
                        targets: param.target.clone(),
                        components: components.clone(),
                    },
                );
            }
        }
        for (kind, names) in raw.compartment {
            let definition = types
                .get_mut(&kind)
                .ok_or_else(|| format!("the compartment names the unknown type {kind}"))?;
            if let Some(missing) = names.iter().find(|n| !definition.params.contains_key(*n)) {
                return Err(format!(
                    "the compartment names {kind}.{missing}, which is no parameter"
                ));
            }
            definition.compartment = Some(names);
        }
        for (kind, definition) in &mut types {
            definition.summary = raw.summary.get(kind).cloned().unwrap_or_default();
            definition.mandatory = raw.mandatory.get(kind).cloned().unwrap_or_default();
        }
        Ok(Definitions {
            choices: raw.choices,
            types,
        })
    }

    /// Whether `kind` is an R4 resource type.
    pub(crate) fn is_type(&self, kind: &str) -> bool {
        self.types.contains_key(kind)
    }

    /// Every resource type, in name order.
    pub(crate) fn types(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    /// The parameter `name` of `kind`.
    pub(crate) fn param(&self, kind: &str, name: &str) -> Option<&Param> {
        self.types.get(kind)?.params.get(name)
    }

    /// Every parameter of `kind`, in name order.
    pub(crate) fn params(&self, kind: &str) -> impl Iterator<Item = &Param> {
        self.types.get(kind).into_iter().flat_map(|t| t.params.values())
    }

    /// The parameters whose references put a `kind` in a patient's compartment
    /// (`Observation`: `subject`, `performer`); `None` if it is never in one.
    pub(crate) fn compartment(&self, kind: &str) -> Option<&[String]> {
        self.types.get(kind)?.compartment.as_deref()
    }

    /// Whether `_summary=true` keeps the top-level element `name` of `kind`
    /// (`value` stands for `valueQuantity`, …).
    pub(crate) fn in_summary(&self, kind: &str, name: &str) -> bool {
        self.types
            .get(kind)
            .is_some_and(|t| t.summary.iter().any(|s| is_element(s, name)))
    }

    /// Whether `kind` must have the top-level element `name`.
    pub(crate) fn is_mandatory(&self, kind: &str, name: &str) -> bool {
        self.types
            .get(kind)
            .is_some_and(|t| t.mandatory.iter().any(|s| is_element(s, name)))
    }
}

/// Whether the JSON member `name` is the element `element`, or one of its choices.
pub(crate) fn is_element(element: &str, name: &str) -> bool {
    name.strip_prefix(element)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// Every expression of the official bundle, for the test that compiles them all.
#[cfg(test)]
pub(crate) fn official_expressions() -> Vec<String> {
    let raw: RawDefinitions = serde_json::from_str(include_str!("../../definitions/r4.json")).unwrap();
    raw.params.into_iter().filter_map(|p| p.expression).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_official_numbers() {
        assert!(R4.types().count() >= 145);
        assert!(R4.is_type("DiagnosticReport") && !R4.is_type("Patients"));
        let params: usize = R4.types().map(|t| R4.params(t).count()).sum();
        assert!(params > 3000, "{params}");
        let patient = R4.param("Observation", "patient").unwrap();
        assert_eq!(patient.param_type, ParamType::Reference);
        assert_eq!(patient.targets, ["Patient"]);
        assert!(R4.param("Observation", "_lastUpdated").is_some());
        assert_eq!(R4.compartment("Observation").unwrap(), ["subject", "performer"]);
        assert_eq!(R4.compartment("Practitioner"), None);
        let composite = R4.param("Observation", "code-value-quantity").unwrap();
        assert_eq!(composite.components.len(), 2);
        assert!(R4.in_summary("Observation", "valueQuantity") && !R4.in_summary("Observation", "note"));
        assert!(R4.is_mandatory("Observation", "status") && !R4.is_mandatory("Observation", "subject"));
    }
}
