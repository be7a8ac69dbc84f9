//! What a ccri-mock instance serves: where it listens, how long tokens live, which
//! clients and users exist. Everything has a default that mirrors CCRI's published
//! quickstart, so `ccri-mock` with no file behaves like the real server's sandbox;
//! `--config file.toml` overrides any part.
//!
//! ```toml
//! token_ttl_secs = 300
//! refresh_rotation = true    # a new refresh token on each refresh (RFC 9700 §4.14.2)
//!
//! [[clients]]
//! client_id = "my-app"
//! redirect_uris = ["http://localhost:3000/callback"]
//! scope = "openid fhirUser launch/patient patient/*.rs offline_access"
//! skip_login = "bernie"      # automated tests: log this user in without a form
//! skip_auth = true           # …and consent on their behalf
//!
//! [[users]]
//! username = "bernie"
//! password = "password"
//! name = "Bernie Kanfeld"
//! fhir_user = "Patient/1"
//! ```

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::auth::keys::SigningAlg;
use crate::auth::simulate::SimulatedError;
use crate::reference::FhirReference;
use smart_protocol::discovery::GrantType;
use smart_protocol::{ClientSecret, Scopes};

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub bind: IpAddr,
    /// 0 picks a free port (what the tests do).
    pub port: u16,
    /// The origin browsers use to reach the server, when it is not `http://bind:port`
    /// (behind a proxy, say). Token `aud`/`iss` and every advertised URL derive from it.
    pub public_url: Option<String>,
    /// Access token lifetime; CCRI's quickstart says 90 minutes.
    pub token_ttl_secs: u64,
    /// Authorization code lifetime (SMART suggests at most 60 s).
    pub code_ttl_secs: u64,
    /// Refresh token lifetime.
    pub refresh_ttl_secs: u64,
    /// Issue a new refresh token on each refresh and refuse the old one; using a
    /// replaced one again revokes the grant (RFC 9700 §4.14.2).
    pub refresh_rotation: bool,
    /// Serve HTTPS (`--tls`): with `tls_cert` and `tls_key` (PEM), or a certificate
    /// generated at start.
    pub tls: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// How many requests the inspector keeps (`{auth}/inspector`); 0 turns it off.
    pub inspector_size: usize,
    /// How tokens are signed: RS256 (CCRI's, the default), PS256 or ES256.
    pub signing_alg: SigningAlg,
    /// PEM file with the signing key (RSA as PKCS#1 or PKCS#8, P-256 as PKCS#8);
    /// generated at start if absent.
    pub key_file: Option<PathBuf>,
    pub clients: Vec<ClientConfig>,
    pub users: Vec<UserConfig>,
    /// Where resources are kept: in memory (the default) or a SQLite file.
    pub store: Storage,
    /// Empty the store at start, so it begins again from the seed (`--reset`).
    #[serde(skip)]
    pub reset: bool,
    /// The FHIR resources to serve instead of the built-in data set (`--data`).
    #[serde(skip)]
    pub data: Option<crate::DataDir>,
}

/// Where the mock keeps what it knows (`--store`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Storage {
    /// Gone when the process ends: every start begins from the seed.
    #[default]
    Memory,
    /// One SQLite file, kept across restarts.
    Sqlite(PathBuf),
    /// A PostgreSQL database, which several mocks may share.
    Postgres(DatabaseUrl),
}

/// A `postgres://` URL. It may hold a password: it prints with the password
/// `[redacted]`, and only [`DatabaseUrl::expose`] gives it whole, to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(Url);

impl DatabaseUrl {
    pub(crate) fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// The same server, another database.
    #[cfg(feature = "testing")]
    pub(crate) fn of_database(&self, name: &str) -> DatabaseUrl {
        let mut url = self.0.clone();
        url.set_path(name);
        DatabaseUrl(url)
    }
}

impl std::fmt::Display for DatabaseUrl {
    /// The URL with the user's password, and any `password=` option, hidden.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const HIDDEN: &str = "redacted";
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some(HIDDEN));
        }
        let options: Vec<(String, String)> = shown
            .query_pairs()
            .map(|(name, value)| match name.as_ref() {
                "password" => (name.into_owned(), HIDDEN.to_owned()),
                _ => (name.into_owned(), value.into_owned()),
            })
            .collect();
        if !options.is_empty() {
            shown.query_pairs_mut().clear().extend_pairs(options);
        }
        let text = shown.as_str();
        f.write_str(
            &text
                .replace(&format!(":{HIDDEN}@"), ":[redacted]@")
                .replace(&format!("password={HIDDEN}"), "password=[redacted]"),
        )
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

impl std::str::FromStr for Storage {
    type Err = String;
    fn from_str(text: &str) -> Result<Storage, String> {
        match text.split_once(':') {
            _ if text == "memory" => Ok(Storage::Memory),
            Some(("sqlite", path)) if !path.is_empty() => Ok(Storage::Sqlite(path.into())),
            Some(("postgres" | "postgresql", _)) => match Url::parse(text) {
                Ok(url) if url.has_host() => Ok(Storage::Postgres(DatabaseUrl(url))),
                // The text may hold a password: the error does not repeat it.
                _ => Err(
                    "the postgres:// store is not a URL: give postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                        .into(),
                ),
            },
            // Not repeated: a mistyped URL may hold a password.
            _ => Err(
                "not a store: give memory, sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE".into(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Storage {
    fn deserialize<D: serde::Deserializer<'de>>(text: D) -> Result<Storage, D::Error> {
        String::deserialize(text)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Memory => f.write_str("memory"),
            Storage::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Storage::Postgres(url) => url.fmt(f),
        }
    }
}

/// A pre-registered OAuth client.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    /// Present for confidential clients (Basic or form-post authentication).
    #[serde(default)]
    pub client_secret: Option<ClientSecret>,
    /// …or the secret's SHA-256 in lowercase hex, so that what holds the client
    /// (a config file, a launch link) need not hold its secret.
    #[serde(default)]
    pub client_secret_sha256: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The widest set of scopes the client may be granted.
    pub scope: Scopes,
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<GrantType>,
    /// Public keys for `private_key_jwt` (SMART backend services), by value…
    #[serde(default)]
    pub jwks: Option<JwkSet>,
    /// …or where to fetch them (RFC 7591 §2: never both).
    #[serde(default)]
    pub jwks_uri: Option<Url>,
    /// Log this user in without showing the login page (automated tests).
    #[serde(default)]
    pub skip_login: Option<String>,
    /// Grant the requested scopes without showing the consent page (automated tests).
    #[serde(default)]
    pub skip_auth: bool,
    /// Make every launch of this client fail in this way (app error-handling tests).
    #[serde(default)]
    pub simulate_error: Option<SimulatedError>,
}

/// Where a `private_key_jwt` client's public keys are.
#[derive(Debug)]
pub(crate) enum ClientKeys<'a> {
    Inline(&'a JwkSet),
    /// Fetched and cached by `auth::client_keys`.
    Remote(&'a Url),
}

impl ClientConfig {
    /// A confidential client proves who it is at the token endpoint (a secret or a
    /// signed assertion); a public one only names itself.
    pub fn is_confidential(&self) -> bool {
        self.client_secret.is_some() || self.client_secret_sha256.is_some() || self.keys().is_some()
    }

    /// What the pages call the client: its registered name, or its id.
    pub(crate) fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.client_id)
    }

    pub(crate) fn keys(&self) -> Option<ClientKeys<'_>> {
        match (&self.jwks, &self.jwks_uri) {
            (Some(jwks), _) => Some(ClientKeys::Inline(jwks)),
            (None, Some(url)) => Some(ClientKeys::Remote(url)),
            (None, None) => None,
        }
    }
}

fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
}

/// A person who can log in on the mock's login page.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub username: String,
    /// Shown on the login page: these are test accounts.
    pub password: String,
    pub name: String,
    /// `Patient/…` or `Practitioner/…`: who the user is in the FHIR data.
    pub fhir_user: FhirReference,
    /// Patient ids: for a patient user, the people they may also see (a child, say);
    /// for a practitioner, the only patients they may see. Absent: a practitioner
    /// sees every patient, a patient only themselves.
    #[serde(default)]
    pub patients: Option<Vec<String>>,
}

/// Whose records a user may see, through `user/` scopes or by choosing a patient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    Everyone,
    Only(BTreeSet<String>),
}

impl Reach {
    pub fn includes(&self, patient: &str) -> bool {
        match self {
            Reach::Everyone => true,
            Reach::Only(patients) => patients.contains(patient),
        }
    }
}

impl UserConfig {
    /// A practitioner picks the patient; a patient is the patient.
    pub fn patient_id(&self) -> Option<&str> {
        self.fhir_user.patient_id()
    }

    pub fn reach(&self) -> Reach {
        let listed = self.patients.iter().flatten().cloned();
        match self.patient_id() {
            Some(own) => Reach::Only(listed.chain([own.to_owned()]).collect()),
            None if self.fhir_user.is_practitioner() && self.patients.is_none() => Reach::Everyone,
            None => Reach::Only(listed.collect()),
        }
    }
}

/// The secret CCRI publishes for `patient-access` in its quickstart, so Postman
/// collections written for CCRI work against the mock unchanged.
pub const PATIENT_ACCESS_SECRET: &str =
    "IShTVi8mRSV7bVREuU1freiDo79y_8fLX3BBw2nf2eIpv9A_r91VlVuF2LOiK_zLZAkBQCusEXLp_o6DEIgvaQ";

/// What the demo app, and a registered client whose metadata names no `scope`, may ask for.
pub(crate) const DEFAULT_SCOPE: &str = "openid fhirUser profile launch launch/patient launch/encounter \
                                        offline_access online_access patient/*.cruds user/*.cruds";

/// The public client the demo app and the quickstart use.
pub(crate) const DEMO_CLIENT_ID: &str = "demo-app";

impl Default for Config {
    fn default() -> Self {
        let confidential = |id: &str, secret: &str, scope: &str| ClientConfig {
            client_id: id.to_owned(),
            client_secret: Some(ClientSecret::new(secret)),
            client_secret_sha256: None,
            name: Some(id.to_owned()),
            redirect_uris: Vec::new(),
            scope: scope.parse().expect("built-in scopes are valid"),
            grant_types: vec![GrantType::ClientCredentials],
            jwks: None,
            jwks_uri: None,
            skip_login: None,
            skip_auth: false,
            simulate_error: None,
        };
        let clinical_types = [
            "MedicationStatement",
            "Immunization",
            "Patient",
            "Condition",
            "MedicationRequest",
            "Encounter",
            "Observation",
        ];
        let clinical_scope = std::iter::once("profile".to_owned())
            .chain(
                clinical_types
                    .iter()
                    .flat_map(|t| [format!("user/{t}.read"), format!("patient/{t}.read")]),
            )
            .collect::<Vec<_>>()
            .join(" ");
        let user = |username: &str, name: &str, fhir_user: &str| UserConfig {
            username: username.to_owned(),
            password: "password".to_owned(),
            name: name.to_owned(),
            fhir_user: fhir_user.parse().expect("built-in users are valid"),
            patients: None,
        };
        Config {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            public_url: None,
            token_ttl_secs: 90 * 60,
            code_ttl_secs: 60,
            refresh_ttl_secs: 24 * 60 * 60,
            refresh_rotation: false,
            inspector_size: 2_000,
            tls: false,
            tls_cert: None,
            tls_key: None,
            signing_alg: SigningAlg::default(),
            key_file: None,
            store: Storage::Memory,
            reset: false,
            data: None,
            clients: vec![
                confidential(
                    "patient-access",
                    PATIENT_ACCESS_SECRET,
                    "profile patient/Patient.read user/Patient.read",
                ),
                confidential("clinical-access", "clinical-access-secret", &clinical_scope),
                confidential("limited-access", "limited-access-secret", "profile"),
                confidential(
                    "medication-access",
                    "medication-access-secret",
                    "user/Patient.read user/Bundle.read user/*.read",
                ),
                ClientConfig {
                    client_id: DEMO_CLIENT_ID.to_owned(),
                    client_secret: None,
                    client_secret_sha256: None,
                    name: Some("SMART demo app".to_owned()),
                    // The demo app's pages (demo-web/), on either loopback name.
                    redirect_uris: ["127.0.0.1", "localhost"]
                        .iter()
                        .flat_map(|host| {
                            ["", "app.html", "fhirclient.html"]
                                .map(|page| format!("http://{host}:5173/{page}"))
                        })
                        .collect(),
                    scope: DEFAULT_SCOPE.parse().expect("built-in scopes are valid"),
                    grant_types: default_grant_types(),
                    jwks: None,
                    jwks_uri: None,
                    skip_login: None,
                    skip_auth: false,
                    simulate_error: None,
                },
            ],
            users: vec![
                user("bernie", "Bernie Kanfeld", "Patient/1"),
                user("dr.harrison", "Dr Jane Harrison", "Practitioner/2"),
            ],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
}

impl Config {
    /// Reads a TOML file. Settings it leaves out keep their defaults; its clients and
    /// users are added to the built-in ones (replacing any with the same id), so
    /// CCRI's `patient-access` keeps working beside your own app.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let builtin = Config::default();
        for client in builtin.clients {
            if !config.clients.iter().any(|c| c.client_id == client.client_id) {
                config.clients.push(client);
            }
        }
        for user in builtin.users {
            if config.user(&user.username).is_none() {
                config.users.push(user);
            }
        }
        Ok(config)
    }

    pub fn user(&self, username: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.username == username)
    }

    /// The user who is `fhir_user` (`Patient/1`) in the FHIR data.
    pub(crate) fn user_by_fhir_user(&self, fhir_user: &FhirReference) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.fhir_user == *fhir_user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database URL prints with no password, wherever it was given; a store
    /// that does not parse is refused without repeating what was typed.
    #[test]
    fn a_database_url_never_prints_its_password() {
        let shown = |text: &str| match text.parse::<Storage>().unwrap() {
            Storage::Postgres(url) => (url.to_string(), format!("{url:?}"), url.expose().to_owned()),
            other => panic!("{other:?}"),
        };
        let (display, debug, exposed) = shown("postgres://ccri:s3cret@db.example:5432/mock");
        assert_eq!(display, "postgres://ccri:[redacted]@db.example:5432/mock");
        assert!(!debug.contains("s3cret") && exposed.contains("s3cret"));
        let (display, _, _) = shown("postgresql://ccri@db.example/mock?password=s3cret&sslmode=disable");
        assert_eq!(
            display,
            "postgresql://ccri@db.example/mock?password=[redacted]&sslmode=disable"
        );
        for typo in [
            "postgress://ccri:s3cret@db/mock",
            "postgres:ccri:s3cret@",
            "pg://u:s3cret@h/d",
        ] {
            let refused = typo.parse::<Storage>().unwrap_err();
            assert!(!refused.contains("s3cret"), "{refused}");
        }
    }
}
