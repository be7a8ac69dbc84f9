//! For tests, this crate's and the client's (the `testing` feature): a mock on a
//! free loopback port, and one signing key per test process, since generating an
//! RSA key for every server would dominate the run time.

use std::sync::{Arc, LazyLock, OnceLock};

use crate::{Config, RunningServer, SigningAlg, SigningKey};

/// The key every RS256 server this process starts signs with; tests mint tokens with it.
pub static KEY: LazyLock<SigningKey> =
    LazyLock::new(|| SigningKey::generate(SigningAlg::RS256).expect("a key can be generated"));

/// A mock on `127.0.0.1` and a free port, with `adjust` applied to the default config.
pub async fn start(adjust: impl FnOnce(&mut Config)) -> RunningServer {
    let mut config = Config {
        port: 0,
        ..Config::default()
    };
    adjust(&mut config);
    let key = match config.signing_alg {
        SigningAlg::RS256 => KEY.clone(),
        other => SigningKey::generate(other).expect("a key can be generated"),
    };
    crate::start(config, Arc::new(OnceLock::from(key)))
        .await
        .expect("the test server starts")
}
