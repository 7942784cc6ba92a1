//! Real processes for tests: `hearth master` and `hearth worker` started from the built
//! binary on ephemeral ports, each with its own directory and log file, killed on drop.

pub use crate::wait::wait_for;
use crate::wait::{TimedOut, Wait};
pub use hearth_client::SleepingApp;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A binary built by this workspace (`hearth`, `hearth-pi`), next to the test executable.
/// `cargo test --workspace` builds them; `HEARTH_BIN_DIR` overrides the directory.
pub fn bin(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("HEARTH_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// For a benchmark binary: the `hearth` binary is the one next to it
/// (`target/<profile>/`), unless `HEARTH_BIN_DIR` says otherwise.
pub fn bins_next_to_me() {
    if std::env::var_os("HEARTH_BIN_DIR").is_none() {
        if let Some(d) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            std::env::set_var("HEARTH_BIN_DIR", d);
        }
    }
}

/// Tests that start a whole cluster (or JVMs on every worker) take turns within their
/// test binary: several at once on a 2-core machine time each other out and call
/// spurious elections.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh directory under the system temp dir; removed on drop unless the test failed
/// (then its logs stay for a person to read).
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hearth-test-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test dir");
        TestDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A child process killed (SIGKILL) when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
    lines: Option<std::sync::mpsc::Receiver<String>>,
}

impl Proc {
    pub fn spawn(name: &str, program: &Path, args: &[String], log: PathBuf) -> Proc {
        Self::spawn_env(name, program, args, &[], log)
    }

    /// [`Proc::spawn`] with more environment variables.
    pub fn spawn_env(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Proc {
        let file = std::fs::File::create(&log).expect("create log");
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .env("HEARTH_LOG", "info,openraft=off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Proc {
            name: name.to_owned(),
            child,
            log,
            lines: None,
        }
    }

    /// A child started elsewhere, logging to `log`.
    pub fn from_child(name: &str, child: Child, log: PathBuf) -> Proc {
        Proc {
            name: name.to_owned(),
            child,
            log,
            lines: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.pid() as i32, sig) };
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait up to `timeout` for it to exit.
    pub fn stop(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.signal(libc::SIGTERM);
        Wait::new(format!("{} to exit", self.name), timeout)
            .until(|| self.child.try_wait().ok().flatten())
            .ok()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The next line of stdout, within `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> String {
        if self.lines.is_none() {
            let out = self.child.stdout.take().expect("stdout piped");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
            self.lines = Some(rx);
        }
        let rx = self.lines.as_ref().expect("set above");
        rx.recv_timeout(timeout).unwrap_or_else(|_| {
            panic!(
                "{} printed no line within {timeout:?}; log:\n{}",
                self.name,
                self.log_text()
            )
        })
    }

    /// Reads `KEY=value` lines from stdout until every key has been seen.
    pub fn announced(&mut self, keys: &[&str], timeout: Duration) -> Vec<String> {
        let mut found: Vec<Option<String>> = vec![None; keys.len()];
        let deadline = Instant::now() + timeout;
        while found.iter().any(Option::is_none) {
            let line = self.next_line(deadline.saturating_duration_since(Instant::now()));
            for (i, k) in keys.iter().enumerate() {
                if let Some(v) = line.strip_prefix(&format!("{k}=")) {
                    found[i] = Some(v.to_owned());
                }
            }
        }
        found.into_iter().map(Option::unwrap).collect()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = self.log_text();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            eprintln!("--- last lines of {} ({}):", self.name, self.log.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        self.kill9();
    }
}

/// A running master: its process, `hearth://` URL and HTTP base URL.
pub struct MasterProc {
    pub proc: Proc,
    pub url: String,
    pub ui: String,
}

impl MasterProc {
    /// A master on free ports, with `extra` flags.
    pub fn start(dir: &Path, extra: &[&str]) -> MasterProc {
        Self::start_with(dir, &[&["--port", "0", "--http-port", "0"], extra].concat())
    }

    /// A master with exactly these flags after `hearth master`. Each start logs to a
    /// new `master-N.log` in `dir`.
    pub fn start_with(dir: &Path, flags: &[&str]) -> MasterProc {
        static STARTS: AtomicU32 = AtomicU32::new(0);
        let mut args: Vec<String> = vec!["master".into()];
        args.extend(flags.iter().map(|s| s.to_string()));
        let log = dir.join(format!(
            "master-{}.log",
            STARTS.fetch_add(1, Ordering::SeqCst)
        ));
        let mut proc = Proc::spawn("master", &bin("hearth"), &args, log);
        let v = proc.announced(&["HEARTH_MASTERS", "HEARTH_UI"], Duration::from_secs(20));
        MasterProc {
            proc,
            url: v[0].clone(),
            ui: v[1].clone(),
        }
    }

    /// `GET /json`.
    pub fn json(&self) -> Value {
        let (code, body) = http_get(&format!("{}/json", self.ui)).expect("GET /json");
        assert_eq!(code, 200, "GET /json answered {code}: {body}");
        serde_json::from_str(&body).expect("/json is JSON")
    }

    /// The `/json` entry of an app (active or completed).
    pub fn app(&self, id: &str) -> Option<Value> {
        let j = self.json();
        ["activeapps", "completedapps"]
            .iter()
            .filter_map(|k| j[*k].as_array())
            .flatten()
            .find(|a| a["id"] == id)
            .cloned()
    }

    /// Fails the test if the master logged an ERROR line.
    pub fn assert_no_errors(&self) {
        let text = self.proc.log_text();
        let errors: Vec<&str> = text.lines().filter(|l| l.contains(" ERROR ")).collect();
        assert!(
            errors.is_empty(),
            "master logged errors:\n{}",
            errors.join("\n")
        );
    }
}

/// Starts a worker with `cores` cores and 4 GiB against `masters`, heartbeating every
/// 200 ms; its work dir is `dir/<name>`.
pub fn start_worker(dir: &Path, name: &str, masters: &str, cores: u32, extra: &[&str]) -> Proc {
    start_worker_beating(dir, name, masters, cores, "200ms", extra)
}

/// [`start_worker`] heartbeating every `heartbeat` (`100ms`).
pub fn start_worker_beating(
    dir: &Path,
    name: &str,
    masters: &str,
    cores: u32,
    heartbeat: &str,
    extra: &[&str],
) -> Proc {
    let work = dir.join(name);
    std::fs::create_dir_all(&work).expect("work dir");
    let mut args: Vec<String> = vec![
        "worker".into(),
        "--masters".into(),
        masters.into(),
        "--cores".into(),
        cores.to_string(),
        "--memory".into(),
        "4g".into(),
        "--work-dir".into(),
        work.to_string_lossy().into_owned(),
        "--heartbeat-interval".into(),
        heartbeat.into(),
        "--kill-grace".into(),
        "2s".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Proc::spawn(name, &bin("hearth"), &args, dir.join(format!("{name}.log")))
}

/// The secret file of each cluster a test started with one (`hearth local` makes one),
/// by its `HEARTH_MASTERS` URL: the CLI helpers below pass it on.
static SECRETS: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());

/// Remembers that the cluster at `masters` wants the secret in `file`.
pub fn remember_secret(masters: &str, file: &Path) {
    let mut s = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    s.retain(|(m, _)| m != masters);
    s.push((masters.to_owned(), file.to_path_buf()));
}

/// The secret file of the cluster at `masters`, if it has one.
pub fn secret_of(masters: &str) -> Option<PathBuf> {
    let s = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    s.iter().find(|(m, _)| m == masters).map(|(_, f)| f.clone())
}

/// The TLS files of each cluster a test started with `--tls`, by its `HEARTH_MASTERS`.
static TLS: std::sync::Mutex<Vec<(String, hearth_proto::tls::TlsFiles)>> =
    std::sync::Mutex::new(Vec::new());

/// Remembers that the cluster at `masters` speaks mutual TLS with `files`: the CLI
/// helpers below pass them on.
pub fn remember_tls(masters: &str, files: &hearth_proto::tls::TlsFiles) {
    let mut s = TLS.lock().unwrap_or_else(|e| e.into_inner());
    s.retain(|(m, _)| m != masters);
    s.push((masters.to_owned(), files.clone()));
}

fn tls_of(masters: &str) -> Option<hearth_proto::tls::TlsFiles> {
    let s = TLS.lock().unwrap_or_else(|e| e.into_inner());
    s.iter().find(|(m, _)| m == masters).map(|(_, f)| f.clone())
}

/// Runs the `hearth` CLI to completion (at most 60 s) with `HEARTH_MASTERS` set.
pub fn hearth(masters: &str, args: &[&str]) -> Output {
    hearth_within(masters, args, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the `hearth` CLI with `HEARTH_MASTERS` set and its log at `warn` (its default,
/// whatever the environment says); its output, or an error if it does not finish within
/// `timeout` (it is killed then). Looks every 2 ms: a benchmark timing a CLI call loses
/// at most that.
pub fn hearth_within(masters: &str, args: &[&str], timeout: Duration) -> Result<Output, TimedOut> {
    let mut cmd = Command::new(bin("hearth"));
    if let Some(secret) = secret_of(masters) {
        cmd.env("HEARTH_SECRET_FILE", secret);
    }
    if let Some(tls) = tls_of(masters) {
        cmd.env("HEARTH_TLS_CERT", tls.cert)
            .env("HEARTH_TLS_KEY", tls.key)
            .env("HEARTH_TLS_CA", tls.ca);
    }
    let mut child = cmd
        .args(args)
        .env("HEARTH_MASTERS", masters)
        .env("HEARTH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hearth");
    let exited = Wait::new(format!("`hearth {}` to finish", args.join(" ")), timeout)
        .every(Duration::from_millis(2))
        .until(|| child.try_wait().expect("try_wait"));
    if let Err(e) = exited {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok(child.wait_with_output().expect("output"))
}

/// `hearth master --port 0 --http-port 0 FLAGS`, expected to refuse to start: its
/// stderr (it panics if the master started).
pub fn master_refuses(flags: &[&str]) -> String {
    let args = [&["master", "--port", "0", "--http-port", "0"], flags].concat();
    let out = hearth("hearth://127.0.0.1:1", &args);
    assert!(!out.status.success(), "the master started with {flags:?}");
    stderr(&out)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A minimal HTTP/1.0 GET (no client library needed for a local status endpoint).
pub fn http_get(url: &str) -> std::io::Result<(u16, String)> {
    http_request("GET", url, &[], "")
}

/// A minimal HTTP/1.0 request with `headers` and `body`: the status and the body.
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    write!(s, "{head}\r\n{body}")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let code = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// A benchmark's `--name value` argument, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `hearth submit` with `args`; panics unless it succeeds. Returns its stdout lines
/// (the app id, then the driver id in cluster mode).
pub fn submit(masters: &str, args: &[&str]) -> Vec<String> {
    let out = hearth(masters, &[&["submit"], args].concat());
    assert!(out.status.success(), "submit failed: {}", stderr(&out));
    stdout(&out).lines().map(str::to_owned).collect()
}

/// `hearth submit` of `app`; panics unless it succeeds. Returns its stdout lines (the app
/// id, then the driver id in cluster mode).
pub fn submit_app(masters: &str, app: &SleepingApp) -> Vec<String> {
    let args = app.submit_args();
    submit(
        masters,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

/// A client-mode `hearth submit` of `app` left running in the background: its driver
/// runs under it and its executors run on the workers. Returns the process and the app
/// id it printed.
pub fn client_app_in_background(dir: &Path, masters: &str, app: &SleepingApp) -> (Proc, String) {
    let mut args: Vec<String> = vec!["submit".into(), "--master".into(), masters.into()];
    args.extend(app.submit_args());
    let mut submitter = Proc::spawn("submit", &bin("hearth"), &args, dir.join("submit.log"));
    let app = submitter.next_line(Duration::from_secs(30));
    assert!(app.starts_with("app-"), "submit printed {app:?}");
    (submitter, app)
}

/// [`http_get`] of an `http://` URL, or [`https_get`] of an `https://` one showing the
/// cluster's certificate (`tls`).
pub fn get_over(
    url: &str,
    tls: Option<&hearth_proto::tls::TlsFiles>,
) -> Result<(u16, String), String> {
    match tls {
        Some(t) if url.starts_with("https://") => https_get(url, &t.ca, Some((&t.cert, &t.key))),
        _ => http_get(url).map_err(|e| e.to_string()),
    }
}

/// A minimal HTTPS GET over HTTP/1.1 (ALPN `http/1.1`, as a script or browser without
/// HTTP/2 speaks), trusting `ca` and showing `client` (certificate, key) if given: the
/// status and body, or why the connection failed.
pub fn https_get(
    url: &str,
    ca: &Path,
    client: Option<(&Path, &Path)>,
) -> Result<(u16, String), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::io::{Read, Write};
    let rest = url.strip_prefix("https://").ok_or("not https")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| e.to_string())? {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| e.to_string())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| e.to_string())?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect(authority).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // Some servers close without close_notify once the answer is out.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status")?;
    Ok((code, body.to_owned()))
}
