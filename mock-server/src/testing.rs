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
/// resources in a SQLite file of its own in `DIR`; with `CCRI_MOCK_TEST_STORE=
/// postgres://…`, in a database of its own on that server, which must run on a
/// multi-threaded runtime (`make test` runs the API tests so too, and removes
/// both after).
pub async fn start(adjust: impl FnOnce(&mut Config)) -> RunningServer {
    static SERVERS: AtomicUsize = AtomicUsize::new(0);
    let n = SERVERS.fetch_add(1, Ordering::Relaxed);
    let store = match std::env::var("CCRI_MOCK_TEST_STORE") {
        Ok(url) if url.starts_with("postgres://") => match url.parse() {
            Ok(Storage::Postgres(server)) => {
                let name = format!("test_{}_{n}", std::process::id());
                Storage::Postgres(crate::postgres::new_database(&server, &name).expect("a test database"))
            }
            _ => panic!("CCRI_MOCK_TEST_STORE is not a postgres:// URL"),
        },
        Ok(dir) => Storage::Sqlite(Path::new(&dir).join(format!("{}-{n}.db", std::process::id()))),
        Err(_) => Storage::Memory,
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
