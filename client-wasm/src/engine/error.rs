//! Every failure the client reports: a stable machine-readable `code` (what an app
//! matches on), a sentence for people, and what the server said.

use std::fmt;

use smart_protocol::OAuthError;

/// `J` is the platform's JSON type: the OperationOutcome or other body of a failed
/// FHIR request rides along untouched.
///
/// Boxed, so a `Result<_, Error>` is one pointer wide on the error side: every async
/// state machine that carries one stays small (6 KB less wasm). Read the fields
/// through `Deref`.
#[derive(Clone, Debug)]
pub struct Error<J>(Box<ErrorDetails<J>>);

#[derive(Clone, Debug)]
pub struct ErrorDetails<J> {
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
        Error(Box::new(ErrorDetails {
            code: code.into(),
            message: message.into(),
            status: None,
            oauth: None,
            body: None,
        }))
    }

    /// An OAuth error: its `error` becomes the code.
    pub fn oauth(error: OAuthError, status: Option<u16>) -> Self {
        let message = error
            .error_description
            .clone()
            .unwrap_or_else(|| error.error.to_string());
        Error(Box::new(ErrorDetails {
            code: error.error.to_string(),
            message,
            status,
            oauth: Some(error),
            body: None,
        }))
    }

    /// A FHIR request that came back with `status`.
    pub fn http(status: u16, body: Option<J>, message: impl Into<String>) -> Self {
        Error(Box::new(ErrorDetails {
            code: format!("http_{status}"),
            message: message.into(),
            status: Some(status),
            oauth: None,
            body,
        }))
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

impl<J> Error<J> {
    pub fn into_details(self) -> ErrorDetails<J> {
        *self.0
    }
}

impl<J> std::ops::Deref for Error<J> {
    type Target = ErrorDetails<J>;
    fn deref(&self) -> &ErrorDetails<J> {
        &self.0
    }
}

impl<J> std::ops::DerefMut for Error<J> {
    fn deref_mut(&mut self) -> &mut ErrorDetails<J> {
        &mut self.0
    }
}

impl<J> fmt::Display for Error<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl<J: fmt::Debug> std::error::Error for Error<J> {}
