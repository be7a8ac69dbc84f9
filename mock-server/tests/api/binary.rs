//! The `ccri-mock` binary as a process of its own, for what an in-process server
//! cannot show: a restart after SIGKILL, several replicas on one database, a start
//! that fails.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A directory of the test's own, removed when dropped (also when the test panics).
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        // The count keeps apart the directories of tests that share a process (cargo test).
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ccri-mock-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port that was free a moment ago, for a server that binds it itself.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary, without the `CCRI_MOCK_*` settings of the environment the tests run
/// in: only what the test passes counts.
pub(crate) fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ccri-mock"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CCRI_MOCK_") {
            command.env_remove(&name);
        }
    }
    command
}

/// The binary, serving on `port`; killed (SIGKILL) when dropped.
pub(crate) struct Binary {
    child: Child,
    origin: String,
}

impl Binary {
    /// Starts the binary on `127.0.0.1:port` with `args`, and waits until it serves.
    pub(crate) async fn start<S: AsRef<OsStr>>(port: u16, args: impl IntoIterator<Item = S>) -> Binary {
        let child = command()
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(args)
            .stdout(Stdio::null())
            // Inherited, so the test runner shows why a replica failed.
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut binary = Binary {
            child,
            origin: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while reqwest::get(binary.fhir("metadata")).await.is_err() {
            if let Some(status) = binary.child.try_wait().unwrap() {
                panic!("the binary exited before it served: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the binary did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        binary
    }

    pub(crate) fn auth(&self, endpoint: &str) -> String {
        format!("{}/ccri-auth/{endpoint}", self.origin)
    }

    pub(crate) fn fhir(&self, path: &str) -> String {
        format!("{}/ccri-fhir/R4/{path}", self.origin)
    }

    /// SIGKILL: no chance to flush or finish anything.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
