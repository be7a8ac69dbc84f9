//! `grant_type=refresh_token` (RFC 6749 §6): a new access token for the same grant,
//! optionally for fewer scopes, never for more. The refresh token stays valid until
//! it expires or is revoked, unless `refresh_rotation` is on: then each refresh
//! answers with a new refresh token and the old one is refused, and a replaced one
//! used again revokes the grant (RFC 9700 §4.14.2).

use smart_protocol::{RefreshToken, Scopes};

use super::{Issued, issue};
use crate::auth::claims::now;
use crate::auth::client_auth::CallingClient;
use crate::auth::error::OAuthRejection;
use crate::auth::grants::NotRotated;
use crate::auth::simulate::SimulatedError;
use crate::lint::Lint;
use crate::state::AppState;

pub(super) fn exchange(
    state: &AppState,
    caller: &CallingClient,
    refresh_token: &RefreshToken,
    scope: Option<Scopes>,
) -> Result<Issued, OAuthRejection> {
    // Every check and the rotation under one lock: two requests with the same
    // token cannot both pass the check before either rotates it.
    let (grant, rotated, issued_before) = {
        let mut grants = state.grants();
        if grants.revoke_if_replaced(refresh_token.secret()) {
            return Err(OAuthRejection::invalid_grant(
                "this refresh token was already used and replaced: the grant is revoked (RFC 9700 §4.14.2)",
            ));
        }
        let refresh = grants
            .refresh_grant(refresh_token.secret())
            .ok_or_else(|| OAuthRejection::invalid_grant("refresh token unknown, expired or revoked"))?;
        if refresh.grant.client_id != caller.client.client_id {
            return Err(OAuthRejection::invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        let mut grant = refresh.grant.clone();
        let issued_before = refresh.last_issued;
        if grant.simulate == Some(SimulatedError::TokenExpiredRefreshToken) {
            return Err(OAuthRejection::invalid_grant(
                "refresh token expired (simulated error)",
            ));
        }
        if let Some(narrower) = scope {
            if !narrower.is_within(&grant.scopes) {
                return Err(OAuthRejection::invalid_scope(format!(
                    "a refresh may narrow the grant, not widen it; granted: {}",
                    grant.scopes
                )));
            }
            grant.scopes = narrower;
        }
        let rotated = match state.config.refresh_rotation {
            true => match grants.rotate_refresh_token(refresh_token.secret()) {
                Ok(rotated) => Some(rotated),
                Err(NotRotated::Replaced) => {
                    return Err(OAuthRejection::invalid_grant(
                        "this refresh token was already used and replaced: the grant is revoked (RFC 9700 §4.14.2)",
                    ));
                }
                Err(NotRotated::Unavailable) => {
                    return Err(OAuthRejection::unavailable(
                        "the store is unavailable; the refresh token is unchanged, try again",
                    ));
                }
            },
            false => None,
        };
        grants.note_refreshed(rotated.as_deref().unwrap_or(refresh_token.secret()), now());
        (grant, rotated, issued_before)
    };
    // OpenID Connect Core §12.2: a refreshed id_token should carry no nonce.
    let ttl = state.config.token_ttl_secs;
    let mut issued = issue(state, &grant, ttl, None, None);
    issued.response.refresh_token = match rotated {
        Some(token) => Some(RefreshToken::new(token)),
        None => Some(refresh_token.clone()),
    };
    let elapsed = now().saturating_sub(issued_before);
    if elapsed < ttl / 2 {
        issued.lint = Some((
            Lint::RefreshTooEarly,
            format!("{elapsed} s into a token that lives {ttl} s"),
        ));
    }
    Ok(issued)
}
