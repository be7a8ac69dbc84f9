//! Talking to the token endpoint: one place that sends a grant and turns the answer
//! into a [`TokenResponse`] or the server's OAuth error.

use base64::Engine;
use smart_protocol::request::JWT_BEARER_ASSERTION;
use smart_protocol::{AccessToken, ClientSecret, OAuthError, RefreshToken, TokenResponse};

use super::error::Error;
use super::platform::{HttpRequest, Json, Method, Platform, Response};

/// How the client proves itself: a public client names itself, a confidential one
/// sends its secret with HTTP Basic (RFC 6749 §2.3.1) or a signed assertion (RFC 7523).
pub enum ClientAuth<'a> {
    Public(&'a str),
    Secret(&'a str, &'a ClientSecret),
    /// A `client_assertion` JWT, already signed.
    Assertion(String),
}

/// An assertion is a bearer credential while it lives: printed as `[redacted]`.
impl std::fmt::Debug for ClientAuth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Public(id) => f.debug_tuple("Public").field(id).finish(),
            ClientAuth::Secret(id, secret) => f.debug_tuple("Secret").field(id).field(secret).finish(),
            ClientAuth::Assertion(_) => f.debug_tuple("Assertion").field(&"[redacted]").finish(),
        }
    }
}

impl ClientAuth<'_> {
    /// Adds the credentials to a form request.
    pub fn apply<S>(&self, request: HttpRequest<S>, form: &mut Vec<(&str, String)>) -> HttpRequest<S> {
        match self {
            ClientAuth::Public(client_id) => {
                form.push(("client_id", client_id.to_string()));
                request
            }
            ClientAuth::Secret(client_id, secret) => {
                let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", encode(client_id), encode(secret.secret()));
                let basic = base64::engine::general_purpose::STANDARD.encode(pair);
                request.header("Authorization", format!("Basic {basic}"))
            }
            ClientAuth::Assertion(assertion) => {
                form.push(("client_assertion_type", JWT_BEARER_ASSERTION.to_owned()));
                form.push(("client_assertion", assertion.clone()));
                request
            }
        }
    }
}

/// POSTs `form`, with the client's credentials, to an OAuth endpoint.
pub async fn post_form<P: Platform>(
    platform: &P,
    url: &str,
    auth: &ClientAuth<'_>,
    mut form: Vec<(&str, String)>,
) -> Result<Response<P>, Error<P::Json>> {
    let request = auth.apply(
        HttpRequest::new(Method::Post, url).header("Accept", "application/json"),
        &mut form,
    );
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    platform.fetch(request.form(&pairs)).await.map_err(Error::network)
}

/// POSTs `form` to the token endpoint `url` and decodes the token response.
pub async fn request_token<P: Platform>(
    platform: &P,
    url: &str,
    auth: &ClientAuth<'_>,
    form: Vec<(&str, String)>,
) -> Result<TokenResponse, Error<P::Json>> {
    let response = post_form(platform, url, auth, form).await?;
    let body = oauth_answer(response.status, response.body)?;
    TokenResponse::from_json(&body).map_err(Error::invalid_response)
}

/// The JSON body of a 2xx, or the OAuth error body of anything else.
pub fn oauth_answer<J: Json>(status: u16, body: Option<J>) -> Result<J, Error<J>> {
    let body = body.ok_or_else(|| Error::invalid_response(format!("HTTP {status} without a JSON body")))?;
    if (200..300).contains(&status) {
        return Ok(body);
    }
    match OAuthError::from_json(&body) {
        Ok(error) => Err(Error::oauth(error, Some(status))),
        Err(_) => Err(Error::invalid_response(format!("HTTP {status}"))),
    }
}

/// RFC 7009: ends a grant at `endpoint`. The refresh token is the one revoked when
/// there is one, since that ends its access tokens too (§2.1).
pub async fn revoke<P: Platform>(
    platform: &P,
    endpoint: &str,
    auth: &ClientAuth<'_>,
    access: &AccessToken,
    refresh: Option<&RefreshToken>,
) -> Result<(), Error<P::Json>> {
    let token = refresh.map_or_else(|| access.secret(), |refresh| refresh.secret());
    let response = post_form(platform, endpoint, auth, vec![("token", token.to_owned())]).await?;
    match response.status {
        200..=299 => Ok(()),
        status => oauth_answer(status, response.body).map(|_| ()),
    }
}
