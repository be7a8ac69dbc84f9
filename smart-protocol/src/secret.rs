//! Credentials that must never reach a log, a panic message or a `{:?}`.
//!
//! Each is a newtype over the string sent on the wire; `Debug` prints
//! `Name([redacted])` and there is no `Display`, so the only way to the value is an
//! explicit `.secret()` at the point it is sent. [`PkceVerifier`] is not `Clone`:
//! a verifier is used once, by the party that made it.

macro_rules! secret_string {
    ($(#[$meta:meta])* $name:ident $(, $derive:ident)*) => {
        $(#[$meta])*
        #[derive(PartialEq, Eq, serde::Serialize, serde::Deserialize $(, $derive)*)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(secret: impl Into<String>) -> Self {
                Self(secret.into())
            }

            /// The value itself, to put on the wire.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_string!(
    /// An OAuth access token (for ccri-mock, a signed JWT).
    AccessToken, Clone
);
secret_string!(
    /// An OAuth refresh token.
    RefreshToken, Clone
);
secret_string!(
    /// An OpenID Connect id_token (a JWT full of personal data).
    IdToken, Clone
);
secret_string!(
    /// A confidential client's secret.
    ClientSecret, Clone
);
secret_string!(
    /// A private key as a JWK (JSON text), for `private_key_jwt` client authentication.
    PrivateJwk
);
secret_string!(
    /// A PKCE `code_verifier` (RFC 7636 §4.1). Deliberately not `Clone`.
    PkceVerifier
);
