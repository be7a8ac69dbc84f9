//! Every failure the client reports: a stable machine-readable `code` (what an app
//! matches on), a sentence for people, and what the server said.

use std::borrow::Cow;
use std::fmt;

use smart_protocol::OAuthError;

/// What went wrong, as an app matches on it: `error.code` in JavaScript, where the
/// TypeScript declarations list the same names as a union type (a test, which
/// walks every variant, keeps the two lists equal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(strum::EnumIter))]
pub enum ErrorCode {
    DiscoveryFailed,
    PkceUnsupported,
    IssNotAllowed,
    InvalidOptions,
    StateMismatch,
    /// RFC 9207: the authorization response names another server.
    IssuerMismatch,
    IdTokenInvalid,
    SessionExpired,
    NetworkError,
    /// The app cancelled the request with its `AbortSignal`.
    Aborted,
    InvalidResponse,
    UnsafeUrl,
    StorageError,
    /// No WebCrypto: the page is not a secure context.
    CryptoUnavailable,
    RegistrationUnsupported,
    NoSession,
    NoPatient,
    NoEncounter,
    NoUser,
    /// The server's OAuth error (`access_denied`, `invalid_grant`, …), in `oauth`.
    OAuth,
    /// A FHIR request answered with an error `status`: `http_403`.
    Http,
}

impl ErrorCode {
    /// The name of a code without a payload.
    fn name(self) -> &'static str {
        match self {
            ErrorCode::DiscoveryFailed => "discovery_failed",
            ErrorCode::PkceUnsupported => "pkce_unsupported",
            ErrorCode::IssNotAllowed => "iss_not_allowed",
            ErrorCode::InvalidOptions => "invalid_options",
            ErrorCode::StateMismatch => "state_mismatch",
            ErrorCode::IssuerMismatch => "issuer_mismatch",
            ErrorCode::IdTokenInvalid => "id_token_invalid",
            ErrorCode::SessionExpired => "session_expired",
            ErrorCode::NetworkError => "network_error",
            ErrorCode::Aborted => "aborted",
            ErrorCode::InvalidResponse => "invalid_response",
            ErrorCode::UnsafeUrl => "unsafe_url",
            ErrorCode::StorageError => "storage_error",
            ErrorCode::CryptoUnavailable => "crypto_unavailable",
            ErrorCode::RegistrationUnsupported => "registration_unsupported",
            ErrorCode::NoSession => "no_session",
            ErrorCode::NoPatient => "no_patient",
            ErrorCode::NoEncounter => "no_encounter",
            ErrorCode::NoUser => "no_user",
            ErrorCode::OAuth | ErrorCode::Http => "",
        }
    }
}

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
    pub code: ErrorCode,
    pub message: String,
    pub status: Option<u16>,
    /// The server's OAuth error, when it sent one.
    pub oauth: Option<OAuthError>,
    /// The body of a failed FHIR request (usually an OperationOutcome).
    pub body: Option<J>,
}

impl<J> Error<J> {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error(Box::new(ErrorDetails {
            code,
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
            code: ErrorCode::OAuth,
            message,
            status,
            oauth: Some(error),
            body: None,
        }))
    }

    /// A FHIR request that came back with `status`.
    pub fn http(status: u16, body: Option<J>, message: impl Into<String>) -> Self {
        Error(Box::new(ErrorDetails {
            code: ErrorCode::Http,
            message: message.into(),
            status: Some(status),
            oauth: None,
            body,
        }))
    }

    pub fn network(detail: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::NetworkError,
            format!("no response from the server: {detail}"),
        )
    }

    pub fn invalid_response(detail: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::InvalidResponse,
            format!("the server's answer could not be understood: {detail}"),
        )
    }

    pub fn invalid_options(detail: impl fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidOptions, detail.to_string())
    }

    pub fn session_expired(detail: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::SessionExpired,
            format!("the session has ended; launch again ({detail})"),
        )
    }

    pub fn storage(detail: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::StorageError,
            format!("cannot use the chosen storage: {detail}"),
        )
    }
}

impl<J> ErrorDetails<J> {
    /// The code as apps see it (`error.code` in JavaScript): `state_mismatch`, the
    /// server's `invalid_grant`, `http_403`.
    pub fn code_text(&self) -> Cow<'_, str> {
        match (self.code, &self.oauth, self.status) {
            (ErrorCode::OAuth, Some(oauth), _) => Cow::Borrowed(oauth.error.as_str()),
            (ErrorCode::Http, _, Some(status)) => Cow::Owned(format!("http_{status}")),
            (code, ..) => Cow::Borrowed(code.name()),
        }
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
        write!(f, "{}: {}", self.code_text(), self.message)
    }
}

impl<J: fmt::Debug> std::error::Error for Error<J> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TypeScript declarations (web/mod.rs) list every code, the package's and
    /// the OAuth ones, and no other.
    #[test]
    fn the_typescript_union_lists_every_code() {
        let declarations = include_str!("../web/mod.rs");
        let union = declarations
            .lines()
            .find(|l| l.starts_with("export type ErrorCode ="))
            .expect("the ErrorCode union");
        let listed: Vec<&str> = union.split('"').skip(1).step_by(2).collect();
        use strum::IntoEnumIterator;
        let names: Vec<_> = ErrorCode::iter()
            .filter(|c| !matches!(c, ErrorCode::OAuth | ErrorCode::Http))
            .map(ErrorCode::name)
            .collect();
        assert_eq!(listed, names);
        let http = Error::<()>::http(403, None, "forbidden");
        assert_eq!(http.code_text(), "http_403");
        let oauth = declarations
            .lines()
            .find(|l| l.starts_with("export type OAuthErrorCode ="))
            .expect("the OAuthErrorCode union");
        let listed: Vec<&str> = oauth.split('"').skip(1).step_by(2).collect();
        assert_eq!(listed, smart_protocol::OAuthErrorCode::KNOWN);
    }
}
