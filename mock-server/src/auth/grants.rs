//! Everything the authorisation server remembers between requests: registered
//! clients, authorizations in progress, codes, refresh tokens, revocations, EHR
//! launches and used assertion ids, behind one small API.
//!
//! A [`Grant`] is one decision of a user (or, for client credentials, of the
//! configuration) to give a client some scopes in some launch context. Every token
//! carries its grant's id, so revoking a grant — after a replayed code, or when its
//! refresh token is revoked — stops every token issued from it at once.
//!
//! Every entry has a wall-clock expiry (seconds since the epoch, as in the JWTs; an
//! entry is live while `now < expires_at`, a revocation is kept through its `exp`) and
//! [`Grants::prune`], run in the background by `lib.rs`, drops what has expired, so
//! a long-running mock holds only what is still live. Anonymous callers can add
//! entries, so each kind is also capped.

use crate::reference::FhirReference;
use std::collections::HashMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use smart_protocol::{ClientMetadata, LaunchContext, Scopes};

use super::claims::now;
use super::flow::{Authorization, Browser};
use super::simulate::SimulatedError;
use crate::config::{ClientConfig, Config};
use crate::durable::{Change, Durable, Kept, Unavailable};

/// Authorizations one client may have waiting for a person; past it the oldest goes.
pub const MAX_PENDING_PER_CLIENT: usize = 100;
/// Clients that registration may add (the configured ones do not count).
pub(crate) const MAX_REGISTERED_CLIENTS: usize = 10_000;
/// How long a launch id from the launcher waits for the app's `/authorize`.
const LAUNCH_TTL: Duration = Duration::from_secs(5 * 60);
/// How long a browser's login is remembered for `prompt=none`.
const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// Browser logins remembered at once; past it the oldest is forgotten.
const MAX_SESSIONS: usize = 10_000;

/// A decision to give `client_id` some scopes, for `user` in `context`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Grant {
    pub id: String,
    pub client_id: String,
    pub scopes: Scopes,
    /// `Patient/1` or `Practitioner/2`; absent for client credentials.
    pub fhir_user: Option<FhirReference>,
    /// When the user logged in; absent for client credentials.
    pub auth_time: Option<u64>,
    #[serde(with = "launch_context")]
    pub context: LaunchContext,
    pub simulate: Option<SimulatedError>,
    /// The FHIR base the app asked for (`aud`): the server's, or a launch link's
    /// alias of it. Its tokens' `aud` and `fhirUser` are under it, so an app can
    /// read its user where it reads everything else.
    pub fhir_base: String,
}

/// An authorization code waiting to be exchanged (RFC 6749 §4.1.2, RFC 7636 §4.4).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Code {
    pub(crate) grant: Grant,
    pub(crate) redirect_uri: String,
    /// Absent when the launch let the app choose and it sent none.
    pub(crate) code_challenge: Option<String>,
    /// The authorize request's `nonce`, for the first id_token only.
    pub(crate) nonce: Option<String>,
}

/// Why a refresh token was not rotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotRotated {
    /// It was replaced already (by another mock a moment ago): its grant is revoked.
    Replaced,
    /// The store could not say.
    Unavailable,
}

/// What a redeemed code gives: its grant and the request's `nonce`.
#[derive(Debug)]
pub(crate) struct Redeemed {
    pub(crate) grant: Grant,
    pub(crate) nonce: Option<String>,
}

/// A browser's login, with the consents given in it (for `prompt=none`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Session {
    pub(crate) username: String,
    pub(crate) auth_time: u64,
    /// Scopes allowed to each client.
    consents: HashMap<String, Scopes>,
}

impl Session {
    pub(crate) fn has_consented(&self, client_id: &str, scopes: &Scopes) -> bool {
        self.consents
            .get(client_id)
            .is_some_and(|allowed| scopes.is_within(allowed))
    }
}

/// Why a code exchange is refused (each an `invalid_grant`, RFC 6749 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CodeRefused {
    #[error("unknown authorization code")]
    Unknown,
    #[error("authorization code expired")]
    Expired,
    #[error("authorization code already used; tokens issued from it are revoked")]
    Reused,
    #[error("the code was issued to another client")]
    OtherClient,
    #[error("redirect_uri differs from the one sent to /authorize")]
    RedirectUriDiffers,
    #[error("code_verifier is required: the authorization request had a code_challenge (RFC 7636 §4.5)")]
    VerifierMissing,
    #[error(
        "code_verifier sent, but the authorization request had no code_challenge: \
         refused as a PKCE downgrade (RFC 9700 §2.1.1)"
    )]
    UnexpectedVerifier,
    #[error("code_verifier does not match the code_challenge (S256)")]
    VerifierMismatch,
    /// Not a refusal of the code: the store could not say whether it was used.
    #[error("the store is unavailable; the code is still unused, try again")]
    Unavailable,
}

/// What a code exchange must present besides the code.
pub(crate) struct Redemption<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) redirect_uri: &'a str,
    /// BASE64URL(SHA256(code_verifier)), if a verifier was sent.
    pub(crate) challenge: Option<&'a str>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RefreshGrant {
    pub grant: Grant,
    pub expires_at: u64,
    /// When this grant's latest access token was issued (a refresh soon after it
    /// is a storm the inspector points out).
    pub last_issued: u64,
    /// Whether the app ever refreshed with it (one that never does asked
    /// `offline_access` for nothing, which the inspector points out too).
    pub refreshed: bool,
}

/// Which apps may continue a launch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LaunchFor {
    /// One registered client.
    Client(String),
    /// Any app opened on this origin (a launch link made for no registration): the
    /// mock adopts the `client_id` it presents, as [`LinkClient`] says.
    AnyAppOn { origin: String, client: LinkClient },
}

impl LaunchFor {
    /// Whether the client `client_id` may continue the launch (an adopted app is a
    /// client by then).
    pub(crate) fn admits(&self, client_id: &str) -> bool {
        match self {
            LaunchFor::Client(bound) => bound == client_id,
            LaunchFor::AnyAppOn { .. } => true,
        }
    }
}

/// How an app with no registration authenticates, as its launch link chose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LinkClient {
    Public,
    /// Confidential, with a secret (Basic or form-post) of this SHA-256 (hex).
    Secret(String),
    /// Confidential, signing assertions with a key of the set at this URL.
    Keys(url::Url),
}

/// Whether an app must use PKCE with S256, as SMART 2 requires, or may choose: the
/// launcher's setting for testing an app's own PKCE (sent or not, and checked when
/// sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Pkce {
    Required,
    AppChooses,
}

/// A launch a developer set up on the launcher page: an EHR launch, or the
/// standalone launch a launch link's FHIR base reproduces.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Launch {
    /// The apps whose `/authorize` may continue it.
    pub for_client: LaunchFor,
    #[serde(with = "launch_context")]
    pub context: LaunchContext,
    /// The practitioner the EHR has logged in: no login page in an EHR launch.
    pub fhir_user: Option<FhirReference>,
    pub skip_auth: bool,
    pub simulate: Option<SimulatedError>,
    pub pkce: Pkce,
}

/// An entry and when it stops counting.
#[derive(Debug)]
struct Expiring<T> {
    value: T,
    expires_at: u64,
}

/// A code: while unused it can be redeemed; once used, a second try revokes its grant.
#[derive(Debug)]
enum CodeState {
    Unused(Box<Code>),
    Used { grant_id: String },
}

/// A dynamically registered client's management credentials and metadata.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Registration {
    /// RFC 7592's registration access token. Kept as issued: a read or an update
    /// answers with it again.
    pub(crate) access_token: String,
    /// The metadata as registered (normalised), which a read returns.
    pub(crate) metadata: ClientMetadata,
    pub(crate) issued_at: u64,
}

pub(crate) struct Grants {
    clients: HashMap<String, ClientConfig>,
    /// Configured client ids, sorted, for the clients page.
    configured: Vec<String>,
    /// Registration order of the clients `register` added, for the clients page.
    registered: Vec<String>,
    /// What RFC 7592 management needs of each registered client.
    registrations: HashMap<String, Registration>,
    codes: HashMap<String, Expiring<CodeState>>,
    /// By the token's SHA-256 (see [`TokenKey`]).
    refresh_tokens: HashMap<TokenKey, RefreshGrant>,
    /// Refresh tokens replaced by rotation: token → (grant id, when it would have expired).
    replaced_refresh_tokens: HashMap<TokenKey, (String, u64)>,
    revoked_grants: HashMap<String, u64>,
    revoked_tokens: HashMap<String, u64>,
    /// Authorizations waiting for a person (login, picker, consent), by `txn`,
    /// with when each was last held (a count), so the least recent goes first.
    pending: HashMap<String, (u64, Authorization)>,
    holds: u64,
    launches: HashMap<String, Expiring<Launch>>,
    /// `client:jti` of client assertions already used (private_key_jwt replay).
    assertion_ids: HashMap<String, u64>,
    sessions: HashMap<Browser, Expiring<Session>>,
    code_ttl: u64,
    refresh_ttl: u64,
    token_ttl: u64,
    /// Where every entry outlives the process, and other mocks on one database
    /// share them.
    durable: Durable,
    /// The number of the store's last write this grant store has taken in.
    seen: u64,
}

/// A refresh token as the grant store knows it: its SHA-256, in hex. The store's
/// file then holds no refresh token a thief could present. (Registration access
/// tokens and registered clients' secrets are kept as issued: RFC 7592 reads
/// answer with them again.)
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TokenKey(String);

impl TokenKey {
    fn of(token: &str) -> TokenKey {
        TokenKey(format!("{:x}", Sha256::digest(token.as_bytes())))
    }
}

/// A registered or adopted client as kept: with when it came, for the clients
/// page's order.
#[derive(Serialize, Deserialize)]
struct KeptClient {
    client: ClientConfig,
    since: u64,
}

/// `LaunchContext` is written as a token response carries it, and read back so.
mod launch_context {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use smart_protocol::LaunchContext;

    pub(super) fn serialize<S: Serializer>(context: &LaunchContext, to: S) -> Result<S::Ok, S::Error> {
        context.serialize(to)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<LaunchContext, D::Error> {
        LaunchContext::from_json(&serde_json::Value::deserialize(from)?).map_err(serde::de::Error::custom)
    }
}

impl Grants {
    /// The grant store of `config`, with what `durable` kept from before.
    pub(crate) fn new(config: &Config, durable: Durable) -> Self {
        let mut grants = Grants {
            clients: config
                .clients
                .iter()
                .map(|c| (c.client_id.clone(), c.clone()))
                .collect(),
            configured: {
                let mut ids: Vec<String> = config.clients.iter().map(|c| c.client_id.clone()).collect();
                ids.sort();
                ids.dedup();
                ids
            },
            registered: Vec::new(),
            registrations: HashMap::new(),
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            replaced_refresh_tokens: HashMap::new(),
            revoked_grants: HashMap::new(),
            revoked_tokens: HashMap::new(),
            pending: HashMap::new(),
            holds: 0,
            launches: HashMap::new(),
            assertion_ids: HashMap::new(),
            sessions: HashMap::new(),
            code_ttl: config.code_ttl_secs,
            refresh_ttl: config.refresh_ttl_secs,
            token_ttl: config.token_ttl_secs,
            durable,
            seen: 0,
        };
        if let Err(error) = grants.catch_up() {
            tracing::error!(%error, "cannot read the kept authorisation state");
        }
        grants
    }

    /// Takes in what the store's other writers did since this grant store last
    /// looked (at start: everything kept before a restart). See `durable.rs`.
    pub(crate) fn catch_up(&mut self) -> Result<(), Unavailable> {
        let (latest, changes) = self.durable.changes_since(self.seen, now())?;
        for change in changes {
            self.seen = self.seen.max(change.changed);
            let (kind, key) = (change.kind, change.key.clone());
            // One kept by another version of the mock may no longer read: skipped.
            if let Err(error) = self.apply(change) {
                tracing::warn!(?kind, key, %error, "a kept entry no longer reads; skipped");
            }
        }
        // Past what expired unseen too, or it would be asked for again each time.
        self.seen = self.seen.max(latest);
        Ok(())
    }

    /// The number of the store's last write taken in.
    pub(crate) fn seen(&self) -> u64 {
        self.seen
    }

    /// One write of the store, into the maps. A configured client keeps its
    /// configuration: a kept client of the same id is not read.
    fn apply(
        &mut self,
        Change {
            kind,
            key,
            value,
            expires_at,
            ..
        }: Change,
    ) -> Result<(), serde_json::Error> {
        fn read<T: DeserializeOwned>(value: Option<&str>) -> Result<Option<T>, serde_json::Error> {
            value.map(serde_json::from_str).transpose()
        }
        let value = value.as_deref();
        let expiring = |value| Expiring { value, expires_at };
        match kind {
            Kept::SigningKey => {}
            Kept::Client | Kept::Registration if self.configured.binary_search(&key).is_ok() => {}
            Kept::Client => match read::<KeptClient>(value)? {
                Some(kept) => {
                    if !self.clients.contains_key(&key) {
                        self.registered.push(key.clone());
                    }
                    self.clients.insert(key, kept.client);
                }
                None => {
                    self.registered.retain(|id| *id != key);
                    self.clients.remove(&key);
                }
            },
            Kept::Registration => set(&mut self.registrations, key, read(value)?),
            Kept::Code => set(
                &mut self.codes,
                key,
                read(value)?.map(|code| expiring(CodeState::Unused(Box::new(code)))),
            ),
            Kept::UsedCode => set(
                &mut self.codes,
                key,
                read(value)?.map(|grant_id| expiring(CodeState::Used { grant_id })),
            ),
            Kept::Pending => {
                self.holds += 1;
                let held = read(value)?.map(|authorization| (self.holds, authorization));
                set(&mut self.pending, key, held);
            }
            Kept::Session => set(
                &mut self.sessions,
                Browser::kept(key),
                read(value)?.map(|session| Expiring {
                    value: session,
                    expires_at,
                }),
            ),
            Kept::Launch => set(
                &mut self.launches,
                key,
                read(value)?.map(|launch| Expiring {
                    value: launch,
                    expires_at,
                }),
            ),
            Kept::RefreshToken => set(&mut self.refresh_tokens, TokenKey(key), read(value)?),
            Kept::ReplacedRefreshToken => set(&mut self.replaced_refresh_tokens, TokenKey(key), read(value)?),
            Kept::RevokedGrant => set(&mut self.revoked_grants, key, read(value)?),
            Kept::RevokedToken => set(&mut self.revoked_tokens, key, read(value)?),
            Kept::AssertionId => set(&mut self.assertion_ids, key, read(value)?),
        }
        Ok(())
    }

    /// Writes an entry through to the store. A failed write leaves the running
    /// server as it is (its maps have the entry); it is logged.
    fn keep(&self, kind: Kept, key: &str, value: &impl Serialize, expires_at: u64) {
        if let Err(error) = self.durable.keep(kind, key, value, expires_at) {
            tracing::error!(?kind, %error, "cannot keep the authorisation state in the store");
        }
    }

    /// Forgets an entry in the store; whether this took it (see [`Durable::take`]).
    fn take_kept(&self, kind: Kept, key: &str) -> Result<bool, Unavailable> {
        self.durable.take(kind, key, now())
    }

    /// [`Self::take_kept`] where only the store's copy is at stake (the entry is
    /// dropped here anyway): a failure is logged.
    fn forget_kept(&self, kind: Kept, key: &str) {
        if let Err(error) = self.take_kept(kind, key) {
            tracing::error!(?kind, %error, "cannot forget the authorisation state in the store");
        }
    }

    fn keep_client(&self, client: &ClientConfig) {
        let kept = KeptClient {
            client: client.clone(),
            since: now(),
        };
        self.keep(Kept::Client, &client.client_id, &kept, u64::MAX);
    }

    fn keep_refresh_token(&self, key: &TokenKey, refresh: &RefreshGrant) {
        self.keep(Kept::RefreshToken, &key.0, refresh, refresh.expires_at);
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.get(client_id)
    }

    /// Every client, configured ones first, then registered ones newest first.
    pub(crate) fn clients(&self) -> impl Iterator<Item = &ClientConfig> {
        self.configured
            .iter()
            .chain(self.registered.iter().rev())
            .filter_map(|id| self.clients.get(id))
    }

    pub(crate) fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Adds a registered client, unless registration is full.
    pub(crate) fn register(
        &mut self,
        client: ClientConfig,
        registration: Registration,
    ) -> Result<(), &'static str> {
        if self.registered.len() >= MAX_REGISTERED_CLIENTS {
            return Err("this mock holds at most 10,000 registered clients: restart it to start afresh");
        }
        self.keep_client(&client);
        self.keep(Kept::Registration, &client.client_id, &registration, u64::MAX);
        self.registered.push(client.client_id.clone());
        self.registrations.insert(client.client_id.clone(), registration);
        self.clients.insert(client.client_id.clone(), client);
        Ok(())
    }

    /// A registered client and its registration, if `access_token` is its
    /// registration access token (RFC 7592 §2). Configured clients have none.
    pub(crate) fn managed(
        &self,
        client_id: &str,
        access_token: &str,
    ) -> Option<(&ClientConfig, &Registration)> {
        let registration = self.registrations.get(client_id)?;
        let matches = super::client_auth::constant_time_eq(
            registration.access_token.as_bytes(),
            access_token.as_bytes(),
        );
        Some((self.clients.get(client_id)?, registration)).filter(|_| matches)
    }

    pub(crate) fn registration_of(&self, client_id: &str) -> Option<&Registration> {
        self.registrations.get(client_id)
    }

    /// Replaces a registered client's settings and metadata (RFC 7592 §2.2).
    pub(crate) fn update_registration(&mut self, client: ClientConfig, metadata: ClientMetadata) {
        if let Some(registration) = self.registrations.get_mut(&client.client_id) {
            registration.metadata = metadata;
            let registration = &*registration;
            // Not over a client another mock deleted a moment ago.
            if !replaced(
                &self.durable,
                Kept::Registration,
                &client.client_id,
                registration,
                u64::MAX,
            ) {
                return;
            }
            self.keep_client(&client);
            self.clients.insert(client.client_id.clone(), client);
        }
    }

    /// Deletes a registered client (RFC 7592 §2.3). Its tokens die with it: access
    /// tokens fail [`Grants::is_revoked`], refresh tokens name an unknown client.
    pub(crate) fn unregister(&mut self, client_id: &str) {
        if self.registrations.remove(client_id).is_some() {
            self.forget_kept(Kept::Registration, client_id);
            self.forget_kept(Kept::Client, client_id);
            self.clients.remove(client_id);
            self.registered.retain(|id| id != client_id);
            let waiting: Vec<String> = self
                .pending
                .iter()
                .filter(|(_, (_, a))| a.client.client_id == client_id)
                .map(|(txn, _)| txn.clone())
                .collect();
            for txn in waiting {
                self.pending.remove(&txn);
                self.forget_kept(Kept::Pending, &txn);
            }
            self.drop_refresh_tokens(|r| r.grant.client_id == client_id);
        }
    }

    /// Keeps `authorization` under `txn`. A client past its cap loses the one it
    /// touched least recently.
    pub(crate) fn hold(&mut self, txn: String, authorization: Authorization) {
        let client_id = &authorization.client.client_id;
        let mine = || {
            self.pending
                .iter()
                .filter(|(key, (_, a))| &a.client.client_id == client_id && **key != txn)
        };
        if mine().count() >= MAX_PENDING_PER_CLIENT
            && let Some(oldest) = mine().min_by_key(|(_, (held, _))| *held).map(|(k, _)| k.clone())
        {
            self.pending.remove(&oldest);
            self.forget_kept(Kept::Pending, &oldest);
        }
        self.keep(Kept::Pending, &txn, &authorization, authorization.expires_at);
        self.holds += 1;
        self.pending.insert(txn, (self.holds, authorization));
    }

    /// Removes and returns a live authorization, once (also across mocks on one
    /// database).
    pub(crate) fn take(&mut self, txn: &str) -> Option<Authorization> {
        let (_, authorization) = self.pending.remove(txn)?;
        // A store that cannot answer leaves the authorization unfinished: its page
        // says it expired, and the app starts again.
        let once = self.take_kept(Kept::Pending, txn).unwrap_or_else(|error| {
            tracing::error!(%error, "cannot take an authorization from the store");
            false
        });
        Some(authorization).filter(|a| once && now() < a.expires_at)
    }

    /// Stores `code` (made by the caller, who needed it for the redirect first).
    pub(crate) fn store_code(&mut self, code: String, entry: Code) {
        let expires_at = now() + self.code_ttl;
        self.keep(Kept::Code, &code, &entry, expires_at);
        self.codes.insert(
            code,
            Expiring {
                value: CodeState::Unused(Box::new(entry)),
                expires_at,
            },
        );
    }

    /// Exchanges `code` for its grant. Only a redemption by the right client, with
    /// the same redirect_uri and the right PKCE verifier, uses the code up; a code
    /// presented again after that revokes its grant (RFC 6749 §4.1.2).
    pub(crate) fn redeem_code(&mut self, code: &str, by: &Redemption<'_>) -> Result<Redeemed, CodeRefused> {
        let Some(entry) = self.codes.get(code) else {
            return Err(CodeRefused::Unknown);
        };
        if now() >= entry.expires_at {
            return Err(CodeRefused::Expired);
        }
        let expires_at = entry.expires_at;
        let issued = match &entry.value {
            CodeState::Used { grant_id } => {
                let grant_id = grant_id.clone();
                self.revoke_replayed(&grant_id);
                return Err(CodeRefused::Reused);
            }
            CodeState::Unused(issued) => issued,
        };
        if issued.grant.client_id != by.client_id {
            return Err(CodeRefused::OtherClient);
        }
        if issued.redirect_uri != by.redirect_uri {
            return Err(CodeRefused::RedirectUriDiffers);
        }
        match (issued.code_challenge.as_deref(), by.challenge) {
            (Some(sent), Some(proved)) if sent != proved => return Err(CodeRefused::VerifierMismatch),
            (Some(_), None) => return Err(CodeRefused::VerifierMissing),
            (None, Some(_)) => return Err(CodeRefused::UnexpectedVerifier),
            _ => {}
        }
        let grant_id = issued.grant.id.clone();
        // Another mock on the database may have redeemed it a moment ago: then
        // this is the second use. Used up and marked used in one transaction.
        let first = self
            .durable
            .take_then(
                Kept::Code,
                code,
                now(),
                Some((Kept::UsedCode, code, &grant_id, expires_at)),
            )
            .map_err(|_| CodeRefused::Unavailable)?;
        let used = Expiring {
            value: CodeState::Used {
                grant_id: grant_id.clone(),
            },
            expires_at,
        };
        match self.codes.insert(code.to_owned(), used) {
            Some(Expiring {
                value: CodeState::Unused(issued),
                ..
            }) if first => Ok(Redeemed {
                grant: issued.grant,
                nonce: issued.nonce,
            }),
            _ => {
                self.revoke_replayed(&grant_id);
                Err(CodeRefused::Reused)
            }
        }
    }

    pub(crate) fn issue_refresh_token(&mut self, grant: Grant) -> String {
        let token = random_token();
        let issued = now();
        let refresh = RefreshGrant {
            grant,
            expires_at: issued + self.refresh_ttl,
            last_issued: issued,
            refreshed: false,
        };
        let key = TokenKey::of(&token);
        self.keep_refresh_token(&key, &refresh);
        self.refresh_tokens.insert(key, refresh);
        token
    }

    /// Notes that an access token was issued from refresh token `token` at `at`.
    pub(crate) fn note_refreshed(&mut self, token: &str, at: u64) {
        let key = TokenKey::of(token);
        if let Some(refresh) = self.refresh_tokens.get_mut(&key) {
            refresh.last_issued = at;
            refresh.refreshed = true;
            let refresh = &*refresh;
            // Not over a token another mock revoked a moment ago.
            if !replaced(
                &self.durable,
                Kept::RefreshToken,
                &key.0,
                refresh,
                refresh.expires_at,
            ) {
                self.refresh_tokens.remove(&key);
            }
        }
    }

    /// Whether `client_id` holds a live refresh token it never used, although the
    /// access token issued with it has expired.
    pub(crate) fn holds_unused_refresh_token(&self, client_id: &str) -> bool {
        let now = now();
        self.refresh_tokens.values().any(|r| {
            r.grant.client_id == client_id
                && !r.refreshed
                && r.last_issued + self.token_ttl <= now
                && now < r.expires_at
                && !self.revoked_grants.contains_key(&r.grant.id)
        })
    }

    /// The grant behind a live refresh token.
    pub(crate) fn refresh_grant(&self, token: &str) -> Option<&RefreshGrant> {
        self.refresh_tokens
            .get(&TokenKey::of(token))
            .filter(|r| now() < r.expires_at && !self.revoked_grants.contains_key(&r.grant.id))
    }

    /// Replaces the refresh token `old` with a new one for the same grant, which
    /// expires when `old` would have (rotation bounds nothing, it only detects theft).
    pub(crate) fn rotate_refresh_token(&mut self, old: &str) -> Result<String, NotRotated> {
        let old = TokenKey::of(old);
        let refresh = self.refresh_tokens.remove(&old).ok_or(NotRotated::Replaced)?;
        let replaced = (refresh.grant.id.clone(), refresh.expires_at);
        // Of two mocks rotating one token at once, one does; for the other it
        // was replaced a moment ago, and using it again revokes the grant. Taken
        // and marked replaced in one transaction.
        let rotated = self.durable.take_then(
            Kept::RefreshToken,
            &old.0,
            now(),
            Some((
                Kept::ReplacedRefreshToken,
                old.0.as_str(),
                &replaced,
                refresh.expires_at,
            )),
        );
        match rotated {
            Err(_) => {
                self.refresh_tokens.insert(old, refresh);
                return Err(NotRotated::Unavailable);
            }
            Ok(false) => {
                self.revoke_replayed(&replaced.0);
                return Err(NotRotated::Replaced);
            }
            Ok(true) => {}
        }
        self.replaced_refresh_tokens.insert(old, replaced);
        let token = random_token();
        let key = TokenKey::of(&token);
        self.keep_refresh_token(&key, &refresh);
        self.refresh_tokens.insert(key, refresh);
        Ok(token)
    }

    /// RFC 9700 §4.14.2: a refresh token that rotation replaced, used again, means
    /// two parties hold it; the whole grant is revoked. True if `token` was one.
    pub(crate) fn revoke_if_replaced(&mut self, token: &str) -> bool {
        let key = TokenKey::of(token);
        match self.replaced_refresh_tokens.remove(&key) {
            Some((grant_id, _)) => {
                self.forget_kept(Kept::ReplacedRefreshToken, &key.0);
                self.revoke_replayed(&grant_id);
                true
            }
            None => false,
        }
    }

    /// RFC 7009: revoking a refresh token ends its whole grant; revoking an access
    /// token ends that token.
    ///
    /// A revocation the store could not keep is `Unavailable`: this mock
    /// refuses the tokens, but another on the database, or this one after a
    /// restart, would not, so the caller must not say it is done.
    pub(crate) fn revoke_refresh_token(&mut self, token: &str) -> Result<bool, Unavailable> {
        let key = TokenKey::of(token);
        match self.refresh_tokens.remove(&key) {
            Some(refresh) => {
                self.forget_kept(Kept::RefreshToken, &key.0);
                self.revoke_grant(&refresh.grant.id)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Revokes the access token `jti`, which expires at `exp` anyway (see
    /// [`Self::revoke_refresh_token`] for the error).
    pub(crate) fn revoke_access_token(&mut self, jti: &str, exp: u64) -> Result<(), Unavailable> {
        self.revoked_tokens.insert(jti.to_owned(), exp);
        self.durable
            .keep(Kept::RevokedToken, jti, &exp, exp.saturating_add(1))
    }

    /// Ends a grant. Its access tokens live at most a token lifetime from now.
    pub(crate) fn revoke_grant(&mut self, grant_id: &str) -> Result<(), Unavailable> {
        let until = now() + self.token_ttl;
        self.revoked_grants.insert(grant_id.to_owned(), until);
        self.drop_refresh_tokens(|refresh| refresh.grant.id == grant_id);
        self.durable
            .keep(Kept::RevokedGrant, grant_id, &until, until.saturating_add(1))
    }

    /// [`Self::revoke_grant`] where the request is refused anyway (a replayed
    /// code or refresh token): a failure to keep it is logged.
    fn revoke_replayed(&mut self, grant_id: &str) {
        if let Err(error) = self.revoke_grant(grant_id) {
            tracing::error!(%error, "cannot keep a grant's revocation in the store");
        }
    }

    /// Drops the refresh tokens `doomed` picks, here and in the store's file.
    fn drop_refresh_tokens(&mut self, doomed: impl Fn(&RefreshGrant) -> bool) {
        let dropped: Vec<TokenKey> = self
            .refresh_tokens
            .iter()
            .filter(|(_, refresh)| doomed(refresh))
            .map(|(key, _)| key.clone())
            .collect();
        for key in dropped {
            self.refresh_tokens.remove(&key);
            self.forget_kept(Kept::RefreshToken, &key.0);
        }
    }

    /// Whether a token is dead: revoked itself, its grant revoked, or its client deleted.
    pub(crate) fn is_revoked(&self, jti: &str, grant_id: &str, client_id: &str) -> bool {
        self.revoked_tokens.contains_key(jti)
            || self.revoked_grants.contains_key(grant_id)
            || !self.clients.contains_key(client_id)
    }

    /// Stores a launch for its client and returns its id.
    pub(crate) fn create_launch(&mut self, launch: Launch) -> String {
        let id = random_token();
        let expires_at = now() + LAUNCH_TTL.as_secs();
        self.keep(Kept::Launch, &id, &launch, expires_at);
        self.launches.insert(
            id.clone(),
            Expiring {
                value: launch,
                expires_at,
            },
        );
        id
    }

    /// Which apps may continue launch `id`, while it lasts.
    pub(crate) fn launch_for(&self, id: &str) -> Option<&LaunchFor> {
        self.launches
            .get(id)
            .filter(|l| now() < l.expires_at)
            .map(|l| &l.value.for_client)
    }

    /// Uses up launch `id`: once, by the client it was made for, before it expires.
    pub(crate) fn take_launch(&mut self, id: &str, client_id: &str) -> Result<Launch, String> {
        let unknown = || format!("unknown, expired or already used launch {id}");
        if !self.launch_for(id).ok_or_else(unknown)?.admits(client_id) {
            return Err(format!("launch {id} was made for another client"));
        }
        let launch = self.launches.remove(id).map(|l| l.value).ok_or_else(unknown)?;
        match self.take_kept(Kept::Launch, id) {
            Ok(true) => Ok(launch),
            Ok(false) => Err(unknown()),
            Err(error) => Err(format!(
                "launch {id} cannot be read just now ({error}): try again"
            )),
        }
    }

    /// Takes in an app that a launch link opened with no registration, under the
    /// `client_id` it presented (bounded with the registered clients).
    pub(crate) fn adopt(&mut self, client: ClientConfig) -> Result<(), &'static str> {
        if self.registered.len() >= MAX_REGISTERED_CLIENTS {
            return Err("this mock holds at most 10,000 registered clients: restart it to start afresh");
        }
        self.keep_client(&client);
        self.registered.push(client.client_id.clone());
        self.clients.insert(client.client_id.clone(), client);
        Ok(())
    }

    /// Records a client assertion's `jti` until the assertion's `exp`; false if it
    /// was used already.
    pub(crate) fn first_use_of_assertion(&mut self, client_id: &str, jti: &str, exp: u64) -> bool {
        let key = format!("{client_id}:{jti}");
        if self.assertion_ids.contains_key(&key) {
            return false;
        }
        // Used first here, or a moment ago by another mock on the database; a
        // store that cannot say refuses the assertion.
        let first = self
            .durable
            .keep_first(Kept::AssertionId, &key, &exp, exp.saturating_add(1))
            .unwrap_or_else(|error| {
                tracing::error!(%error, "cannot keep an assertion id in the store");
                false
            });
        self.assertion_ids.insert(key, exp);
        first
    }

    /// Remembers that `username` logged in in `browser` at `auth_time`; a different
    /// user's session there (and its consents) is replaced.
    pub(crate) fn log_in_browser(&mut self, browser: &Browser, username: &str, auth_time: u64) {
        let expires_at = auth_time + SESSION_TTL.as_secs();
        if let Some(session) = self.sessions.get_mut(browser)
            && session.value.username == username
        {
            session.value.auth_time = auth_time;
            session.expires_at = expires_at;
            self.keep_session(browser);
            return;
        }
        if self.sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.value.auth_time)
                .map(|(b, _)| b.clone())
        {
            self.sessions.remove(&oldest);
            self.forget_kept(Kept::Session, oldest.id());
        }
        let session = Session {
            username: username.to_owned(),
            auth_time,
            consents: HashMap::new(),
        };
        let session = Expiring {
            value: session,
            expires_at,
        };
        self.sessions.insert(browser.clone(), session);
        self.keep_session(browser);
    }

    fn keep_session(&self, browser: &Browser) {
        if let Some(session) = self.sessions.get(browser) {
            self.keep(Kept::Session, browser.id(), &session.value, session.expires_at);
        }
    }

    /// The live login of `browser`, if any.
    pub(crate) fn session(&self, browser: &Browser) -> Option<&Session> {
        self.sessions
            .get(browser)
            .filter(|s| now() < s.expires_at)
            .map(|s| &s.value)
    }

    /// Records `grant`'s scopes as allowed by `username`, if that is who is logged
    /// in in `browser` (an EHR's or `skip_login` user has no session here).
    pub(crate) fn remember_consent(&mut self, browser: &Browser, username: &str, grant: &Grant) {
        if let Some(session) = self.sessions.get_mut(browser)
            && session.value.username == username
        {
            session
                .value
                .consents
                .insert(grant.client_id.clone(), grant.scopes.clone());
            self.keep_session(browser);
        }
    }

    /// Drops everything that has expired by `now`.
    pub(crate) fn prune(&mut self, now: u64) {
        self.codes.retain(|_, c| c.expires_at > now);
        self.refresh_tokens.retain(|_, r| r.expires_at > now);
        self.replaced_refresh_tokens.retain(|_, (_, exp)| *exp > now);
        self.revoked_grants.retain(|_, until| *until >= now);
        self.revoked_tokens.retain(|_, exp| *exp >= now);
        self.pending.retain(|_, (_, a)| a.expires_at > now);
        self.launches.retain(|_, l| l.expires_at > now);
        self.assertion_ids.retain(|_, exp| *exp >= now);
        self.sessions.retain(|_, s| s.expires_at > now);
        self.durable.prune(now);
    }

    /// Entries held, all kinds together.
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.codes.len()
            + self.refresh_tokens.len()
            + self.revoked_grants.len()
            + self.revoked_tokens.len()
            + self.pending.len()
            + self.launches.len()
            + self.assertion_ids.len()
            + self.sessions.len()
    }
}

/// Replaces an entry in `durable` if it is still there; whether it was. A store
/// that cannot answer leaves this mock's entry as it is (and is logged).
fn replaced(durable: &Durable, kind: Kept, key: &str, value: &impl Serialize, expires_at: u64) -> bool {
    durable
        .replace(kind, key, value, expires_at)
        .unwrap_or_else(|error| {
            tracing::error!(?kind, %error, "cannot keep the authorisation state in the store");
            true
        })
}

/// Puts `value` under `key`, or takes the key out when there is none.
fn set<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: Option<V>) {
    match value {
        Some(value) => map.insert(key, value),
        None => map.remove(&key),
    };
}

/// 256 random bits, base64url: codes, refresh tokens, token ids, client secrets.
pub(crate) fn random_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            id: "g".into(),
            client_id: "app".into(),
            scopes: Scopes::default(),
            fhir_user: None,
            auth_time: None,
            context: LaunchContext::default(),
            simulate: None,
            fhir_base: "http://x/ccri-fhir/R4".into(),
        }
    }

    fn launch() -> Launch {
        Launch {
            for_client: LaunchFor::Client("app".into()),
            context: LaunchContext::default(),
            fhir_user: None,
            skip_auth: false,
            simulate: None,
            pkce: Pkce::Required,
        }
    }

    #[test]
    fn prune_drops_only_what_has_expired() {
        let mut grants = Grants::new(&Config::default(), Durable::default());
        let code = |challenge: &str| Code {
            grant: grant(),
            redirect_uri: "r".into(),
            code_challenge: Some(challenge.into()),
            nonce: None,
        };
        grants.store_code("c".into(), code("x"));
        grants.issue_refresh_token(grant());
        grants.revoke_access_token("jti", now() + 5).unwrap();
        grants.first_use_of_assertion("app", "a", now() + 5);
        grants.create_launch(launch());
        grants.log_in_browser(&browser(), "bernie", now());
        let held = grants.entries();
        grants.prune(now());
        assert_eq!(grants.entries(), held, "nothing has expired yet");
        grants.prune(now() + 10 * 24 * 60 * 60);
        assert_eq!(grants.entries(), 0);
    }

    fn browser() -> Browser {
        use axum_extra::extract::CookieJar;
        use axum_extra::extract::cookie::Cookie;
        let jar = CookieJar::new().add(Cookie::new("ccri-mock-browser", "b".repeat(43)));
        Browser::of(&jar).expect("a well-formed browser cookie")
    }

    #[test]
    fn a_session_remembers_consent_for_its_user_only() {
        let mut grants = Grants::new(&Config::default(), Durable::default());
        let scopes: Scopes = "patient/*.rs".parse().unwrap();
        let granted = Grant {
            scopes: scopes.clone(),
            ..grant()
        };
        grants.remember_consent(&browser(), "bernie", &granted);
        assert!(grants.session(&browser()).is_none(), "no login, no session");
        grants.log_in_browser(&browser(), "bernie", now());
        grants.remember_consent(&browser(), "bernie", &granted);
        let session = grants.session(&browser()).unwrap();
        assert!(session.has_consented("app", &scopes));
        assert!(!session.has_consented("app", &"patient/*.cruds".parse().unwrap()));
        assert!(!session.has_consented("other", &scopes));
        // Another user logging in in the same browser starts afresh.
        grants.log_in_browser(&browser(), "dr.harrison", now());
        assert!(!grants.session(&browser()).unwrap().has_consented("app", &scopes));
        grants.prune(now() + SESSION_TTL.as_secs());
        assert!(grants.session(&browser()).is_none(), "expired");
    }

    /// What a SQLite store keeps is known again by the grant store of the next
    /// process; what expired or was revoked stays so.
    #[test]
    fn a_store_file_keeps_clients_tokens_revocations_and_assertion_ids() {
        let file = std::env::temp_dir().join(format!("ccri-mock-grants-{}.db", std::process::id()));
        let storage = crate::config::Storage::Sqlite(file.clone());
        let config = Config::default();
        let mut client = config.clients[0].clone();
        client.client_id = "registered".into();
        let registration = Registration {
            access_token: "rat".into(),
            metadata: ClientMetadata::default(),
            issued_at: now(),
        };
        let (refresh, revoked_refresh) = {
            let mut grants = Grants::new(&config, Durable::open(&storage).unwrap());
            grants.register(client, registration).unwrap();
            let refresh = grants.issue_refresh_token(grant());
            let rotated = grants.rotate_refresh_token(&refresh).unwrap();
            let revoked = grants.issue_refresh_token(Grant {
                id: "other".into(),
                ..grant()
            });
            assert!(grants.revoke_refresh_token(&revoked).unwrap());
            grants.revoke_access_token("jti", now() + 60).unwrap();
            assert!(grants.first_use_of_assertion("app", "a", now() + 60));
            (rotated, revoked)
        };
        let mut grants = Grants::new(&config, Durable::open(&storage).unwrap());
        assert!(grants.registration_of("registered").is_some());
        assert!(grants.managed("registered", "rat").is_some());
        assert!(grants.refresh_grant(&refresh).is_some());
        assert!(grants.refresh_grant(&revoked_refresh).is_none());
        let known = &config.clients[1].client_id;
        assert!(!grants.is_revoked("x", "g", known));
        assert!(grants.is_revoked("jti", "g", known));
        assert!(
            grants.is_revoked("x", "other", known),
            "the grant of a revoked refresh token"
        );
        assert!(!grants.first_use_of_assertion("app", "a", now() + 60));
        drop(grants);
        let durable = Durable::open(&storage).unwrap();
        durable.forget_everything().unwrap();
        let afresh = Grants::new(&config, durable);
        assert!(afresh.registration_of("registered").is_none(), "--reset forgets");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
    }

    fn code() -> Code {
        Code {
            grant: grant(),
            redirect_uri: "http://app/cb".into(),
            code_challenge: None,
            nonce: None,
        }
    }

    fn redemption() -> Redemption<'static> {
        Redemption {
            client_id: "app",
            redirect_uri: "http://app/cb",
            challenge: None,
        }
    }

    /// A store file of the test's own, named `name`, removed when dropped.
    struct StoreFile(std::path::PathBuf);

    impl StoreFile {
        fn new(name: &str) -> StoreFile {
            let file = std::env::temp_dir().join(format!("ccri-mock-{name}-{}.db", std::process::id()));
            let _ = std::fs::remove_file(&file);
            StoreFile(file)
        }

        /// A grant store on the file, as a mock started on it has.
        fn grants(&self) -> Grants {
            let storage = crate::config::Storage::Sqlite(self.0.clone());
            Grants::new(&Config::default(), Durable::open(&storage).unwrap())
        }
    }

    impl Drop for StoreFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// What the store cannot keep is said to the caller (503), never taken as
    /// done: a revocation (though this grant store refuses the token at once),
    /// and a code's redemption (the code stays unused, not "replayed").
    #[test]
    fn what_the_store_cannot_keep_is_an_error() {
        let file = StoreFile::new("unkept");
        let mut grants = file.grants();
        let refresh = grants.issue_refresh_token(grant());
        grants.store_code("code".into(), code());
        rusqlite::Connection::open(&file.0)
            .unwrap()
            .execute_batch("DROP TABLE kept")
            .unwrap();
        assert_eq!(
            grants.redeem_code("code", &redemption()).unwrap_err(),
            CodeRefused::Unavailable
        );
        assert!(grants.revoke_access_token("jti", now() + 60).is_err());
        assert!(grants.revoke_refresh_token(&refresh).is_err());
        let known = &Config::default().clients[0].client_id;
        assert!(grants.is_revoked("jti", "g", known), "refused here all the same");
        assert!(grants.is_revoked("x", &grant().id, known));
    }

    /// Two grant stores on one file stand for two mocks on one database, the
    /// second not yet caught up with the first: what must happen once cannot
    /// happen again there, and what one forgot the other does not bring back.
    #[test]
    fn two_grant_stores_on_one_file_do_once_what_must_happen_once() {
        let file = StoreFile::new("shared");
        let mut a = file.grants();
        let refresh = a.issue_refresh_token(grant());
        let other = Grant {
            id: "other".into(),
            ..grant()
        };
        let revoked = a.issue_refresh_token(other);
        // Of a grant of its own: its replay below revokes that grant.
        let coded = Grant {
            id: "coded".into(),
            ..grant()
        };
        a.store_code(
            "code".into(),
            Code {
                grant: coded,
                ..code()
            },
        );
        let mut b = file.grants();
        assert!(b.refresh_grant(&refresh).is_some(), "b read what a kept");

        assert!(a.redeem_code("code", &redemption()).is_ok());
        assert_eq!(
            b.redeem_code("code", &redemption()).unwrap_err(),
            CodeRefused::Reused
        );

        assert!(a.rotate_refresh_token(&refresh).is_ok());
        assert_eq!(b.rotate_refresh_token(&refresh), Err(NotRotated::Replaced));
        a.catch_up().unwrap();
        let known = &Config::default().clients[0].client_id;
        assert!(
            a.is_revoked("x", &grant().id, known),
            "the replay on b revoked the grant for a"
        );

        assert!(a.revoke_refresh_token(&revoked).unwrap());
        b.note_refreshed(&revoked, now());
        assert!(
            !file.grants().refresh_tokens.contains_key(&TokenKey::of(&revoked)),
            "b's late note did not bring back the token a revoked"
        );
    }

    #[test]
    fn a_launch_is_used_once_by_its_own_client() {
        let mut grants = Grants::new(&Config::default(), Durable::default());
        let id = grants.create_launch(launch());
        assert!(grants.take_launch(&id, "other").is_err());
        assert!(grants.take_launch(&id, "app").is_ok());
        assert!(grants.take_launch(&id, "app").is_err());
        let late = grants.create_launch(launch());
        grants.prune(now() + LAUNCH_TTL.as_secs() + 1);
        assert!(grants.take_launch(&late, "app").is_err(), "expired");
    }
}
