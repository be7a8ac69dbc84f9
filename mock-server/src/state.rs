//! The one `State` every handler shares.

use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::auth::client_keys::KeySetCache;
use crate::auth::grants::Grants;
use crate::auth::keys::SigningKey;
use crate::auth::patients::PatientDirectory;
use crate::auth::verify::TokenCache;
use crate::config::Config;
use crate::durable::{Durable, Unavailable};
use crate::fhir::store::Store;
use crate::inspector::Inspector;

#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

pub(crate) struct Shared {
    pub config: Config,
    pub urls: Urls,
    /// Filled at start, or shortly after by the thread generating it (see `lib.rs`).
    key: Arc<OnceLock<SigningKey>>,
    grants: Mutex<Grants>,
    /// The grants' table, asked without their lock whether others wrote to it.
    durable: Durable,
    pub fhir: Store,
    pub token_cache: TokenCache,
    /// Clients' `jwks_uri` key sets.
    pub(crate) client_keys: KeySetCache,
    /// With `--tls`: the certificate, served at `{auth}/certificate.pem`.
    pub(crate) tls_certificate: Option<String>,
    pub(crate) inspector: Inspector,
}

impl AppState {
    pub(crate) fn new(
        config: Config,
        urls: Urls,
        key: Arc<OnceLock<SigningKey>>,
        fhir: Store,
        durable: Durable,
        tls_certificate: Option<String>,
    ) -> Self {
        let grants = Mutex::new(Grants::new(&config, durable.clone()));
        let inspector = Inspector::new(config.inspector_size);
        AppState(Arc::new(Shared {
            config,
            urls,
            key,
            grants,
            durable,
            fhir,
            token_cache: TokenCache::default(),
            client_keys: KeySetCache::new(),
            tls_certificate,
            inspector,
        }))
    }
}

impl Shared {
    /// The signing key; waits for it in the first moments after start.
    pub(crate) fn key(&self) -> &SigningKey {
        self.key.wait()
    }

    /// The patients the auth pages list: the FHIR store, seen only through this interface.
    pub(crate) fn patients(&self) -> &dyn PatientDirectory {
        &self.fhir
    }

    /// The authorisation state. Never held across an `.await`. If the store it
    /// shares with other mocks cannot be asked, it is as this mock last saw it
    /// (and said); what must happen once still asks the store (see `durable.rs`).
    pub(crate) fn grants(&self) -> MutexGuard<'_, Grants> {
        self.current_grants().unwrap_or_else(|error| {
            tracing::error!(%error, "cannot catch up with the shared authorisation state");
            self.locked_grants()
        })
    }

    /// The authorisation state, with every write other mocks on the database made
    /// before this call: a token revoked on one is refused by the next request any
    /// other answers. One question to the database when nothing changed, asked
    /// outside the lock.
    pub(crate) fn current_grants(&self) -> Result<MutexGuard<'_, Grants>, Unavailable> {
        let latest = self.durable.latest_change()?;
        let mut grants = self.locked_grants();
        if latest.is_some_and(|latest| latest > grants.seen()) {
            grants.catch_up()?;
        }
        Ok(grants)
    }

    fn locked_grants(&self) -> MutexGuard<'_, Grants> {
        // A panic while holding the lock leaves plain maps behind, still consistent enough
        // for a mock; keep serving rather than failing every later request.
        self.grants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The public URLs of this instance, derived once from the address browsers use.
#[derive(Clone, Debug)]
pub struct Urls {
    /// e.g. `http://127.0.0.1:8080`
    pub origin: String,
    /// `{origin}/ccri-auth`: also the `iss` of every token.
    pub auth_base: String,
    /// `{origin}/ccri-fhir/R4`: also the `aud` of every access token.
    pub fhir_base: String,
    /// The same, as every request not through a launch link sees it (shared, so
    /// a request's base costs no allocation).
    base: FhirBase,
}

impl Urls {
    pub fn new(origin: &str) -> Self {
        let origin = origin.trim_end_matches('/').to_owned();
        let fhir_base = format!("{origin}{}", crate::fhir::PATH);
        Urls {
            auth_base: format!("{origin}/ccri-auth"),
            base: FhirBase::new(&fhir_base),
            fhir_base,
            origin,
        }
    }

    /// The path of the auth base (`/ccri-auth`, or under the public URL's own path).
    pub fn auth_path(&self) -> &str {
        let after_scheme = self.auth_base.find("://").map_or(0, |i| i + 3);
        self.auth_base[after_scheme..]
            .find('/')
            .map_or("/", |i| &self.auth_base[after_scheme + i..])
    }

    pub fn auth(&self, endpoint: &str) -> String {
        format!("{}/{endpoint}", self.auth_base)
    }

    /// A launch link's FHIR base, `{fhir}/launch/<link>`: an alias of this server's
    /// that a standalone launch's app is given as its `iss`.
    pub(crate) fn link_base(&self, link: &str) -> String {
        format!("{}{LINK_PATH}{link}", self.fhir_base)
    }

    /// The link in `url` if `url` has the form of a launch link's FHIR base (whether
    /// this mock signed it is for the launcher to say).
    pub(crate) fn link_in<'a>(&self, url: &'a str) -> Option<&'a str> {
        url.trim_end_matches('/')
            .strip_prefix(self.fhir_base.as_str())?
            .strip_prefix(LINK_PATH)
    }
}

/// Where, under the FHIR base, launch links' bases are.
pub(crate) const LINK_PATH: &str = "/launch/";

/// The FHIR base a request was addressed to: this server's, or a standalone launch
/// link's alias of it (`{fhir}/launch/<link>`, see `fhir::launch_link`). The URLs
/// the FHIR API answers with (Bundle links, `fullUrl`, `Location`) stay under it,
/// or an app would refuse to follow its own paging links as leaving its base.
/// For the same reason, a token asked for through a link has the link's base as
/// its `aud` and names its `fhirUser` under it (see `Grant::fhir_base`).
#[derive(Clone, Debug)]
pub(crate) struct FhirBase(Arc<str>);

impl FhirBase {
    pub(crate) fn new(base: &str) -> Self {
        FhirBase(base.into())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromRequestParts<AppState> for FhirBase {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(match parts.extensions.get::<FhirBase>() {
            Some(alias) => alias.clone(),
            None => state.urls.base.clone(),
        })
    }
}
