//! `grant_type=client_credentials` (RFC 6749 §4.4): a confidential client asks for
//! a token for itself. CCRI's quickstart does this with Basic authentication;
//! SMART Backend Services with a `private_key_jwt` assertion.

use smart_protocol::discovery::AuthMethod;
use smart_protocol::{LaunchContext, Scopes};

use super::{Issued, issue};
use crate::auth::client_auth::CallingClient;
use crate::auth::error::OAuthRejection;
use crate::auth::grants::{Grant, random_token};
use crate::auth::simulate::SimulatedError;
use crate::state::AppState;

/// SMART Backend Services: access tokens "should" live no longer than five minutes.
const BACKEND_SERVICE_MAX_TTL_SECS: u64 = 300;

pub(super) fn exchange(
    state: &AppState,
    caller: &CallingClient,
    scope: Option<Scopes>,
) -> Result<Issued, OAuthRejection> {
    if caller.method == AuthMethod::None {
        return Err(OAuthRejection::new(
            smart_protocol::OAuthErrorCode::UnauthorizedClient,
            "client_credentials needs a confidential client",
        ));
    }
    let client = &caller.client;
    if let Some(rejection) = client.simulate_error.and_then(SimulatedError::at_token_endpoint) {
        return Err(rejection);
    }
    // CCRI grants a client's whole registered scope when none is asked for.
    let scopes = scope.unwrap_or_else(|| client.scope.clone());
    if !scopes.is_within(&client.scope) {
        return Err(OAuthRejection::invalid_scope(format!(
            "{} may be granted at most: {}",
            client.client_id, client.scope
        )));
    }
    let grant = Grant {
        id: random_token(),
        client_id: client.client_id.clone(),
        scopes,
        fhir_user: None,
        auth_time: None,
        context: LaunchContext::default(),
        simulate: client.simulate_error,
        fhir_base: state.urls.fhir_base.clone(),
    };
    let ttl = match caller.method {
        AuthMethod::PrivateKeyJwt => state.config.token_ttl_secs.min(BACKEND_SERVICE_MAX_TTL_SECS),
        _ => state.config.token_ttl_secs,
    };
    Ok(issue(state, &grant, ttl, None, None))
}
