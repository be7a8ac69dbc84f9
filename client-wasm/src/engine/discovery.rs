//! Where is the authorisation server? SMART App Launch 2.2 §"Conformance": ask
//! `{iss}/.well-known/smart-configuration`; servers older than SMART 2 (CCRI among
//! them) only answer `{iss}/metadata` with the `oauth-uris` extension.

use smart_protocol::{OAuthUris, SmartConfiguration};

use super::error::{Error, ErrorCode};
use super::platform::{HttpRequest, Method, Platform};

pub async fn discover<P: Platform>(platform: &P, iss: &str) -> Result<SmartConfiguration, Error<P::Json>> {
    let base = iss.trim_end_matches('/');
    let well_known = get(platform, &format!("{base}/.well-known/smart-configuration"))
        .await
        .and_then(|body| SmartConfiguration::from_json(&body).map_err(|e| e.to_string()));
    let well_known = match well_known {
        Ok(config) => return Ok(config),
        Err(reason) => reason,
    };
    let metadata = get(platform, &format!("{base}/metadata"))
        .await
        .and_then(|statement| OAuthUris::from_capability_statement(&statement).map_err(|e| e.to_string()));
    match metadata {
        Ok(uris) => Ok(uris.into_configuration()),
        Err(reason) => Err(Error::new(
            ErrorCode::DiscoveryFailed,
            format!(
                "{base} is not a SMART server: .well-known/smart-configuration: {well_known}; metadata: {reason}"
            ),
        )),
    }
}

async fn get<P: Platform>(platform: &P, url: &str) -> Result<P::Json, String> {
    let request = HttpRequest::new(Method::Get, url).header("Accept", "application/json");
    let response = platform.fetch(request).await?;
    if response.status != 200 {
        return Err(format!("HTTP {}", response.status));
    }
    response.body.ok_or_else(|| "no JSON body".to_owned())
}
