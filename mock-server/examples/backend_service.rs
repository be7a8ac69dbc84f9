//! CCRI's Security Quickstart, first flow, as a Rust back end writes it: the
//! pre-registered `patient-access` client gets a token by client credentials with
//! Basic authentication (the `oauth2` crate), then reads a patient with it.
//!
//!   cargo run -p ccri-mock --example backend_service -- http://127.0.0.1:8080
//!
//! The mock's tests run [`read_patient`] against an in-process server.

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, TokenResponse, TokenUrl};
use serde_json::Value;

/// The `patient-access` client's secret, as CCRI's quickstart publishes it.
const SECRET: &str = "IShTVi8mRSV7bVREuU1freiDo79y_8fLX3BBw2nf2eIpv9A_r91VlVuF2LOiK_zLZAkBQCusEXLp_o6DEIgvaQ";

/// `Patient/{id}` from the CCRI server at `origin`, read with a client-credentials token.
pub(crate) async fn read_patient(origin: &str, id: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let client = BasicClient::new(ClientId::new("patient-access".into()))
        .set_client_secret(ClientSecret::new(SECRET.into()))
        .set_auth_type(AuthType::BasicAuth)
        .set_token_uri(TokenUrl::new(format!("{origin}/ccri-auth/token"))?);
    // No redirects: an OAuth client must not follow them (RFC 6749 §3.2 says nothing
    // of them, and a token request redirected elsewhere would leak the secret).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let token = client.exchange_client_credentials().request_async(&http).await?;
    let patient = http
        .get(format!("{origin}/ccri-fhir/R4/Patient/{id}"))
        .bearer_auth(token.access_token().secret())
        .header("accept", "application/fhir+json")
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(patient)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let patient = read_patient(&origin, "1").await?;
    println!("{}", serde_json::to_string_pretty(&patient)?);
    Ok(())
}
