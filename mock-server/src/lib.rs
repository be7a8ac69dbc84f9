//! ccri-mock: the NHS Care Connect Reference Implementation's SMART authorisation
//! server and FHIR API, on localhost, with the same paths, so an app switches
//! between CCRI and the mock by changing only the host.
//!
//! The binary is a thin CLI over [`spawn`]; tests call [`spawn`] in-process on port 0
//! and use the URLs of the returned [`RunningServer`].

mod auth;
mod config;
mod cors;
mod durable;
mod fhir;
mod inspector;
mod lint;
mod postgres;
mod reference;
mod seed;
mod sql;
mod sqlite;
mod state;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use durable::{Durable, Kept};

// What the binary, the tests and the client's tests use; everything else is the crate's own.
pub use auth::grants::MAX_PENDING_PER_CLIENT;
pub use auth::keys::{KeyError, SigningAlg, SigningKey, TokenKind};
pub use config::{ClientConfig, Config, ConfigError, PATIENT_ACCESS_SECRET, Storage, UserConfig};
pub use fhir::store::Record;
pub use seed::{DataDir, LoadError, Loaded, load_dir};
use state::AppState;
pub use state::Urls;

/// Largest request body accepted by the authorisation endpoints.
const AUTH_BODY_LIMIT: usize = 64 * 1024;

/// A started server. Dropping it leaves the server running; call [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    pub addr: SocketAddr,
    pub urls: Urls,
    /// With `--tls`: the server's certificate (PEM), which a test or a phone trusts.
    pub tls_certificate: Option<String>,
    /// …and its SHA-256 fingerprint, as browsers show it.
    pub tls_fingerprint: Option<String>,
    /// What the store started with.
    pub seeded: Seeded,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }

    /// Serves until `signal` resolves, then stops as [`RunningServer::shutdown`] does,
    /// giving requests in flight [`DRAIN_TIMEOUT`] to finish. Returns early only on
    /// an I/O error.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> std::io::Result<()> {
        let RunningServer {
            shutdown, mut task, ..
        } = self;
        let joined = |result: Result<std::io::Result<()>, tokio::task::JoinError>| {
            result.unwrap_or_else(|e| Err(std::io::Error::other(e)))
        };
        tokio::select! {
            result = &mut task => return joined(result),
            () = signal => {}
        }
        let _ = shutdown.send(());
        match tokio::time::timeout(DRAIN_TIMEOUT, task).await {
            Ok(result) => joined(result),
            Err(_) => {
                tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
                Ok(())
            }
        }
    }
}

/// What a server's store started with.
#[derive(Debug)]
pub enum Seeded {
    /// The built-in UK data set.
    BuiltIn,
    /// `--data`, and what loading it said.
    Data(Loaded),
    /// What the store's file held from before (`--data` not loaded: `--reset` would).
    Kept,
}

/// How long a stopping server waits for requests in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often expired grants, codes and authorizations are dropped.
const PURGE_INTERVAL: Duration = Duration::from_secs(5);

/// Drops expired authorisation state every [`PURGE_INTERVAL`], for as long as the
/// server runs (mini-redis's background purge, on a timer).
async fn purge_expired(state: AppState) -> Infallible {
    let mut ticks = tokio::time::interval(PURGE_INTERVAL);
    loop {
        ticks.tick().await;
        state.grants().prune(auth::claims::now());
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("client {client}: {why}")]
    Client { client: String, why: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("{0}")]
    Store(String),
    /// A bad file in `--data` (without `lenient`): nothing of it was kept.
    #[error(transparent)]
    Data(LoadError),
    #[error("--tls-cert and --tls-key go together")]
    TlsFiles,
}

/// Binds and starts serving in the background. The signing key is read from
/// `key_file`, or the one the store kept, or generated: for a store that keeps it,
/// before anything else writes to the store (loading `--data` holds the file for
/// its whole length); in memory, on a thread of its own so the server answers at
/// once (the few requests that sign or verify in the first moments wait for it).
pub async fn spawn(config: Config) -> Result<RunningServer, StartError> {
    let durable = Durable::open(&config.store).map_err(StartError::Store)?;
    let slot = Arc::new(OnceLock::new());
    let alg = config.signing_alg;
    // With --reset the kept key does not count; a new one is kept once the store
    // has been filled afresh (see `start`).
    let kept = match config.reset {
        true => None,
        false => durable
            .one::<String>(Kept::SigningKey, alg.name())
            .map_err(|e| StartError::Store(e.to_string()))?,
    };
    match (&config.key_file, kept) {
        (Some(path), _) => {
            let _ = slot.set(SigningKey::from_pem_file(path, alg)?);
        }
        (None, Some(kept)) => {
            let der = URL_SAFE_NO_PAD.decode(kept).unwrap_or_default();
            let _ = slot.set(SigningKey::from_pkcs8(alg, &der)?);
        }
        (None, None) if durable.keeps() => {
            let key = SigningKey::generate(alg)?;
            let key = match config.reset {
                true => key,
                false => keep_key(&durable, key)?,
            };
            let _ = slot.set(key);
        }
        (None, None) => {
            let slot = slot.clone();
            std::thread::spawn(move || match SigningKey::generate(alg) {
                Ok(key) => {
                    let _ = slot.set(key);
                }
                Err(error) => {
                    // Only a broken OS random source gets here; nothing could be signed.
                    tracing::error!(%error, "cannot generate the signing key");
                    std::process::abort();
                }
            });
        }
    }
    start(config, slot, durable).await
}

/// Keeps `key` in the store, so that the tokens it signs verify after a restart,
/// unless another mock on the database kept one a moment before: then that one
/// is the key, so every mock signs and verifies alike.
fn keep_key(durable: &Durable, key: SigningKey) -> Result<SigningKey, StartError> {
    let unavailable = |e: durable::Unavailable| StartError::Store(e.to_string());
    let alg = key.alg();
    let Some(der) = key.to_pkcs8() else {
        return Ok(key);
    };
    let der = URL_SAFE_NO_PAD.encode(der);
    if durable
        .keep_first(Kept::SigningKey, alg.name(), &der, u64::MAX)
        .map_err(unavailable)?
    {
        return Ok(key);
    }
    let kept = durable
        .one::<String>(Kept::SigningKey, alg.name())
        .map_err(unavailable)?
        .unwrap_or_default();
    let der = URL_SAFE_NO_PAD.decode(kept).unwrap_or_default();
    Ok(SigningKey::from_pkcs8(alg, &der)?)
}

fn check_configured_client(client: &ClientConfig) -> Result<(), String> {
    for uri in &client.redirect_uris {
        auth::uri::check_redirect_uri(uri, !client.is_confidential())
            .map_err(|why| format!("redirect URI {uri} {why}"))?;
    }
    if let Some(url) = &client.jwks_uri {
        if client.jwks.is_some() {
            return Err("give jwks or jwks_uri, not both".into());
        }
        auth::uri::check_jwks_uri(url.as_str()).map_err(|why| format!("jwks_uri {url} {why}"))?;
    }
    Ok(())
}

async fn start(
    mut config: Config,
    key: Arc<OnceLock<SigningKey>>,
    durable: Durable,
) -> Result<RunningServer, StartError> {
    // Configured clients pass the same rules as registered ones.
    for client in &config.clients {
        check_configured_client(client).map_err(|why| StartError::Client {
            client: client.client_id.clone(),
            why,
        })?;
    }
    let addr_text = format!("{}:{}", config.bind, config.port);
    let bind_error = |source| StartError::Bind {
        addr: addr_text.clone(),
        source,
    };
    let listener = tokio::net::TcpListener::bind((config.bind, config.port))
        .await
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let tls = tls_of(&config, addr)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let origin = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let urls = Urls::new(&origin);
    let data = config.data.take();
    let (storage, reset) = (config.store.clone(), config.reset);
    // Opening a file and filling it from the seed blocks; the runtime's threads stay free.
    let (store, seeded) = tokio::task::spawn_blocking(move || {
        fhir::store::Store::open(&storage, reset, |take| match &data {
            Some(data) => seed::stream_dir(data, take).map(Seeded::Data),
            None => {
                take(seed::builtin());
                Ok(Seeded::BuiltIn)
            }
        })
    })
    .await
    .map_err(|e| StartError::Store(e.to_string()))?
    .map_err(|e| match e {
        fhir::store::StoreError::Data(bad) => StartError::Data(bad),
        other => StartError::Store(other.to_string()),
    })?;
    // The store was filled afresh: only now is what the file kept forgotten.
    if config.reset {
        durable.forget_everything().map_err(StartError::Store)?;
        if config.key_file.is_none()
            && let Some(made) = key.get()
        {
            // Kept afresh; none was kept a moment ago but by a mock started
            // meanwhile, which would serve another key until restarted.
            let der = made.to_pkcs8().map(|der| URL_SAFE_NO_PAD.encode(der));
            if let Some(der) = der {
                durable
                    .keep(Kept::SigningKey, made.alg().name(), &der, u64::MAX)
                    .map_err(|e| StartError::Store(e.to_string()))?;
            }
        }
    }
    let certificate = tls.as_ref().map(|tls| tls.certificate_pem.clone());
    let fingerprint = tls.as_ref().map(|tls| tls.fingerprint.clone());
    let state = AppState::new(config, urls.clone(), key, store, durable, certificate.clone());
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopping = state.clone();
    let stopped = async move {
        let _ = stopped.await;
        // Pages following the inspector live would otherwise hold the server open.
        stopping.inspector.close();
    };
    let task = match &tls {
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, tls).map_err(bind_error)?;
            tokio::spawn(serve(listener, state, stopped))
        }
        None => tokio::spawn(serve(listener, state, stopped)),
    };
    Ok(RunningServer {
        addr,
        urls,
        seeded: seeded.unwrap_or(Seeded::Kept),
        tls_certificate: certificate,
        tls_fingerprint: fingerprint,
        shutdown,
        task,
    })
}

/// Serves `state` on `listener` (plain or TLS) until `stopped`, purging expired
/// grants meanwhile.
async fn serve<L>(
    listener: L,
    state: AppState,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    // Layers that every request passes are wrapped around the router once: one laid
    // on a `Router` wraps each of its routes, a boxed service more per request.
    let app = tower::ServiceBuilder::new()
        // CORS outermost, so a browser app can read every error, a bad link's too.
        .layer(cors::CorsLayer)
        // Before routing: a launch link's FHIR base becomes this server's own.
        .map_request({
            let state = state.clone();
            move |request| fhir::launch_link::rewrite(&state, request)
        })
        .layer(inspector::RecordLayer(state.clone()))
        // The FHIR API's; the auth endpoints limit theirs lower, a Bundle raises its own.
        .layer(DefaultBodyLimit::max(fhir::BODY_LIMIT))
        .service(app(state.clone()));
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
    let serve = axum::serve(listener, app).with_graceful_shutdown(stopped);
    tokio::select! {
        result = serve => result,
        never = purge_expired(state) => match never {},
    }
}

/// The TLS settings `config` asks for: its files, or a certificate made for the
/// names a browser may use to reach `addr`.
fn tls_of(config: &Config, addr: SocketAddr) -> Result<Option<tls::Tls>, StartError> {
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => return Ok(Some(tls::Tls::load(cert, key)?)),
        (None, None) => {}
        _ => return Err(StartError::TlsFiles),
    }
    if !config.tls {
        return Ok(None);
    }
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if !addr.ip().is_unspecified() {
        names.push(addr.ip().to_string());
    }
    let public_host = config
        .public_url
        .as_deref()
        .and_then(|url| url::Url::parse(url).ok())
        .and_then(|url| url.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()));
    names.extend(public_host);
    // Not `dedup`: the bind address or the public host may repeat any earlier name.
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| seen.insert(name.clone()));
    Ok(Some(tls::Tls::generate(names)?))
}

/// The routes: `/ccri-auth/…` and `/ccri-fhir/R4/…`.
fn app(state: AppState) -> Router {
    // No page of the auth server may be framed (clickjacking of login and consent);
    // the launcher sets its own, looser policy, which these layers leave alone.
    let auth = auth::router()
        .layer(RequestBodyLimitLayer::new(AUTH_BODY_LIMIT))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ));
    let router = Router::new()
        .nest("/ccri-auth", auth.merge(inspector::router()))
        .merge(fhir::router());
    // A span per request costs a quarter of a FHIR read's throughput (bench/fhir.sh),
    // so request logs are only collected when asked for: RUST_LOG=tower_http=debug.
    let router = if tracing::enabled!(target: "tower_http", tracing::Level::DEBUG) {
        router.layer(TraceLayer::new_for_http())
    } else {
        router
    };
    router.with_state(state)
}
