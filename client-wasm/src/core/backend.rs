//! Flows without a browser redirect: client credentials (CCRI's Basic-auth flow,
//! for service workers, Node and back ends) and RFC 7591 dynamic registration.

use smart_protocol::{ClientMetadata, ClientRegistration, ClientSecret, Scopes, TokenResponse};

use super::discovery::discover;
use super::error::Error;
use super::platform::{HttpRequest, Method, Platform};
use super::token::{ClientAuth, oauth_answer, request_token};

pub struct ClientCredentialsOptions {
    /// The token endpoint, or the FHIR base to discover it from.
    pub token_url: Option<String>,
    pub iss: Option<String>,
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub scope: Option<Scopes>,
}

pub async fn client_credentials<P: Platform>(
    platform: &P,
    options: &ClientCredentialsOptions,
) -> Result<TokenResponse, Error<P::Json>> {
    let token_url = match (&options.token_url, &options.iss) {
        (Some(url), _) => url.clone(),
        (None, Some(iss)) => discover(platform, iss).await?.token_endpoint,
        (None, None) => return Err(Error::invalid_options("tokenUrl or iss is required")),
    };
    let mut form = vec![("grant_type", "client_credentials".to_owned())];
    if let Some(scope) = &options.scope {
        form.push(("scope", scope.to_string()));
    }
    request_token(
        platform,
        &token_url,
        &ClientAuth::Secret(&options.client_id, &options.client_secret),
        form,
    )
    .await
}

/// Registers a client at the server `iss` advertises.
pub async fn register<P: Platform>(
    platform: &P,
    iss: &str,
    metadata: &ClientMetadata,
) -> Result<ClientRegistration, Error<P::Json>> {
    let config = discover(platform, iss).await?;
    let endpoint = config.registration_endpoint.ok_or_else(|| {
        Error::new(
            "registration_unsupported",
            format!("{iss} advertises no registration_endpoint"),
        )
    })?;
    let mut request = HttpRequest::new(Method::Post, endpoint)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json");
    request.body = Some(serde_json::to_string(metadata).map_err(Error::invalid_options)?);
    let response = platform.fetch(request).await.map_err(Error::network)?;
    oauth_answer(response.status, response.body)
}
