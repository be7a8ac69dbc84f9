//! The RSA key the mock signs access and id tokens with, and publishes at `{auth}/jwk`.
//!
//! A fresh 2048-bit key is generated at start (tokens from a previous run stop
//! verifying, as after a real key rotation) unless `key_file` names a PEM file.
//! The `kid` is the key's RFC 7638 thumbprint, so the same key always has the same id.
//!
//! Signing is written here rather than left to `jsonwebtoken::encode`, which parses
//! and validates the private key from DER again for every signature: that tripled
//! the cost of a token. The key pair is parsed once; the compact JWS (RFC 7515 §7.1)
//! is two base64url parts and a signature. Verification stays with jsonwebtoken.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, RSAKeyParameters,
    RSAKeyType, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Every token the mock issues is RS256, the algorithm SMART requires servers to support.
pub(crate) const ALGORITHM: Algorithm = Algorithm::RS256;

/// What a signed token is, written in its header's `typ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// RFC 9068 §2.1: `at+jwt`, so an access token can never pass for an id_token.
    Access,
    /// OpenID Connect Core §2: a plain `JWT`.
    Id,
}

impl TokenKind {
    pub fn typ(self) -> &'static str {
        match self {
            TokenKind::Access => "at+jwt",
            TokenKind::Id => "JWT",
        }
    }
}

/// Cheap to clone: the key pair is shared.
#[derive(Clone)]
pub struct SigningKey {
    pair: Arc<RsaKeyPair>,
    rng: SystemRandom,
    decoding: DecodingKey,
    public: Jwk,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("key file {path} is not an RSA private key in PEM: {reason}")]
    Pem { path: String, reason: String },
    #[error("RSA key generation failed")]
    Generate,
    #[error("key error: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

impl SigningKey {
    pub fn generate() -> Result<Self, KeyError> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
        Self::from_pair(pair)
    }

    /// A PKCS#1 or PKCS#8 PEM file.
    pub fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let display = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| KeyError::Read {
            path: display.clone(),
            source,
        })?;
        let refuse = |reason: String| KeyError::Pem {
            path: display.clone(),
            reason,
        };
        // jsonwebtoken reads both PEM forms and gives the PKCS#1 DER its own signer reads.
        let der = EncodingKey::from_rsa_pem(&pem).map_err(|e| refuse(e.to_string()))?;
        let pair = RsaKeyPair::from_der(der.as_bytes()).map_err(|e| refuse(e.to_string()))?;
        Self::from_pair(pair)
    }

    fn from_pair(pair: RsaKeyPair) -> Result<Self, KeyError> {
        let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let mut public = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::RS256),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: URL_SAFE_NO_PAD.encode(&components.n),
                e: URL_SAFE_NO_PAD.encode(&components.e),
            }),
        };
        public.common.key_id = Some(public.thumbprint(ThumbprintHash::SHA256)?);
        Ok(Self {
            decoding: DecodingKey::from_rsa_raw_components(&components.n, &components.e),
            pair: Arc::new(pair),
            rng: SystemRandom::new(),
            public,
        })
    }

    pub fn kid(&self) -> &str {
        self.public.common.key_id.as_deref().unwrap_or_default()
    }

    /// The public half, as `{auth}/jwk` serves it.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.public.clone()],
        }
    }

    /// A compact RS256 JWS of `claims`, with `kid` and the `typ` of `kind`.
    pub fn sign<T: Serialize>(&self, kind: TokenKind, claims: &T) -> String {
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(kind.typ().to_owned());
        header.kid = Some(self.kid().to_owned());
        let mut jws = format!("{}.{}", json_part(&header), json_part(claims));
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, jws.as_bytes(), &mut signature)
            .expect("RS256 signing with a valid key cannot fail");
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
        jws
    }

    /// Verifies signature, `kid`, `typ` and the claims `validation` asks for.
    /// `validation` must only allow [`ALGORITHM`]: that is what refuses `alg: none`
    /// and HS256 tokens "signed" with the public key.
    pub(crate) fn verify<T: DeserializeOwned>(
        &self,
        kind: TokenKind,
        token: &str,
        validation: &Validation,
    ) -> Result<T, jsonwebtoken::errors::Error> {
        let header = jsonwebtoken::decode_header(token)?;
        if header.kid.as_deref() != Some(self.kid()) || header.typ.as_deref() != Some(kind.typ()) {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidToken.into());
        }
        Ok(jsonwebtoken::decode(token, &self.decoding, validation)?.claims)
    }
}

/// One base64url JSON part of a compact JWS.
fn json_part<T: Serialize>(value: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JWT headers and claims are plain JSON"))
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(kid={}, [redacted])", self.kid())
    }
}
