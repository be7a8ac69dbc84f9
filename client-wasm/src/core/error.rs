//! Every failure the client reports: a stable machine-readable `code` (what an app
//! matches on), a sentence for people, and what the server said.

use std::fmt;

use smart_protocol::OAuthError;

/// `J` is the platform's JSON type: the OperationOutcome or other body of a failed
/// FHIR request rides along untouched.
#[derive(Clone, Debug)]
pub struct Error<J> {
    /// e.g. `discovery_failed`, `state_mismatch`, `access_denied`, `invalid_grant`,
    /// `http_403`, `session_expired`.
    pub code: String,
    pub message: String,
    pub status: Option<u16>,
    /// The server's OAuth error, when it sent one.
    pub oauth: Option<OAuthError>,
    /// The body of a failed FHIR request (usually an OperationOutcome).
    pub body: Option<J>,
}

impl<J> Error<J> {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            code: code.into(),
            message: message.into(),
            status: None,
            oauth: None,
            body: None,
        }
    }

    /// An OAuth error: its `error` becomes the code.
    pub fn oauth(error: OAuthError, status: Option<u16>) -> Self {
        let message = error
            .error_description
            .clone()
            .unwrap_or_else(|| error.error.to_string());
        Error {
            code: error.error.to_string(),
            message,
            status,
            oauth: Some(error),
            body: None,
        }
    }

    /// A FHIR request that came back with `status`.
    pub fn http(status: u16, body: Option<J>, message: impl Into<String>) -> Self {
        Error {
            code: format!("http_{status}"),
            message: message.into(),
            status: Some(status),
            oauth: None,
            body,
        }
    }

    pub fn network(detail: impl fmt::Display) -> Self {
        Self::new("network_error", format!("no response from the server: {detail}"))
    }

    pub fn invalid_response(detail: impl fmt::Display) -> Self {
        Self::new(
            "invalid_response",
            format!("the server's answer could not be understood: {detail}"),
        )
    }

    pub fn invalid_options(detail: impl fmt::Display) -> Self {
        Self::new("invalid_options", detail.to_string())
    }

    pub fn session_expired(detail: impl fmt::Display) -> Self {
        Self::new(
            "session_expired",
            format!("the session has ended; launch again ({detail})"),
        )
    }

    pub fn storage(detail: impl fmt::Display) -> Self {
        Self::new(
            "storage_error",
            format!("cannot use the chosen storage: {detail}"),
        )
    }
}

impl<J> fmt::Display for Error<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl<J: fmt::Debug> std::error::Error for Error<J> {}
