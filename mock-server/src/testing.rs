//! For tests, this crate's and the client's (the `testing` feature): a mock on a
//! free loopback port, and one signing key per test process, since generating an
//! RSA key for every server would dominate the run time.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};

use crate::{Config, RunningServer, SigningAlg, SigningKey, Storage};

/// The key every RS256 server this process starts signs with; tests mint tokens with it.
pub static KEY: LazyLock<SigningKey> =
    LazyLock::new(|| SigningKey::generate(SigningAlg::RS256).expect("a key can be generated"));

/// A mock on `127.0.0.1` and a free port, with `adjust` applied to the default config.
///
/// With `CCRI_MOCK_TEST_STORE=DIR` in the environment, each server keeps its
/// resources in a SQLite file of its own in `DIR` (`make test` runs the FHIR tests
/// so too, and removes `DIR` after).
pub async fn start(adjust: impl FnOnce(&mut Config)) -> RunningServer {
    static SERVERS: AtomicUsize = AtomicUsize::new(0);
    let store = match std::env::var_os("CCRI_MOCK_TEST_STORE") {
        Some(dir) => {
            let n = SERVERS.fetch_add(1, Ordering::Relaxed);
            let file = Path::new(&dir).join(format!("{}-{n}.db", std::process::id()));
            Storage::Sqlite(file)
        }
        None => Storage::Memory,
    };
    let mut config = Config {
        port: 0,
        store,
        ..Config::default()
    };
    adjust(&mut config);
    let key = match config.signing_alg {
        SigningAlg::RS256 => KEY.clone(),
        other => SigningKey::generate(other).expect("a key can be generated"),
    };
    let durable = crate::durable::Durable::open(&config.store).expect("the test store opens");
    crate::start(config, Arc::new(OnceLock::from(key)), durable)
        .await
        .expect("the test server starts")
}
