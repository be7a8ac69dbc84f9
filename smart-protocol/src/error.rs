//! OAuth 2.0 error bodies: what a token, authorize, registration or revocation
//! endpoint answers when it refuses (RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2,
//! RFC 7009 §2.2.1). The server serialises [`OAuthError`]; the client parses the same
//! type and can match on [`OAuthErrorCode`].

use serde::Serialize;

use crate::json::{DecodeError, JsonValue, Members};

string_enum! {
    /// The `error` member of an OAuth error response.
    pub enum OAuthErrorCode {
        InvalidRequest => "invalid_request",
        InvalidClient => "invalid_client",
        InvalidGrant => "invalid_grant",
        UnauthorizedClient => "unauthorized_client",
        UnsupportedGrantType => "unsupported_grant_type",
        InvalidScope => "invalid_scope",
        AccessDenied => "access_denied",
        UnsupportedResponseType => "unsupported_response_type",
        ServerError => "server_error",
        TemporarilyUnavailable => "temporarily_unavailable",
        InvalidRedirectUri => "invalid_redirect_uri",
        InvalidClientMetadata => "invalid_client_metadata",
        UnsupportedTokenType => "unsupported_token_type",
        // OpenID Connect Core §3.1.2.6, for `prompt=none`.
        LoginRequired => "login_required",
        ConsentRequired => "consent_required",
        InteractionRequired => "interaction_required",
    }
}

impl OAuthErrorCode {
    /// The HTTP status a token-style endpoint answers with: 401 for a client that
    /// failed to authenticate (RFC 6749 §5.2), 5xx for the server's own trouble,
    /// 400 for everything else.
    pub fn http_status(&self) -> u16 {
        match self {
            OAuthErrorCode::InvalidClient => 401,
            OAuthErrorCode::ServerError => 500,
            OAuthErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// `{"error": "...", "error_description": "...", "error_uri": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error}{}", error_description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct OAuthError {
    pub error: OAuthErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl OAuthError {
    pub fn new(error: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: Some(description.into()),
            error_uri: None,
        }
    }

    pub fn from_json(json: &impl JsonValue) -> Result<Self, DecodeError> {
        let m = Members::of(json);
        m.finish(Self {
            error: OAuthErrorCode::from(m.required("error").as_str()),
            error_description: m.string("error_description"),
            error_uri: m.string("error_uri"),
        })
    }
}

deserialize_with_from_json!(OAuthError);
