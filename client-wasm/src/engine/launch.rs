//! Starting a launch (SMART App Launch 2.2 §"Obtain authorization code"): discover
//! the server, refuse anything weaker than PKCE S256, remember what the callback
//! will need under a fresh random `state`, and build the authorize URL.
//!
//! Each launch is stored under its own key (`…launch:{state}`), so two launches in
//! two tabs never overwrite each other, and the callback finds only its own.

use base64::Engine;
use smart_protocol::{Capability, ClientSecret, DecodeError, JsonValue, Members, PkceVerifier};

use super::discovery::discover;
use super::error::{Error, ErrorCode};
use super::platform::{Json, Platform, Storage};

pub const LAUNCH_KEY_PREFIX: &str = "smart-fhir-client:launch:";

/// What the app passes to `authorize()`.
#[derive(Debug, Default)]
pub struct AuthorizeOptions {
    /// The FHIR base URL: given by the app (standalone) or by the EHR (`?iss=`).
    pub iss: String,
    pub client_id: String,
    pub scope: String,
    pub redirect_uri: String,
    /// The EHR's launch id (`?launch=`), for an EHR launch.
    pub launch: Option<String>,
    /// The resource server the token is for, sent as `aud`; defaults to `iss`.
    /// Requests always go to `iss`.
    pub aud: Option<String>,
    /// If given, `iss` must be one of these: an EHR launch names its own server, and
    /// an app should only send users to servers it knows.
    pub iss_allow_list: Option<Vec<String>>,
    /// A confidential client's secret. Used for this call's checks only, never stored.
    pub client_secret: Option<ClientSecret>,
    /// OpenID's `prompt` (`none`, `login`, `consent`, `select_account`). Default:
    /// `consent` when both `openid` and `offline_access` are asked, since OpenID
    /// Connect Core §11 lets a server drop `offline_access` otherwise.
    pub prompt: Option<String>,
    /// More authorize parameters, sent as they are; none may be one the launch sets.
    pub extra_params: Vec<(String, String)>,
    /// How far the id_token's `exp` and `iat` may be off this device's clock, in
    /// seconds. Default [`DEFAULT_CLOCK_TOLERANCE`].
    pub clock_tolerance: Option<u64>,
    /// Send the parameters as a form POST (SMART's `authorize-post`) when the server
    /// advertises it; a GET otherwise.
    pub post: bool,
}

/// Where to send the browser: the authorize endpoint with its parameters.
#[derive(Debug)]
pub struct AuthorizeRequest {
    pub endpoint: String,
    /// The parameters, form-encoded.
    pub params: String,
    /// As a form POST (the server advertises `authorize-post`), not in the URL.
    pub post: bool,
}

impl AuthorizeRequest {
    /// The request as one URL (a GET).
    pub fn url(&self) -> String {
        let separator = if self.endpoint.contains('?') { '&' } else { '?' };
        format!("{}{separator}{}", self.endpoint, self.params)
    }
}

/// The default allowance for clocks that disagree (`clockTolerance`).
pub const DEFAULT_CLOCK_TOLERANCE: u64 = 60;

/// The authorize parameters the launch sets itself, which `extraParams` may not.
const PROTOCOL_PARAMS: [&str; 11] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "launch",
    "nonce",
    "prompt",
];

/// What the callback needs to finish a launch, kept in storage between the two.
#[derive(Debug)]
pub struct PendingLaunch {
    pub fhir_base: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub code_verifier: PkceVerifier,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    pub issuer: Option<String>,
    pub jwks_uri: Option<String>,
    /// The app said it has a secret: the code exchange must authenticate.
    pub confidential: bool,
    /// Sent with an OpenID launch; the id_token must carry it back.
    pub nonce: Option<String>,
    /// The server promised RFC 9207's `iss` on its authorization responses.
    pub iss_parameter_required: bool,
    pub clock_tolerance: u64,
}

impl PendingLaunch {
    pub fn to_json<J: Json>(&self) -> J {
        let text = |s: &str| Some(J::text(s));
        J::object(vec![
            ("fhir_base", text(&self.fhir_base)),
            ("client_id", text(&self.client_id)),
            ("redirect_uri", text(&self.redirect_uri)),
            ("scope", text(&self.scope)),
            ("code_verifier", text(self.code_verifier.secret())),
            ("token_endpoint", text(&self.token_endpoint)),
            (
                "revocation_endpoint",
                self.revocation_endpoint.as_deref().and_then(text),
            ),
            ("issuer", self.issuer.as_deref().and_then(text)),
            ("jwks_uri", self.jwks_uri.as_deref().and_then(text)),
            ("confidential", Some(J::flag(self.confidential))),
            ("nonce", self.nonce.as_deref().and_then(text)),
            (
                "iss_parameter_required",
                Some(J::flag(self.iss_parameter_required)),
            ),
            ("clock_tolerance", Some(J::number(self.clock_tolerance as f64))),
        ])
    }

    pub fn from_json(json: &impl JsonValue) -> Result<Self, DecodeError> {
        let m = Members::of(json);
        m.finish(PendingLaunch {
            fhir_base: m.required("fhir_base"),
            client_id: m.required("client_id"),
            redirect_uri: m.required("redirect_uri"),
            scope: m.required("scope"),
            code_verifier: PkceVerifier::new(m.required("code_verifier")),
            token_endpoint: m.required("token_endpoint"),
            revocation_endpoint: m.string("revocation_endpoint"),
            issuer: m.string("issuer"),
            jwks_uri: m.string("jwks_uri"),
            confidential: m.boolean("confidential").unwrap_or(false),
            nonce: m.string("nonce"),
            iss_parameter_required: m.boolean("iss_parameter_required").unwrap_or(false),
            clock_tolerance: m.unsigned("clock_tolerance").unwrap_or(DEFAULT_CLOCK_TOLERANCE),
        })
    }
}

/// Random bytes as base64url (43 characters for 32 bytes).
pub fn random_token<P: Platform>(platform: &P) -> String {
    let mut bytes = [0u8; 32];
    platform.random_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 code challenge (RFC 7636 §4.2): BASE64URL(SHA256(code_verifier)).
async fn s256_challenge<P: Platform>(
    platform: &P,
    verifier: &PkceVerifier,
) -> Result<String, Error<P::Json>> {
    let digest = platform.sha256(verifier.secret().as_bytes()).await.map_err(|e| {
        Error::new(
            ErrorCode::CryptoUnavailable,
            format!("cannot compute the PKCE challenge: {e}"),
        )
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
}

/// Prepares a launch and returns the authorize request to send the browser to.
pub async fn authorize<P: Platform, S: Storage>(
    platform: &P,
    storage: &S,
    options: &AuthorizeOptions,
) -> Result<AuthorizeRequest, Error<P::Json>> {
    for (name, value) in [
        ("iss", &options.iss),
        ("clientId", &options.client_id),
        ("scope", &options.scope),
        ("redirectUri", &options.redirect_uri),
    ] {
        if value.trim().is_empty() {
            return Err(Error::invalid_options(format!("{name} is required")));
        }
    }
    let iss = options.iss.trim_end_matches('/');
    if let Some(allowed) = &options.iss_allow_list
        && !allowed.iter().any(|a| a.trim_end_matches('/') == iss)
    {
        return Err(Error::new(
            ErrorCode::IssNotAllowed,
            format!("{iss} is not in issAllowList"),
        ));
    }
    if let Some((name, _)) = options
        .extra_params
        .iter()
        .find(|(name, _)| PROTOCOL_PARAMS.contains(&name.as_str()))
    {
        return Err(Error::invalid_options(format!(
            "extraParams may not set {name}: the launch sets it (use the option of that name)"
        )));
    }
    let asks = |scope: &str| options.scope.split_whitespace().any(|s| s == scope);
    let openid = asks("openid");
    let config = discover(platform, iss).await?;
    if openid && config.issuer.is_none() {
        return Err(Error::new(
            ErrorCode::DiscoveryFailed,
            "discovery names no issuer, which an OpenID launch needs to check the id_token",
        ));
    }
    if !config.allows_s256() {
        return Err(Error::new(
            ErrorCode::PkceUnsupported,
            "the server does not support PKCE with S256; refusing to launch without it",
        ));
    }
    let authorization_endpoint = config.authorization_endpoint.clone().ok_or_else(|| {
        Error::new(
            ErrorCode::DiscoveryFailed,
            "the server advertises no authorization_endpoint",
        )
    })?;

    let state = random_token(platform);
    let code_verifier = PkceVerifier::new(random_token(platform));
    let code_challenge = s256_challenge(platform, &code_verifier).await?;
    let aud = options.aud.as_deref().unwrap_or(iss).trim_end_matches('/');
    let nonce = openid.then(|| random_token(platform));
    let prompt = match &options.prompt {
        Some(prompt) => Some(prompt.as_str()),
        None if openid && asks("offline_access") => Some("consent"),
        None => None,
    };
    let pending = PendingLaunch {
        fhir_base: iss.to_owned(),
        client_id: options.client_id.clone(),
        redirect_uri: options.redirect_uri.clone(),
        scope: options.scope.clone(),
        code_verifier,
        token_endpoint: config.token_endpoint.clone(),
        revocation_endpoint: config.revocation_endpoint.clone(),
        issuer: config.issuer.clone(),
        jwks_uri: config.jwks_uri.clone(),
        confidential: options.client_secret.is_some(),
        nonce: nonce.clone(),
        iss_parameter_required: config.authorization_response_iss_parameter_supported,
        clock_tolerance: options.clock_tolerance.unwrap_or(DEFAULT_CLOCK_TOLERANCE),
    };
    let stored = pending.to_json::<P::Json>().to_text().map_err(Error::storage)?;
    storage
        .set(&format!("{LAUNCH_KEY_PREFIX}{state}"), &stored)
        .map_err(Error::storage)?;

    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", &options.client_id)
        .append_pair("redirect_uri", &options.redirect_uri)
        .append_pair("scope", &options.scope)
        .append_pair("state", &state)
        .append_pair("aud", aud)
        .append_pair("code_challenge", &code_challenge)
        .append_pair("code_challenge_method", "S256");
    let optional = [
        ("launch", options.launch.as_deref()),
        ("nonce", nonce.as_deref()),
        ("prompt", prompt),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    for (name, value) in &options.extra_params {
        query.append_pair(name, value);
    }
    Ok(AuthorizeRequest {
        endpoint: authorization_endpoint,
        params: query.finish(),
        post: options.post && config.has_capability(&Capability::AuthorizePost),
    })
}
