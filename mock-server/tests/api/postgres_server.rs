//! A PostgreSQL server of the test's own: a cluster made by `initdb` in a temporary
//! directory, listening on 127.0.0.1 and a free port only, stopped and removed when
//! dropped (also when the test panics). It uses the server binaries of Debian's
//! `postgresql` package, which `scripts/setup.sh` installs.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

use crate::binary::{TempDir, free_port};

/// The superuser and the database every test gets. Authentication is `trust`
/// (the server is on loopback and lives for one test), so the URL has no password.
const NAME: &str = "ccri";

pub(crate) struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    /// Who runs the server when the test runs as root, which PostgreSQL refuses.
    owner: Option<Owner>,
}

#[derive(Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

impl Postgres {
    /// A new cluster, started, with an empty database [`NAME`].
    pub(crate) fn start() -> Postgres {
        let bin = server_binaries();
        let dir = TempDir::new("postgres");
        let owner = running_as_root().then(unprivileged_owner);
        if let Some(Owner { uid, gid }) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let postgres = Postgres {
            dir,
            bin,
            port: free_port(),
            owner,
        };
        postgres.run(
            postgres
                .as_owner("initdb")
                .arg("--pgdata")
                .arg(postgres.data())
                .args([
                    "--username",
                    NAME,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                ])
                // The cluster lives for one test: nothing of it needs to survive a crash.
                .args(["--no-sync", "--no-instructions"]),
        );
        // In the configuration file rather than on pg_ctl's command line, which goes
        // through a shell; a later line wins over initdb's. No fsync: only an operating
        // system crash would lose what is written. Commits still wait for their WAL to
        // be written, so what was committed survives `stop`.
        let socket_dir = postgres.dir.path().display().to_string().replace('\'', "''");
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{socket_dir}'\n\
             fsync = off\nfull_page_writes = off\n",
            postgres.port
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(postgres.data().join("postgresql.conf"))
            .and_then(|mut conf| conf.write_all(settings.as_bytes()))
            .unwrap();
        postgres.start_again();
        postgres.psql_on("postgres", &format!("CREATE DATABASE {NAME}"));
        postgres
    }

    /// `postgres://ccri@127.0.0.1:PORT/ccri`, for `ccri-mock --store`.
    pub(crate) fn url(&self) -> String {
        self.url_of(NAME)
    }

    fn url_of(&self, database: &str) -> String {
        format!("postgres://{NAME}@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server at once, as a crash would: every connection is cut.
    pub(crate) fn stop(&self) {
        self.run(&mut self.pg_ctl_stop());
    }

    /// Starts the server (again, after [`Postgres::stop`]) on the same port and data,
    /// and returns once it accepts connections.
    pub(crate) fn start_again(&self) {
        self.run(
            self.as_owner("pg_ctl")
                .arg("start")
                .arg("--pgdata")
                .arg(self.data())
                .arg("--log")
                .arg(self.log_file())
                .args(["--wait", "--silent"]),
        );
    }

    /// Runs `sql` on the test's database; what it selects, one row a line, columns
    /// separated by `|`. Panics if the SQL fails.
    pub(crate) fn psql(&self, sql: &str) -> String {
        self.psql_on(NAME, sql)
    }

    fn psql_on(&self, database: &str, sql: &str) -> String {
        // A client over TCP: it need not run as the server's owner.
        let rows = self.run(
            Command::new(self.bin.join("psql"))
                .args(["--no-psqlrc", "--quiet", "--no-align", "--tuples-only"])
                .args(["--set", "ON_ERROR_STOP=1", "--dbname"])
                .arg(self.url_of(database))
                .args(["--command", sql]),
        );
        rows.trim_end().to_owned()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn pg_ctl_stop(&self) -> Command {
        let mut command = self.as_owner("pg_ctl");
        command
            .arg("stop")
            .arg("--pgdata")
            .arg(self.data())
            .args(["--mode=immediate", "--wait", "--silent"]);
        command
    }

    /// A server binary, run as the cluster's owner.
    fn as_owner(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = match self.owner {
            None => Command::new(program),
            // setpriv (util-linux) only changes ids and execs: no PAM session, no new environment.
            Some(Owner { uid, gid }) => {
                let mut command = Command::new("setpriv");
                command
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--clear-groups", "--"])
                    .arg(program);
                command
            }
        };
        // The owner may not be allowed into the test's working directory.
        command.current_dir(self.dir.path());
        command
    }

    /// Runs `command` to its end; its output, or a panic with its errors and the server's log.
    fn run(&self, command: &mut Command) -> String {
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        assert!(
            output.status.success(),
            "{command:?}: {}\n{}{}\nthe server's log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.log_file()).unwrap_or_default()
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Fails harmlessly if the test stopped it; the directory goes next (TempDir's drop).
        let _ = self.pg_ctl_stop().output();
    }
}

/// The newest PostgreSQL's server binaries: Debian's `/usr/lib/postgresql/MAJOR/bin`,
/// else the first directory on PATH that has them (other systems' packages).
fn server_binaries() -> PathBuf {
    let complete = |dir: &PathBuf| ["initdb", "pg_ctl", "psql"].iter().all(|p| dir.join(p).is_file());
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(str::parse::<u32>)
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| complete(bin))
        .max()
        .map(|(_, bin)| bin);
    let on_path = || std::env::split_paths(&std::env::var_os("PATH")?).find(complete);
    debian
        .or_else(on_path)
        .expect("PostgreSQL's server binaries (initdb, pg_ctl, psql) are missing: run bash scripts/setup.sh")
}

/// Whether this process runs as root: `/proc/self` belongs to the process's user.
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|process| process.uid() == 0)
}

/// Debian's `postgres` user (the package makes it), else `nobody`.
fn unprivileged_owner() -> Owner {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let find = |name: &str| {
        passwd
            .lines()
            .find_map(|line| match line.split(':').collect::<Vec<_>>()[..] {
                [user, _, uid, gid, ..] if user == name => Some(Owner {
                    uid: uid.parse().ok()?,
                    gid: gid.parse().ok()?,
                }),
                _ => None,
            })
    };
    find("postgres")
        .or_else(|| find("nobody"))
        .expect("a postgres or nobody user to run PostgreSQL as: it refuses to run as root")
}
