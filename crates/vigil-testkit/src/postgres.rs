//! A throwaway PostgreSQL: a fresh cluster from Debian's binaries in its own
//! temporary directory, listening on 127.0.0.1 and a free port, with fsync
//! off; stopped (`pg_ctl stop -m immediate`) and removed on drop.
//!
//! PostgreSQL refuses to run as root. When the tests run as root, `initdb`,
//! `pg_ctl` and `postgres` run as the unprivileged user `postgres` (created
//! by Debian's `postgresql` package) through `setpriv`, and the temporary
//! directory is handed to that user with `chown -R`.
//!
//! The superuser is `postgres` with the password [`SUPERUSER_PASSWORD`];
//! [`PgServer::psql`] connects as it over TCP. Connections through the unix
//! socket in [`PgServer::socket_dir`] are always trusted.
//!
//! ```no_run
//! use vigil_testkit::postgres::{Auth, PgServer};
//!
//! let pg = PgServer::builder().auth(Auth::ScramSha256).start().unwrap();
//! pg.create_user("alice", "s3cret").unwrap();
//! assert_eq!(pg.psql("SELECT 1").unwrap().trim(), "1");
//! ```

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{self, Launch};

/// The superuser's password, for TCP connections that need one.
pub const SUPERUSER_PASSWORD: &str = "vigil-test-superuser";
/// The superuser's name.
pub const SUPERUSER: &str = "postgres";
/// The unprivileged user the server runs as when the tests run as root.
const SERVER_USER: &str = "postgres";
/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How many lines of the server log an error shows.
const LOG_TAIL_LINES: usize = 40;

/// How host connections from 127.0.0.1 (and ::1) authenticate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    /// No password (`trust`).
    #[default]
    Trust,
    /// MD5 challenge (`md5`); passwords are stored as MD5 hashes
    /// (`password_encryption = md5`), so the MD5 exchange really happens.
    Md5,
    /// SCRAM-SHA-256 (`scram-sha-256`).
    ScramSha256,
    /// Cleartext password (`password`).
    Password,
}

impl Auth {
    /// The method's name in `pg_hba.conf`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Auth::Trust => "trust",
            Auth::Md5 => "md5",
            Auth::ScramSha256 => "scram-sha-256",
            Auth::Password => "password",
        }
    }
}

/// The server's TLS certificate and key (PEM files), and the CA that
/// client certificates must chain to, if any.
///
/// The files are copied into the data directory (the key with mode 0600,
/// owned by the server's user), so the originals may be anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    /// The server certificate (`ssl_cert_file`), PEM.
    pub cert: PathBuf,
    /// Its private key (`ssl_key_file`), PEM.
    pub key: PathBuf,
    /// The CA for client certificates (`ssl_ca_file`), PEM.
    pub client_ca: Option<PathBuf>,
}

impl ServerTls {
    /// A certificate and key, without client certificates.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> ServerTls {
        ServerTls {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
        }
    }

    /// Also asks clients for certificates issued by `ca`.
    pub fn with_client_ca(mut self, ca: impl Into<PathBuf>) -> ServerTls {
        self.client_ca = Some(ca.into());
        self
    }
}

/// Options for [`PgServer`]; see [`PgServer::builder`].
#[derive(Clone, Debug)]
pub struct PgServerBuilder {
    auth: Auth,
    hba: Option<Vec<String>>,
    tls: Option<ServerTls>,
    settings: Vec<(String, String)>,
    max_connections: u32,
}

impl PgServerBuilder {
    /// How host connections from 127.0.0.1 authenticate; `trust` by default.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Replaces the host rules of `pg_hba.conf` with `lines` (e.g.
    /// `hostssl all all 127.0.0.1/32 cert`); [`auth`](Self::auth) is then
    /// ignored. A first rule `local all all trust` keeps the unix socket
    /// open for [`PgServer::psql_socket`].
    pub fn hba<I, S>(mut self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.hba = Some(lines.into_iter().map(Into::into).collect());
        self
    }

    /// Turns TLS on (`ssl = on`) with these files.
    pub fn tls(mut self, tls: &ServerTls) -> Self {
        self.tls = Some(tls.clone());
        self
    }

    /// Sets `name = 'value'` in `postgresql.conf`, after (so overriding)
    /// every setting the builder makes itself.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// `max_connections`; 200 by default.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Creates the cluster, starts the server and waits until it accepts
    /// connections (at most 30 s).
    ///
    /// Fails if the PostgreSQL binaries are missing (run `./scripts/test`,
    /// which installs the Debian package `postgresql`), if `initdb` fails,
    /// or if the server does not start; the error then shows the end of the
    /// server log.
    pub fn start(self) -> io::Result<PgServer> {
        let bindir = bindir()?;
        let run_as = if is_root() {
            Some(SERVER_USER.to_owned())
        } else {
            None
        };
        let dir = crate::tempdir();
        let data = dir.path().join("data");
        let socket_dir = dir.path().join("socket");
        let log = dir.path().join("server.log");
        let pwfile = dir.path().join("superuser-password");
        fs::create_dir(&socket_dir)?;
        fs::write(&pwfile, format!("{SUPERUSER_PASSWORD}\n"))?;
        if let Some(user) = &run_as {
            hand_over(dir.path(), user)?;
        }

        let mut initdb = server_command(&run_as, &bindir.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", SUPERUSER, "--no-sync", "-E", "UTF8"])
            .arg("--locale=C")
            .arg(format!("--pwfile={}", pwfile.display()))
            .current_dir(dir.path());
        check_output(&mut initdb, "initdb")?;
        fs::remove_file(&pwfile)?;

        let mut conf = String::from("\n# vigil-testkit\n");
        let mut set = |name: &str, value: &str| {
            let _ = writeln!(conf, "{name} = '{}'", value.replace('\'', "''"));
        };
        set("listen_addresses", "127.0.0.1");
        set("unix_socket_directories", &socket_dir.to_string_lossy());
        set("max_connections", &self.max_connections.to_string());
        set("fsync", "off");
        set("synchronous_commit", "off");
        set("full_page_writes", "off");
        set("logging_collector", "off");
        if self.auth == Auth::Md5 {
            set("password_encryption", "md5");
        }
        if let Some(tls) = &self.tls {
            let copy = |from: &Path, name: &str| -> io::Result<String> {
                let to = data.join(name);
                fs::copy(from, &to).map_err(|e| {
                    io::Error::new(e.kind(), format!("copy {}: {e}", from.display()))
                })?;
                fs::set_permissions(&to, fs::Permissions::from_mode(0o600))?;
                Ok(to.to_string_lossy().into_owned())
            };
            set("ssl", "on");
            set("ssl_cert_file", &copy(&tls.cert, "server.crt")?);
            set("ssl_key_file", &copy(&tls.key, "server.key")?);
            if let Some(ca) = &tls.client_ca {
                set("ssl_ca_file", &copy(ca, "client-ca.crt")?);
            }
        }
        for (name, value) in &self.settings {
            set(name, value);
        }
        append(&data.join("postgresql.conf"), &conf)?;

        let mut hba = String::from("local all all trust\n");
        match &self.hba {
            Some(lines) => {
                for line in lines {
                    hba.push_str(line);
                    hba.push('\n');
                }
            }
            None => {
                let method = self.auth.as_str();
                let _ = writeln!(hba, "host all all 127.0.0.1/32 {method}");
                let _ = writeln!(hba, "host all all ::1/128 {method}");
            }
        }
        fs::write(data.join("pg_hba.conf"), hba)?;
        if let Some(user) = &run_as {
            hand_over(&data, user)?;
        }

        let mut server = PgServer {
            child: None,
            port: 0,
            bindir,
            run_as,
            data,
            socket_dir,
            log,
            dir,
        };
        daemon::retry("postgres", Duration::ZERO, || {
            server.launch(crate::free_port())
        })?;
        Ok(server)
    }
}

/// A running PostgreSQL, stopped and deleted when dropped.
#[derive(Debug)]
pub struct PgServer {
    child: Option<Child>,
    port: u16,
    bindir: PathBuf,
    run_as: Option<String>,
    data: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl PgServer {
    /// Options: authentication, `pg_hba.conf`, TLS, settings.
    pub fn builder() -> PgServerBuilder {
        PgServerBuilder {
            auth: Auth::Trust,
            hba: None,
            tls: None,
            settings: Vec::new(),
            max_connections: 200,
        }
    }

    /// Starts a server with the default options (`trust`, no TLS).
    pub fn start() -> io::Result<PgServer> {
        PgServer::builder().start()
    }

    /// Starts `postgres` on `port` and waits until it accepts connections.
    fn launch(&mut self, port: u16) -> Result<(), Launch> {
        self.port = port;
        let log_start = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(Launch::Failed)?;
        let stderr = log_file.try_clone().map_err(Launch::Failed)?;
        let mut cmd = server_command(&self.run_as, &self.bindir.join("postgres"));
        cmd.arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(port.to_string())
            .current_dir(&self.data)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(stderr);
        let child = cmd
            .spawn()
            .map_err(|e| Launch::Failed(io::Error::new(e.kind(), format!("spawn {cmd:?}: {e}"))))?;
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let log = self.log_since(log_start);
                let err = io::Error::other(format!(
                    "postgres exited with {status} while starting; the end of its log:\n{}",
                    tail(&log)
                ));
                return Err(
                    if log.contains("could not bind") || log.contains("already in use") {
                        Launch::PortTaken(err)
                    } else {
                        Launch::Failed(err)
                    },
                );
            }
            if self.is_ready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(Launch::Failed(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "postgres did not accept connections within {} s; the end of its log:\n{}",
                        START_TIMEOUT.as_secs(),
                        tail(&self.log_since(log_start))
                    ),
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True when `pg_isready` says the server accepts connections.
    fn is_ready(&self) -> bool {
        let program = self.bindir.join("pg_isready");
        let mut cmd = Command::new(program);
        clear_pg_env(&mut cmd);
        cmd.args([
            "-q",
            "-t",
            "1",
            "-h",
            "127.0.0.1",
            "-U",
            SUPERUSER,
            "-d",
            "postgres",
        ])
        .arg("-p")
        .arg(self.port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The directory of its unix socket (`.s.PGSQL.PORT`): a `host` for
    /// libpq.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The directory holding the PostgreSQL programs it was started from.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The text of the server log so far.
    pub fn log(&self) -> String {
        self.log_since(0)
    }

    fn log_since(&self, offset: u64) -> String {
        let bytes = fs::read(&self.log).unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(0).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// `psql -X -A -t -q -w -v ON_ERROR_STOP=1` with `PGHOST=127.0.0.1`,
    /// `PGPORT`, `PGUSER=postgres` and `PGDATABASE=postgres` and no other
    /// `PG*` variable (so no password): add arguments, a connection string
    /// or `PGPASSWORD` as the test needs. `-w` makes it fail instead of
    /// prompting when a password is needed and none is given.
    pub fn psql_command(&self) -> Command {
        let program = crate::find_program("psql", &[&self.bindir, Path::new("/usr/bin")])
            .unwrap_or_else(|| self.bindir.join("psql"));
        let mut cmd = Command::new(program);
        clear_pg_env(&mut cmd);
        cmd.args(["-X", "-A", "-t", "-q", "-w", "-v", "ON_ERROR_STOP=1"])
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", SUPERUSER)
            .env("PGDATABASE", "postgres")
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGPASSFILE", self.dir.path().join("no-pgpass"));
        cmd
    }

    /// Runs `sql` (one or more statements) with psql as the superuser over
    /// TCP and returns what it printed: unaligned rows without headers, one
    /// per line. Fails with psql's error output when a statement fails.
    pub fn psql(&self, sql: &str) -> io::Result<String> {
        let mut cmd = self.psql_command();
        cmd.env("PGPASSWORD", SUPERUSER_PASSWORD);
        run_sql(&mut cmd, sql)
    }

    /// Like [`psql`](Self::psql), but through the unix socket, which is
    /// always trusted: for setup when the `pg_hba.conf` rules keep the
    /// superuser out over TCP.
    pub fn psql_socket(&self, sql: &str) -> io::Result<String> {
        let mut cmd = self.psql_command();
        cmd.env("PGHOST", &self.socket_dir);
        run_sql(&mut cmd, sql)
    }

    /// Creates the login role `name` with `password` (stored as the
    /// server's `password_encryption` says: MD5 with [`Auth::Md5`], else
    /// SCRAM-SHA-256).
    pub fn create_user(&self, name: &str, password: &str) -> io::Result<()> {
        self.psql(&format!(
            "CREATE ROLE {} LOGIN PASSWORD {};",
            quote_ident(name),
            quote_literal(password)
        ))
        .map(drop)
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`; killed if that
    /// fails) and waits for it to exit. Does nothing the second time.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if !matches!(child.try_wait(), Ok(Some(_))) {
            let mut pg_ctl = server_command(&self.run_as, &self.bindir.join("pg_ctl"));
            pg_ctl
                .arg("-D")
                .arg(&self.data)
                .args(["stop", "-m", "immediate", "-w", "-t", "10"])
                .current_dir(self.dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let stopped = pg_ctl.status().is_ok_and(|s| s.success());
            if !stopped {
                let _ = child.kill();
            }
        }
        let _ = child.wait();
    }

    /// Starts the server again after [`stop`](Self::stop), on the same port
    /// and data directory, and waits until it accepts connections (at most
    /// 30 s): what clients see when a database restarts. Does nothing while
    /// it runs.
    ///
    /// Fails if another process took the port in the meantime, or if the
    /// server does not start; the error then shows the end of the server
    /// log.
    pub fn start_again(&mut self) -> io::Result<()> {
        if let Some(child) = &mut self.child {
            if matches!(child.try_wait(), Ok(None)) {
                return Ok(());
            }
            self.child = None;
        }
        match self.launch(self.port) {
            Ok(()) => Ok(()),
            Err(Launch::PortTaken(e) | Launch::Failed(e)) => Err(e),
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `cmd` (psql) with `sql` on its standard input.
fn run_sql(cmd: &mut Command, sql: &str) -> io::Result<String> {
    let out = crate::run_with_stdin(cmd, sql.as_bytes());
    if out.status.success() {
        String::from_utf8(out.stdout).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    } else {
        Err(io::Error::other(format!(
            "psql failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        )))
    }
}

/// `name` as a double-quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `value` as a single-quoted SQL string literal
/// (`standard_conforming_strings` is on).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Removes every `PG*` variable from `cmd`'s environment, so the caller's
/// environment cannot redirect or authenticate it.
fn clear_pg_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
}

/// `program`, run as `user` through `setpriv` when given.
fn server_command(run_as: &Option<String>, program: &Path) -> Command {
    match run_as {
        Some(user) => {
            let mut cmd = Command::new(setpriv());
            cmd.arg(format!("--reuid={user}"))
                .arg(format!("--regid={user}"))
                .arg("--init-groups")
                .arg("--")
                .arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

fn setpriv() -> PathBuf {
    crate::find_program("setpriv", &[Path::new("/usr/bin"), Path::new("/bin")])
        .unwrap_or_else(|| PathBuf::from("setpriv"))
}

/// Runs `cmd`, failing with its output when it fails.
fn check_output(cmd: &mut Command, what: &str) -> io::Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("run {what} ({cmd:?}): {e}")))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(io::Error::other(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// `chown -R user: path`.
fn hand_over(path: &Path, user: &str) -> io::Result<()> {
    check_output(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{user}:"))
            .arg(path),
        "chown",
    )
    .map(drop)
    .map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "{e}\nas root, PostgreSQL runs as the user {user}, which the Debian \
                 package postgresql creates"
            ),
        )
    })
}

/// Appends `text` to the file at `path`.
fn append(path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write as _;
    fs::OpenOptions::new()
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

/// The last lines of `log`.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[from..].join("\n")
}

/// True when this process runs as root (its `/proc/self` is owned by uid
/// 0, or `id -u` says 0).
fn is_root() -> bool {
    if let Ok(meta) = fs::metadata("/proc/self") {
        return meta.uid() == 0;
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The directory of the PostgreSQL server programs: `$VIGIL_PG_BINDIR`,
/// else `pg_config --bindir` if it holds `initdb`, else the newest
/// `/usr/lib/postgresql/*/bin`, else the directory on `$PATH` with `initdb`.
fn bindir() -> io::Result<PathBuf> {
    let has_initdb = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("VIGIL_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        if has_initdb(&dir) {
            return Ok(dir);
        }
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("VIGIL_PG_BINDIR={} has no initdb", dir.display()),
        ));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_initdb(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_initdb(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    if let Some(initdb) = crate::find_program("initdb", &[])
        && let Some(dir) = initdb.parent()
        && has_initdb(dir)
    {
        return Ok(dir.to_path_buf());
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "the PostgreSQL server programs (initdb, postgres) are not installed (looked at \
         pg_config --bindir, /usr/lib/postgresql/*/bin and $PATH); run ./scripts/test, which \
         installs the Debian package postgresql",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn tails_logs() {
        let log: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let t = tail(&log);
        assert!(t.starts_with("line 60\n"), "{t}");
        assert!(t.ends_with("line 99"), "{t}");
        assert_eq!(tail("one"), "one");
    }

    #[test]
    fn finds_the_server_programs() {
        let dir = bindir().unwrap();
        assert!(dir.join("initdb").is_file());
    }
}
