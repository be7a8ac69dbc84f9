//! `ccri-mock`: run the CCRI mock on localhost.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use ccri_mock::{Config, Seeded};
use clap::Parser;

// Most of a FHIR read is small allocations (bench/fhir.sh): mimalloc serves them faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A local mock of the NHS Care Connect Reference Implementation: SMART on FHIR
/// authorisation server (/ccri-auth) and FHIR R4 API (/ccri-fhir/R4).
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "CCRI_MOCK_PORT")]
    port: Option<u16>,
    /// Address to bind.
    #[arg(long, env = "CCRI_MOCK_BIND")]
    bind: Option<IpAddr>,
    /// TOML file with clients, users, token lifetimes and the key file.
    #[arg(long, env = "CCRI_MOCK_CONFIG")]
    config: Option<PathBuf>,
    /// Access token lifetime in seconds (default 5400, CCRI's 90 minutes).
    #[arg(long, env = "CCRI_MOCK_TOKEN_TTL")]
    token_ttl: Option<u64>,
    /// The origin browsers reach the server at, if not http://BIND:PORT.
    #[arg(long, env = "CCRI_MOCK_PUBLIC_URL")]
    public_url: Option<String>,
    /// Serve the FHIR JSON files (resources or Bundles, e.g. Synthea output) of this
    /// directory instead of the built-in UK data set.
    #[arg(long, env = "CCRI_MOCK_DATA")]
    data: Option<PathBuf>,
    /// Serve HTTPS, with a certificate made at start unless --tls-cert/--tls-key
    /// name one: a phone on the LAN then gets a secure context (WebCrypto).
    #[arg(long, env = "CCRI_MOCK_TLS")]
    tls: bool,
    /// PEM certificate chain for --tls.
    #[arg(long, env = "CCRI_MOCK_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls.
    #[arg(long, env = "CCRI_MOCK_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How many requests the inspector ({auth}/inspector) keeps (default 2000).
    #[arg(long, env = "CCRI_MOCK_INSPECTOR_SIZE")]
    inspector_size: Option<usize>,
    /// Keep no requests for the inspector.
    #[arg(long, conflicts_with = "inspector_size")]
    no_inspector: bool,
    /// How tokens are signed (default RS256, as CCRI).
    #[arg(long, env = "CCRI_MOCK_SIGNING_ALG", value_enum)]
    signing_alg: Option<ccri_mock::SigningAlg>,
    /// Where to keep resources and the authorisation state: memory (the default;
    /// every start begins afresh), sqlite:PATH (one file, kept across restarts) or
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE (several mocks may share it).
    // Text, parsed below, and its environment value not shown by --help: a URL may
    // hold a password, which clap's own errors would repeat.
    #[arg(long, env = "CCRI_MOCK_STORE", hide_env_values = true)]
    store: Option<String>,
    /// Empty the store at start, so it begins again from the built-in data or --data.
    #[arg(long)]
    reset: bool,
    /// With --data: skip files that fail to load (and list them) instead of stopping.
    #[arg(long, requires = "data")]
    lenient: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "ccri_mock=info,tower_http=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let mut config = match &cli.config {
        Some(path) => match Config::from_file(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("ccri-mock: {e}");
                return std::process::ExitCode::FAILURE;
            }
        },
        None => Config::default(),
    };
    config.port = cli.port.unwrap_or(config.port);
    config.bind = cli.bind.unwrap_or(config.bind);
    config.token_ttl_secs = cli.token_ttl.unwrap_or(config.token_ttl_secs);
    config.public_url = cli.public_url.or(config.public_url);
    config.signing_alg = cli.signing_alg.unwrap_or(config.signing_alg);
    config.inspector_size = match cli.no_inspector {
        true => 0,
        false => cli.inspector_size.unwrap_or(config.inspector_size),
    };
    if let Some(store) = &cli.store {
        match store.parse() {
            Ok(store) => config.store = store,
            Err(e) => {
                eprintln!("ccri-mock: --store: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    config.reset = cli.reset;
    config.tls |= cli.tls || cli.tls_cert.is_some();
    config.tls_cert = cli.tls_cert.or(config.tls_cert);
    config.tls_key = cli.tls_key.or(config.tls_key);
    config.data = cli.data.clone().map(|dir| ccri_mock::DataDir {
        dir,
        lenient: cli.lenient,
    });
    let banner = banner(&config);
    let server = match ccri_mock::spawn(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("ccri-mock: {e}");
            if matches!(e, ccri_mock::StartError::Data(_)) {
                eprintln!("ccri-mock: (--lenient skips bad files)");
            }
            return std::process::ExitCode::FAILURE;
        }
    };
    match (&server.seeded, &cli.data) {
        (Seeded::Data(loaded), Some(dir)) => {
            for error in &loaded.errors {
                eprintln!("ccri-mock: skipped {error}");
            }
            for (kind, count) in &loaded.skipped {
                eprintln!("ccri-mock: skipped {count} {kind} (not served by the mock)");
            }
            eprintln!(
                "ccri-mock: loaded {} resources from {}",
                loaded.count,
                dir.display()
            );
        }
        (Seeded::Kept, Some(dir)) => eprintln!(
            "ccri-mock: the store holds resources from before: {} not loaded (--reset loads it afresh)",
            dir.display()
        ),
        _ => {}
    }
    // The banner is for a person: when stdout is gone (`ccri-mock | head`), the
    // server keeps serving rather than panicking in println!.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", banner(&server.urls));
    if let Some(fingerprint) = &server.tls_fingerprint {
        let _ = writeln!(
            out,
            "HTTPS certificate (SHA-256 {fingerprint}):\n  download it from {} and trust it on your phone\n  (iOS: install the profile, then Settings › General › About › Certificate Trust Settings;\n  Android: Settings › Security › Encryption & credentials › Install a certificate › CA certificate).\n",
            server.urls.auth("certificate.pem")
        );
    }
    if let Err(e) = server.run_until(stop_signal()).await {
        eprintln!("ccri-mock: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

/// SIGINT (Ctrl-C) or SIGTERM (what process managers and `kill` send): both stop
/// the server gracefully, finishing the requests in flight.
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM can be handled");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("stopping: finishing requests in flight");
}

/// What a developer needs to start: the URLs, the clients and the test users.
fn banner(config: &Config) -> impl Fn(&ccri_mock::Urls) -> String + use<> {
    let clients: Vec<String> = config
        .clients
        .iter()
        .map(|c| {
            let kind = if c.is_confidential() {
                "confidential"
            } else {
                "public"
            };
            format!("  {:<18} {kind:<12} {}", c.client_id, c.scope)
        })
        .collect();
    let users: Vec<String> = config
        .users
        .iter()
        .map(|u| {
            format!(
                "  {:<18} {:<12} {} ({})",
                u.username, u.password, u.name, u.fhir_user
            )
        })
        .collect();
    let store = config.store.to_string();
    move |urls| {
        format!(
            "ccri-mock is running\n  FHIR base  {}\n  auth base  {}\n  discovery  {}/.well-known/smart-configuration\n  inspector  {}/inspector (every request your app makes)\n  store      {store}\n\nclients (secrets: see --help / config)\n{}\n\nusers (username, password)\n{}\n",
            urls.fhir_base,
            urls.auth_base,
            urls.fhir_base,
            urls.auth_base,
            clients.join("\n"),
            users.join("\n")
        )
    }
}
