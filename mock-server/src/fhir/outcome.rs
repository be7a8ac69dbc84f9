//! FHIR errors: every 4xx/5xx the FHIR API returns is an OperationOutcome whose
//! `diagnostics` says what was wrong, so a developer reading the network tab knows
//! what to fix.

use crate::inspector::Problem;
use crate::lint::{Lint, Lints};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(crate) const FHIR_JSON: &str = "application/fhir+json";

#[derive(Debug)]
pub(crate) struct Outcome {
    status: StatusCode,
    /// An `IssueType` code: `not-found`, `forbidden`, `login`, `invalid`…
    code: &'static str,
    diagnostics: String,
    /// Where the problem is: a FHIRPath into the resource (`Patient.gender`) or the
    /// search parameter (`Observation?code`); inside a Bundle, the entry first.
    expression: Vec<String>,
    /// The mistake of the app's this error is, for the inspector.
    lint: Option<Lint>,
}

/// The store failed (its file, its database): 503, which a client may retry.
impl From<super::store::StoreError> for Outcome {
    fn from(error: super::store::StoreError) -> Outcome {
        tracing::error!(%error, "store failure");
        Outcome::new(StatusCode::SERVICE_UNAVAILABLE, "transient", error.to_string())
    }
}

impl Outcome {
    pub(crate) fn new(status: StatusCode, code: &'static str, diagnostics: impl Into<String>) -> Self {
        Outcome {
            status,
            code,
            diagnostics: diagnostics.into(),
            expression: Vec::new(),
            lint: None,
        }
    }

    /// Notes the app's mistake this error is (the inspector shows it).
    pub(crate) fn lint(mut self, lint: Lint) -> Self {
        self.lint = Some(lint);
        self
    }

    /// Names where the problem is (`issue.expression`).
    pub(crate) fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression = vec![expression.into()];
        self
    }

    /// The same problem, found in entry `index` of a Bundle.
    pub(crate) fn in_entry(mut self, index: usize) -> Self {
        self.diagnostics = format!("Bundle.entry[{index}]: {}", self.diagnostics);
        self.expression.insert(0, format!("Bundle.entry[{index}]"));
        self
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The OperationOutcome resource.
    pub(crate) fn resource(&self) -> serde_json::Value {
        let mut issue = json!({"severity": "error", "code": self.code, "diagnostics": self.diagnostics});
        if !self.expression.is_empty() {
            issue["expression"] = json!(self.expression);
        }
        json!({"resourceType": "OperationOutcome", "issue": [issue]})
    }

    pub(crate) fn not_found(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", diagnostics)
    }

    pub(crate) fn invalid(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", diagnostics)
    }

    pub(crate) fn forbidden(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", diagnostics)
    }
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let mut response = fhir_json(self.status, &self.resource());
        Problem::attach(&mut response, self.code, &self.diagnostics);
        if let Some(lint) = self.lint {
            let detail = match self.expression.is_empty() {
                true => self.diagnostics.clone(),
                false => self.expression.join(", "),
            };
            Lints::attach(&mut response, lint, detail);
        }
        response
    }
}

/// A FHIR JSON response.
pub(crate) fn fhir_json(status: StatusCode, body: &serde_json::Value) -> Response {
    fhir_text(status, body.to_string())
}

/// A FHIR JSON response from JSON text already serialised.
pub(crate) fn fhir_text(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    let mut response = (status, body.into()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}
