//! The RSA key the mock signs access and id tokens with, and publishes at `{auth}/jwk`.
//!
//! A fresh 2048-bit key is generated at start (tokens from a previous run stop
//! verifying, as after a real key rotation) unless `key_file` names a PEM file.
//! The `kid` is the key's RFC 7638 thumbprint, so the same key always has the same id.

use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Every token the mock issues is RS256, the algorithm SMART requires servers to support.
pub const ALGORITHM: Algorithm = Algorithm::RS256;

#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    public: Jwk,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("key file {path} is not an RSA private key in PEM: {source}")]
    Pem {
        path: String,
        source: jsonwebtoken::errors::Error,
    },
    #[error("RSA key generation failed: {0}")]
    Generate(String),
    #[error("key error: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

impl SigningKey {
    pub fn generate() -> Result<Self, KeyError> {
        use rsa::Generate;
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let key = rsa::PrivateKey::try_generate().map_err(|e| KeyError::Generate(format!("{e:?}")))?;
        let der = key
            .to_pkcs1_der()
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        Self::from_encoding_key(EncodingKey::from_rsa_der(der.as_bytes()))
    }

    pub fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let display = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| KeyError::Read {
            path: display.clone(),
            source,
        })?;
        let encoding = EncodingKey::from_rsa_pem(&pem).map_err(|source| KeyError::Pem {
            path: display,
            source,
        })?;
        Self::from_encoding_key(encoding)
    }

    fn from_encoding_key(encoding: EncodingKey) -> Result<Self, KeyError> {
        let mut public = Jwk::from_encoding_key(&encoding, ALGORITHM)?;
        let AlgorithmParameters::RSA(rsa) = &public.algorithm else {
            unreachable!("an RSA encoding key yields an RSA JWK")
        };
        let decoding = DecodingKey::from_rsa_components(&rsa.n, &rsa.e)?;
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        public.common.key_algorithm = Some(KeyAlgorithm::RS256);
        public.common.key_id = Some(public.thumbprint(ThumbprintHash::SHA256)?);
        Ok(Self {
            encoding,
            decoding,
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

    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.kid().to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("RS256 signing with a valid key cannot fail")
    }

    /// Verifies signature, `kid` and the claims `validation` asks for.
    /// `validation` must only allow [`ALGORITHM`]: that is what refuses `alg: none`
    /// and HS256 tokens "signed" with the public key.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<T, jsonwebtoken::errors::Error> {
        let header = jsonwebtoken::decode_header(token)?;
        if header.kid.as_deref() != Some(self.kid()) {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into());
        }
        Ok(jsonwebtoken::decode(token, &self.decoding, validation)?.claims)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(kid={}, [redacted])", self.kid())
    }
}
