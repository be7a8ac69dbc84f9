//! The key the mock signs access and id tokens with, and publishes at `{auth}/jwk`.
//!
//! RS256 by default (CCRI's choice, and the algorithm SMART requires servers to
//! support); `signing_alg` (`--signing-alg`) picks PS256 or ES256 instead, to test
//! that an app accepts what other servers sign with. A fresh key (RSA 2048 or
//! P-256) is generated at start (tokens from a previous run stop verifying, as after
//! a real key rotation) unless `key_file` names a PEM file. The `kid` is the key's
//! RFC 7638 thumbprint, so the same key always has the same id.
//!
//! Signing is written here rather than left to `jsonwebtoken::encode`, which parses
//! and validates the private key from DER again for every signature: that tripled
//! the cost of a token. The key pair is parsed once; the compact JWS (RFC 7515 §7.1)
//! is two base64url parts and a signature. Verification stays with jsonwebtoken.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters, EllipticCurveKeyType,
    Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, RSAKeyParameters, RSAKeyType, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The JWS algorithms the mock can sign with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum, strum::IntoStaticStr)]
#[value(rename_all = "UPPERCASE")]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RSA 2048).
    #[default]
    RS256,
    /// RSASSA-PSS with SHA-256 (RSA 2048).
    PS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

impl SigningAlg {
    /// The JWS `alg` name, which is the variant's.
    pub(crate) fn name(self) -> &'static str {
        self.into()
    }

    pub(crate) fn algorithm(self) -> Algorithm {
        match self {
            SigningAlg::RS256 => Algorithm::RS256,
            SigningAlg::PS256 => Algorithm::PS256,
            SigningAlg::ES256 => Algorithm::ES256,
        }
    }
}

/// What a signed token is, written in its header's `typ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// RFC 9068 §2.1: `at+jwt`, so an access token can never pass for an id_token.
    Access,
    /// OpenID Connect Core §2: a plain `JWT`.
    Id,
    /// A launch link's choices, signed so that they cannot be changed on the way.
    LaunchLink,
}

impl TokenKind {
    pub fn typ(self) -> &'static str {
        match self {
            TokenKind::Access => "at+jwt",
            TokenKind::Id => "JWT",
            TokenKind::LaunchLink => "launch-link+jwt",
        }
    }
}

/// Cheap to clone: the key pair is shared.
#[derive(Clone)]
pub struct SigningKey {
    alg: SigningAlg,
    pair: Pair,
    rng: SystemRandom,
    decoding: DecodingKey,
    public: Jwk,
}

#[derive(Clone)]
enum Pair {
    Rsa(Arc<RsaKeyPair>),
    Ec(Arc<EcdsaKeyPair>),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("key file {path} is not a private key for {alg} in PEM: {reason}")]
    Pem {
        path: String,
        alg: &'static str,
        reason: String,
    },
    #[error("key generation failed")]
    Generate,
    #[error("key error: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

impl SigningKey {
    pub fn generate(alg: SigningAlg) -> Result<Self, KeyError> {
        let pair = match alg {
            SigningAlg::RS256 | SigningAlg::PS256 => Pair::Rsa(Arc::new(
                RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?,
            )),
            SigningAlg::ES256 => Pair::Ec(Arc::new(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| KeyError::Generate)?,
            )),
        };
        Self::from_pair(alg, pair)
    }

    /// An RSA key as PKCS#1 or PKCS#8 PEM; a P-256 key as PKCS#8 PEM.
    pub fn from_pem_file(path: &Path, alg: SigningAlg) -> Result<Self, KeyError> {
        let display = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| KeyError::Read {
            path: display.clone(),
            source,
        })?;
        let refuse = |reason: String| KeyError::Pem {
            path: display.clone(),
            alg: alg.name(),
            reason,
        };
        // jsonwebtoken reads the PEM forms and gives the DER the signers read.
        let pair = match alg {
            SigningAlg::RS256 | SigningAlg::PS256 => {
                let der = EncodingKey::from_rsa_pem(&pem).map_err(|e| refuse(e.to_string()))?;
                Pair::Rsa(Arc::new(
                    RsaKeyPair::from_der(der.as_bytes()).map_err(|e| refuse(e.to_string()))?,
                ))
            }
            SigningAlg::ES256 => {
                let der = EncodingKey::from_ec_pem(&pem).map_err(|e| refuse(e.to_string()))?;
                Pair::Ec(Arc::new(
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_bytes())
                        .map_err(|e| refuse(e.to_string()))?,
                ))
            }
        };
        Self::from_pair(alg, pair)
    }

    /// The private key as PKCS#8 DER, for the store to keep (`durable`).
    pub(crate) fn to_pkcs8(&self) -> Option<Vec<u8>> {
        use aws_lc_rs::encoding::AsDer;
        match &self.pair {
            Pair::Rsa(pair) => pair.as_der().ok().map(|der| der.as_ref().to_vec()),
            Pair::Ec(pair) => pair.to_pkcs8v1().ok().map(|der| der.as_ref().to_vec()),
        }
    }

    /// A key [`Self::to_pkcs8`] wrote.
    pub(crate) fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<Self, KeyError> {
        let refuse = |e: aws_lc_rs::error::KeyRejected| KeyError::Pem {
            path: "the store".into(),
            alg: alg.name(),
            reason: e.to_string(),
        };
        let pair = match alg {
            SigningAlg::RS256 | SigningAlg::PS256 => {
                Pair::Rsa(Arc::new(RsaKeyPair::from_pkcs8(der).map_err(refuse)?))
            }
            SigningAlg::ES256 => Pair::Ec(Arc::new(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(refuse)?,
            )),
        };
        Self::from_pair(alg, pair)
    }

    fn from_pair(alg: SigningAlg, pair: Pair) -> Result<Self, KeyError> {
        let (parameters, decoding) = match &pair {
            Pair::Rsa(pair) => {
                let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                (
                    AlgorithmParameters::RSA(RSAKeyParameters {
                        key_type: RSAKeyType::RSA,
                        n: URL_SAFE_NO_PAD.encode(&components.n),
                        e: URL_SAFE_NO_PAD.encode(&components.e),
                    }),
                    DecodingKey::from_rsa_raw_components(&components.n, &components.e),
                )
            }
            Pair::Ec(pair) => {
                // SEC 1 uncompressed point: 0x04, then x and y, 32 bytes each.
                let point = pair.public_key().as_ref();
                let (x, y) = (
                    URL_SAFE_NO_PAD.encode(&point[1..33]),
                    URL_SAFE_NO_PAD.encode(&point[33..65]),
                );
                let decoding = DecodingKey::from_ec_components(&x, &y)?;
                (
                    AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                        key_type: EllipticCurveKeyType::EC,
                        curve: EllipticCurve::P256,
                        x,
                        y,
                    }),
                    decoding,
                )
            }
        };
        let key_algorithm: KeyAlgorithm = alg.name().parse().expect("every SigningAlg is a JWK algorithm");
        let mut public = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(key_algorithm),
                ..CommonParameters::default()
            },
            algorithm: parameters,
        };
        public.common.key_id = Some(public.thumbprint(ThumbprintHash::SHA256)?);
        Ok(Self {
            alg,
            pair,
            rng: SystemRandom::new(),
            decoding,
            public,
        })
    }

    pub(crate) fn alg(&self) -> SigningAlg {
        self.alg
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

    /// A compact JWS of `claims`, with `kid` and the `typ` of `kind`.
    pub fn sign<T: Serialize>(&self, kind: TokenKind, claims: &T) -> String {
        let mut header = Header::new(self.alg.algorithm());
        header.typ = Some(kind.typ().to_owned());
        header.kid = Some(self.kid().to_owned());
        let mut jws = format!("{}.{}", json_part(&header), json_part(claims));
        let failed = "signing with a valid key cannot fail";
        let signature = match &self.pair {
            Pair::Rsa(pair) => {
                let padding = match self.alg {
                    SigningAlg::PS256 => &RSA_PSS_SHA256,
                    _ => &RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &self.rng, jws.as_bytes(), &mut signature)
                    .expect(failed);
                signature
            }
            // The fixed format is JWS's (RFC 7518 §3.4): r and s, 32 bytes each.
            Pair::Ec(pair) => pair
                .sign(&self.rng, jws.as_bytes())
                .expect(failed)
                .as_ref()
                .to_vec(),
        };
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
        jws
    }

    /// Verifies signature, `kid`, `typ` and the claims `validation` asks for.
    /// `validation` must only allow this key's algorithm: that is what refuses
    /// `alg: none` and HS256 tokens "signed" with the public key.
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
