//! The key sets of `private_key_jwt` clients registered with a `jwks_uri` (RFC 7591
//! §2, SMART Backend Services): fetched over HTTPS and cached.
//!
//! - A fetched set is reused for [`FRESH_FOR`], so a backend service that asks for a
//!   token every minute costs one fetch every five minutes.
//! - An assertion whose `kid` is not in the cached set fetches again, because the
//!   client may have rotated its keys, but at most once every [`REFETCH_AFTER`] per
//!   URL, so a stream of unknown `kid`s cannot turn the mock into a load generator.
//! - Concurrent requests for one URL wait for one fetch.
//! - A fetch is bounded in time and size and follows no redirects. A set that cannot
//!   be fetched is an error for the caller to report (`invalid_client` at the token
//!   endpoint, `invalid_client_metadata` at registration).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{Request, header};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::JwkSet;
use url::Url;

const FRESH_FOR: Duration = Duration::from_secs(300);
const REFETCH_AFTER: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(5);
/// A JWK Set of ten RSA-4096 keys is about 8 KB.
const MAX_BYTES: usize = 64 * 1024;
/// The most keys a client's set may hold, by value or by URL.
pub(crate) const MAX_KEYS: usize = 10;
/// URLs come only from configured and registered clients (themselves capped), but
/// a registration refused after its fetch leaves an entry: sweep when this many.
const MAX_URLS: usize = 1_000;

pub(crate) struct KeySetCache {
    http: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    /// One slot per URL; its async lock is held during a fetch (single flight).
    sets: Mutex<HashMap<Url, Arc<tokio::sync::Mutex<Option<Fetched>>>>>,
}

struct Fetched {
    keys: Arc<JwkSet>,
    at: Instant,
}

/// Why a key set could not be had; the message names the URL and the cause.
#[derive(Debug, thiserror::Error)]
#[error("jwks_uri {url} {why}")]
pub(crate) struct FetchError {
    url: Url,
    why: String,
}

impl KeySetCache {
    pub(crate) fn new() -> Self {
        // TLS through rustls on aws-lc (the crypto the signing key already uses) with
        // the Mozilla roots built in, so the mock needs no system certificate store.
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("aws-lc supports the default TLS versions")
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new()).build(https);
        KeySetCache {
            http,
            sets: Mutex::default(),
        }
    }

    /// The key set at `url`, fetched again first if it is stale, or if it lacks `kid`
    /// and was not fetched in the last few seconds.
    pub(crate) async fn get(&self, url: &Url, kid: Option<&str>) -> Result<Arc<JwkSet>, FetchError> {
        let slot = self.slot(url);
        let mut entry = slot.lock().await;
        if let Some(fetched) = entry.as_ref() {
            let age = fetched.at.elapsed();
            let has_kid = kid.is_none_or(|kid| fetched.keys.find(kid).is_some());
            if age < FRESH_FOR && (has_kid || age < REFETCH_AFTER) {
                return Ok(fetched.keys.clone());
            }
        }
        let keys = Arc::new(self.fetch(url).await?);
        *entry = Some(Fetched {
            keys: keys.clone(),
            at: Instant::now(),
        });
        Ok(keys)
    }

    fn slot(&self, url: &Url) -> Arc<tokio::sync::Mutex<Option<Fetched>>> {
        let mut sets = self.sets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if sets.len() >= MAX_URLS && !sets.contains_key(url) {
            // Drop the slots nobody is using whose sets are stale or were never fetched.
            sets.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot
                        .try_lock()
                        .is_ok_and(|entry| entry.as_ref().is_some_and(|f| f.at.elapsed() < FRESH_FOR))
            });
        }
        sets.entry(url.clone()).or_default().clone()
    }

    async fn fetch(&self, url: &Url) -> Result<JwkSet, FetchError> {
        let fail = |why: String| FetchError {
            url: url.clone(),
            why,
        };
        let body = tokio::time::timeout(TIMEOUT, self.fetch_body(url))
            .await
            .map_err(|_| fail(format!("did not answer within {} s", TIMEOUT.as_secs())))?
            .map_err(fail)?;
        let keys: JwkSet =
            serde_json::from_slice(&body).map_err(|e| fail(format!("is not a JWK Set: {e}")))?;
        if keys.keys.len() > MAX_KEYS {
            return Err(fail(format!("holds more than {MAX_KEYS} keys")));
        }
        Ok(keys)
    }

    /// The body of a successful answer; redirects are not followed.
    async fn fetch_body(&self, url: &Url) -> Result<Bytes, String> {
        let request = Request::get(url.as_str())
            .header(header::ACCEPT, "application/jwk-set+json, application/json")
            .header(
                header::USER_AGENT,
                concat!("ccri-mock/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(|e| format!("is not a URL to fetch: {e}"))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| format!("could not be fetched: {}", error_chain(&e)))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!(
                "answered {status}: register the URL that serves the key set itself"
            ));
        }
        if !status.is_success() {
            return Err(format!("answered {status}"));
        }
        match Limited::new(response.into_body(), MAX_BYTES).collect().await {
            Ok(body) => Ok(body.to_bytes()),
            Err(e) if e.is::<LengthLimitError>() => Err(format!("is larger than {MAX_BYTES} bytes")),
            Err(e) => Err(format!("could not be read: {e}")),
        }
    }
}

/// The client's own message is "client error (Connect)"; the cause (refused,
/// certificate unknown) is further down the chain.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
