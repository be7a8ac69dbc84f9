//! Everything the authorisation server remembers between requests: registered
//! clients, authorize transactions in progress, codes, refresh tokens, revocations.
//!
//! A [`Grant`] is one decision of a user (or, for client credentials, of the
//! configuration) to give a client some scopes in some launch context. Every token
//! carries its grant's id, so revoking a grant — after a replayed code, or when its
//! refresh token is revoked — stops every token issued from it at once.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use smart_protocol::{LaunchContext, Scopes};

use super::authorize::Pending;
use super::simulate::SimulatedError;
use crate::config::{ClientConfig, Config};

/// A decision to give `client_id` some scopes, for `user` in `context`.
#[derive(Clone, Debug)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub scopes: Scopes,
    /// `Patient/1` or `Practitioner/2`; absent for client credentials.
    pub fhir_user: Option<String>,
    pub context: LaunchContext,
    pub simulate: Option<SimulatedError>,
}

/// An authorization code waiting to be exchanged (RFC 6749 §4.1.2, RFC 7636 §4.4).
#[derive(Debug)]
pub struct Code {
    pub grant: Grant,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub expires_at: Instant,
    /// Set when exchanged; a second exchange revokes the grant (RFC 6749 §4.1.2).
    pub used: bool,
}

#[derive(Debug)]
pub struct RefreshGrant {
    pub grant: Grant,
    pub expires_at: Instant,
}

/// A launch a practitioner set up on the launcher page (EHR launch).
#[derive(Clone, Debug)]
pub struct Launch {
    pub context: LaunchContext,
    /// The practitioner the EHR has logged in: no login page in an EHR launch.
    pub fhir_user: Option<String>,
    pub skip_auth: bool,
    pub simulate: Option<SimulatedError>,
}

pub struct Grants {
    clients: HashMap<String, ClientConfig>,
    codes: HashMap<String, Code>,
    refresh_tokens: HashMap<String, RefreshGrant>,
    revoked_grants: HashSet<String>,
    revoked_tokens: HashSet<String>,
    /// Authorize requests waiting for a person (login, picker, consent), by `txn`.
    pub pending: HashMap<String, Pending>,
    pub launches: HashMap<String, Launch>,
    /// `jti`s of client assertions already used (private_key_jwt replay).
    pub assertion_ids: HashSet<String>,
    pub code_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl Grants {
    pub fn new(config: &Config) -> Self {
        Grants {
            clients: config
                .clients
                .iter()
                .map(|c| (c.client_id.clone(), c.clone()))
                .collect(),
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            revoked_grants: HashSet::new(),
            revoked_tokens: HashSet::new(),
            pending: HashMap::new(),
            launches: HashMap::new(),
            assertion_ids: HashSet::new(),
            code_ttl: Duration::from_secs(config.code_ttl_secs),
            refresh_ttl: Duration::from_secs(config.refresh_ttl_secs),
        }
    }

    pub fn client(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.get(client_id)
    }

    pub fn clients(&self) -> impl Iterator<Item = &ClientConfig> {
        self.clients.values()
    }

    pub fn register(&mut self, client: ClientConfig) {
        self.clients.insert(client.client_id.clone(), client);
    }

    /// Stores a new code for `grant` and returns it.
    pub fn issue_code(&mut self, grant: Grant, redirect_uri: String, code_challenge: String) -> String {
        let code = random_token();
        let expires_at = Instant::now() + self.code_ttl;
        self.codes.insert(
            code.clone(),
            Code {
                grant,
                redirect_uri,
                code_challenge,
                expires_at,
                used: false,
            },
        );
        code
    }

    /// Marks `code` used and returns it. A code seen before revokes its grant, and
    /// so every token issued from it, and is refused.
    pub fn redeem_code(&mut self, code: &str) -> Result<&Code, &'static str> {
        let Some(entry) = self.codes.get_mut(code) else {
            return Err("unknown authorization code");
        };
        if entry.used {
            let grant_id = entry.grant.id.clone();
            self.revoke_grant(&grant_id);
            return Err("authorization code already used; tokens issued from it are revoked");
        }
        entry.used = true;
        if Instant::now() > entry.expires_at {
            return Err("authorization code expired");
        }
        Ok(&self.codes[code])
    }

    pub fn issue_refresh_token(&mut self, grant: Grant) -> String {
        let token = random_token();
        let expires_at = Instant::now() + self.refresh_ttl;
        self.refresh_tokens
            .insert(token.clone(), RefreshGrant { grant, expires_at });
        token
    }

    /// The grant behind a live refresh token.
    pub fn refresh_grant(&self, token: &str) -> Option<&RefreshGrant> {
        self.refresh_tokens
            .get(token)
            .filter(|r| Instant::now() <= r.expires_at && !self.revoked_grants.contains(&r.grant.id))
    }

    /// RFC 7009: revoking a refresh token ends its whole grant; revoking an access
    /// token ends that token.
    pub fn revoke_refresh_token(&mut self, token: &str) -> bool {
        match self.refresh_tokens.remove(token) {
            Some(refresh) => {
                self.revoke_grant(&refresh.grant.id);
                true
            }
            None => false,
        }
    }

    pub fn revoke_access_token(&mut self, jti: &str) {
        self.revoked_tokens.insert(jti.to_owned());
    }

    pub fn revoke_grant(&mut self, grant_id: &str) {
        self.revoked_grants.insert(grant_id.to_owned());
        self.refresh_tokens
            .retain(|_, refresh| refresh.grant.id != grant_id);
    }

    pub fn is_revoked(&self, jti: &str, grant_id: &str) -> bool {
        self.revoked_tokens.contains(jti) || self.revoked_grants.contains(grant_id)
    }
}

/// 256 random bits, base64url: codes, refresh tokens, token ids, client secrets.
pub fn random_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
