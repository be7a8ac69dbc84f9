//! `POST {auth}/revoke` (RFC 7009): the app is done with a token. Revoking a refresh
//! token ends its whole grant, access tokens included; revoking an access token ends
//! that token. Unknown tokens are not an error (§2.2): the answer is always 200.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use smart_protocol::ClientAuthentication;

use super::client_auth::authenticate;
use super::error::OAuthRejection;
use super::verify::{TokenError, verify_access_token};
use crate::state::AppState;

#[derive(Deserialize)]
struct RevokeForm {
    token: String,
}

pub(crate) async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match serde_urlencoded::from_bytes::<RevokeForm>(&body) {
        Ok(form) => form,
        Err(e) => {
            return OAuthRejection::invalid_request(format!("token is required: {e}")).into_response();
        }
    };
    let auth: ClientAuthentication = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let caller = match authenticate(&state, &headers, &auth).await {
        Ok(caller) => caller,
        Err(rejection) => return rejection.into_response(),
    };
    let client_id = caller.client.client_id;
    let verified = verify_access_token(&state, &form.token);
    if let Err(TokenError::Unavailable(why)) = verified {
        return OAuthRejection::unavailable(why).into_response();
    }
    let revoked = match verified {
        Ok(claims) if claims.client_id == client_id => {
            state.grants().revoke_access_token(&claims.jti, claims.exp)
        }
        Ok(_) => Ok(()),
        Err(_) => {
            let mut grants = state.grants();
            let owned = grants
                .refresh_grant(&form.token)
                .is_some_and(|r| r.grant.client_id == client_id);
            match owned {
                true => grants.revoke_refresh_token(&form.token).map(drop),
                false => Ok(()),
            }
        }
    };
    // A revocation the store did not keep is not done: the app must try again.
    match revoked {
        Ok(()) => StatusCode::OK.into_response(),
        Err(unavailable) => OAuthRejection::unavailable(unavailable).into_response(),
    }
}
