//! `grant_type=authorization_code` (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.6).
//!
//! The code must be unused, unexpired, issued to this client for this exact
//! `redirect_uri`, and `BASE64URL(SHA256(code_verifier))` must equal the challenge
//! sent to `/authorize`. A replayed code revokes what was issued from it. Only a
//! launch that let the app choose can have no challenge; then a verifier is refused
//! too (a PKCE downgrade, RFC 9700 §2.1.1).

use base64::Engine;
use sha2::{Digest, Sha256};
use smart_protocol::PkceVerifier;

use super::{Issued, issue, wants_refresh};
use crate::auth::client_auth::CallingClient;
use crate::auth::error::OAuthRejection;
use crate::auth::grants::CodeRefused;
use crate::auth::grants::{Redeemed, Redemption};
use crate::auth::simulate::SimulatedError;
use crate::lint::Lint;
use crate::state::AppState;

pub(super) fn exchange(
    state: &AppState,
    caller: &CallingClient,
    code: &str,
    redirect_uri: &str,
    verifier: Option<PkceVerifier>,
) -> Result<Issued, OAuthRejection> {
    let challenge = match &verifier {
        Some(verifier) => {
            check_verifier_syntax(verifier)?;
            Some(s256(verifier))
        }
        None => None,
    };
    let mut grants = state.grants();
    let Redeemed { grant, nonce } = grants
        .redeem_code(
            code,
            &Redemption {
                client_id: &caller.client.client_id,
                redirect_uri,
                challenge: challenge.as_deref(),
            },
        )
        .map_err(|refused| match refused {
            CodeRefused::Unavailable => OAuthRejection::unavailable(refused),
            CodeRefused::VerifierMismatch => {
                OAuthRejection::invalid_grant(refused.to_string()).lint(Lint::PkceVerifierMismatch)
            }
            _ => OAuthRejection::invalid_grant(refused.to_string()),
        })?;
    match grant.simulate {
        Some(SimulatedError::AuthInvalidClientSecret) => {
            return Err(OAuthRejection::invalid_client(
                "client authentication failed (simulated error)",
            ));
        }
        Some(SimulatedError::TokenInvalidToken) => {
            return Err(OAuthRejection::invalid_grant(
                "invalid authorization code (simulated error)",
            ));
        }
        Some(other) => {
            if let Some(rejection) = other.at_token_endpoint() {
                return Err(rejection);
            }
        }
        None => {}
    }
    // Asked before this launch's own refresh token joins them.
    let unused = wants_refresh(&grant)
        && !caller.client.is_confidential()
        && grants.holds_unused_refresh_token(&caller.client.client_id);
    let refresh = wants_refresh(&grant).then(|| grants.issue_refresh_token(grant.clone()));
    drop(grants);
    let mut issued = issue(state, &grant, state.config.token_ttl_secs, refresh, nonce);
    if unused {
        issued.lint = Some((
            Lint::OfflineAccessUnused,
            "an earlier launch's refresh token was never used, and its access token has expired".into(),
        ));
    }
    Ok(issued)
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Za-z0-9-._~]`.
fn check_verifier_syntax(verifier: &PkceVerifier) -> Result<(), OAuthRejection> {
    let text = verifier.secret();
    let valid = (43..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if valid {
        Ok(())
    } else {
        Err(OAuthRejection::invalid_grant(
            "code_verifier must be 43-128 unreserved characters",
        ))
    }
}

/// The S256 code challenge of a verifier (RFC 7636 §4.2).
fn s256(verifier: &PkceVerifier) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.secret().as_bytes()))
}
