//! Test harness: starts the real `yiwang` binary on loopback and talks to it over HTTPS
//! with client certificates, as department systems do.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
pub mod linearizability;

pub mod cluster;
pub mod otlp;
pub mod proxy;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The `yiwang` binary under test: `YIWANG_BIN`, or the one cargo built next to the
/// test executable.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("YIWANG_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test-exe> → target/<profile>/yiwang
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = profile_dir.join("yiwang");
    assert!(
        bin.exists(),
        "the yiwang binary is not built at {}: run `cargo build -p yiwang-gateway` first (ops/test.sh does)",
        bin.display()
    );
    bin
}

/// A free loopback port (bound and released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running node started with `yiwang demo` in a temporary directory.
pub struct DemoNode {
    pub dir: PathBuf,
    pub port: u16,
    pub admin_port: u16,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
    log: PathBuf,
}

impl DemoNode {
    /// Starts a fresh demo node and waits until it is ready and seeded.
    pub fn start() -> DemoNode {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("demo");
        let mut node = DemoNode::start_in(&dir).expect("demo node starts");
        node._tmp = Some(tmp);
        node
    }

    /// Starts (or restarts) a demo node in `dir`.
    pub fn start_in(dir: &Path) -> Result<DemoNode> {
        let port = free_port();
        let admin_port = free_port();
        Self::start_on(dir, port, admin_port)
    }

    pub fn start_on(dir: &Path, port: u16, admin_port: u16) -> Result<DemoNode> {
        std::fs::create_dir_all(dir)?;
        let log = dir.join(format!("test-node-{port}.log"));
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(binary())
            .args(["demo", "--dir"])
            .arg(dir)
            .args([
                "--port",
                &port.to_string(),
                "--admin-port",
                &admin_port.to_string(),
            ])
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start yiwang")?;
        let mut node = DemoNode {
            dir: dir.to_path_buf(),
            port,
            admin_port,
            child: Some(child),
            _tmp: None,
            log,
        };
        node.wait_serving(Duration::from_secs(120))?;
        Ok(node)
    }

    /// Starts `yiwang serve --config CONFIG` (the config's listen/admin addresses must
    /// be 127.0.0.1:`port` / `admin_port`) and waits for `/readyz`.
    pub fn serve(dir: &Path, config: &Path, port: u16, admin_port: u16) -> Result<DemoNode> {
        let mut cmd = Command::new(binary());
        cmd.args(["serve", "--config"]).arg(config);
        Self::serve_command(dir, cmd, port, admin_port)
    }

    /// As [`serve`](Self::serve), with the command prepared by the caller (e.g. wrapped
    /// in `unshare` to give it a private mount).
    pub fn serve_command(
        dir: &Path,
        mut cmd: Command,
        port: u16,
        admin_port: u16,
    ) -> Result<DemoNode> {
        let log = dir.join(format!("test-serve-{port}.log"));
        let log_file = std::fs::File::create(&log)?;
        // Its own process group, so that stopping it also stops what a wrapper (e.g.
        // `faketime`, which forks rather than execs) started.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start yiwang serve")?;
        let node = DemoNode {
            dir: dir.to_path_buf(),
            port,
            admin_port,
            child: Some(child),
            _tmp: None,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", admin_port)) {
                use std::io::{Read, Write};
                let _ = write!(
                    s,
                    "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                );
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if buf.starts_with("HTTP/1.1 200") {
                    return Ok(node);
                }
            }
            if Instant::now() > deadline {
                bail!("yiwang serve not ready:\n{}", node.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Moves the temporary directory's ownership to `other` (so it outlives this node).
    pub fn hand_over_dir(&mut self, other: &mut DemoNode) {
        other._tmp = self._tmp.take();
    }

    /// Waits until the banner says the demo is serving (seeded and ready).
    fn wait_serving(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains("yiwang demo is serving") {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("yiwang exited with {status} before serving:\n{text}");
            }
            if Instant::now() > deadline {
                bail!("yiwang not serving after {timeout:?}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The node's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// CPU time (user + system) the node's process has used so far.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10))
    }

    /// The node's resident memory, from `/proc/<pid>/status`.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()?;
        Some(kb * 1024)
    }

    pub fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn certs(&self) -> PathBuf {
        self.dir.join("certs")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An HTTPS client presenting the demo principal `name`'s certificate.
    pub fn client(&self, name: &str) -> Api {
        let c = self.certs();
        Api::new(
            &self.base(),
            &c.join("ca.pem"),
            &c.join(format!("{name}.pem")),
            &c.join(format!("{name}.key")),
        )
    }

    /// Stops the node with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            signal_group(&child, "-TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            signal_group(&child, "-KILL");
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the node with SIGKILL (a crash), with anything its command started.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(&child, "-KILL");
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The folder of the node's audit segments.
    pub fn audit_dir(&self) -> PathBuf {
        self.dir.join("node-1").join("audit").join("node-1")
    }

    /// Stops this demo and serves its directory again on new ports, with its
    /// configuration changed by `edit` and written to `name`.
    pub fn serve_again(mut self, name: &str, edit: impl FnOnce(&mut toml::Value)) -> DemoNode {
        let (path, port, admin) = self.changed_config(name, edit);
        let mut node = DemoNode::serve(&self.dir, &path, port, admin).unwrap();
        self.hand_over_dir(&mut node);
        node
    }

    /// Stops this demo and serves it again with the config table `[table]` set to
    /// `values` (e.g. `("query", {"max_rows": 10})`).
    pub fn serve_with_table(self, table: &str, values: serde_json::Value) -> DemoNode {
        self.serve_again(&format!("{table}.toml"), |cfg| {
            cfg.as_table_mut()
                .unwrap()
                .insert(table.into(), toml::Value::try_from(values).unwrap());
        })
    }

    /// Waits for the node to go idle: a cancelled query must not keep computing.
    pub fn assert_idle(&self) {
        // Give a cancelled query's task a moment to reach its next await point on a busy
        // machine; a query still running would use far more than this.
        std::thread::sleep(Duration::from_millis(1500));
        let before = self.cpu_time().unwrap();
        std::thread::sleep(Duration::from_secs(2));
        let used = self.cpu_time().unwrap() - before;
        assert!(
            used < Duration::from_millis(600),
            "the node kept computing: {used:?} CPU in 2 s"
        );
    }

    /// Stops this demo and writes its configuration, changed by `edit` and given new
    /// ports, to `name`; returns its path and the ports.
    pub fn changed_config(
        &mut self,
        name: &str,
        edit: impl FnOnce(&mut toml::Value),
    ) -> (PathBuf, u16, u16) {
        self.stop();
        let config = std::fs::read_to_string(self.dir.join("node.toml")).unwrap();
        let mut cfg: toml::Value = toml::from_str(&config).unwrap();
        let (port, admin) = (free_port(), free_port());
        cfg["listen"] = toml::Value::String(format!("127.0.0.1:{port}"));
        cfg["admin_listen"] = toml::Value::String(format!("127.0.0.1:{admin}"));
        edit(&mut cfg);
        let path = self.dir.join(name);
        std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
        (path, port, admin)
    }

    /// The sum of the node's Prometheus samples named `name` whose labels contain
    /// `labels` (see [`prometheus_sum`]).
    pub fn metric(&self, name: &str, labels: &str) -> f64 {
        prometheus_sum(&self.admin_get("/metrics"), name, labels)
    }

    /// `GET /readyz` on the admin listener: status line and body.
    pub fn readyz(&self) -> String {
        self.admin_get("/readyz")
    }

    /// `GET path` on the admin listener (plain HTTP): the whole answer, status line and
    /// headers included; empty if the listener is down.
    pub fn admin_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.admin_port)) else {
            return String::new();
        };
        let _ = write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf
    }
}

/// The sum of the samples named `name` whose labels contain `labels` (e.g.
/// `result="cached"`; empty for any) in a Prometheus text exposition; 0 when there is
/// none.
pub fn prometheus_sum(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && rest.contains(labels)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// Sends `signal` to the process group a served node leads (see `serve_command`); a
/// demo started by `start_on` is not a group leader, and the call then finds no group.
fn signal_group(child: &std::process::Child, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
}

impl Drop for DemoNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A blocking-free HTTPS client for tests (its own small runtime per call site).
pub struct Api {
    pub base: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// The connection could not be made: the request was not sent.
    Connect(String),
    /// Timeout or reset after sending: it may or may not have taken effect.
    Other(String),
}

/// A response as a test sees it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    }

    /// The error code of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A TLS connection to 127.0.0.1:`port` with `cfg`, on the caller's runtime, for tests
/// that speak raw HTTP over it (a handshake's outcome, a stalled body); the error says
/// whether the connection or the handshake failed.
pub async fn tls_connect(
    port: u16,
    cfg: rustls::ClientConfig,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))
}

/// What a raw `GET /v1/whoami` over a new TLS connection got.
pub struct RawAnswer {
    pub version: rustls::ProtocolVersion,
    /// The server's certificate (DER).
    pub server_cert: Vec<u8>,
    /// The whole answer, status line first.
    pub text: String,
}

/// Sends `GET /v1/whoami` over a new TLS connection to 127.0.0.1:`port` configured by
/// `cfg` and reads the answer to its end; the error says whether connecting, the
/// handshake, writing or reading failed, or that the connection closed without an
/// answer (TLS 1.3 shows a refused client certificate only there).
pub fn raw_whoami(port: u16, cfg: rustls::ClientConfig) -> Result<RawAnswer, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut tls = tls_connect(port, cfg).await?;
        let version = tls.get_ref().1.protocol_version().unwrap();
        let server_cert = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        tls.write_all(b"GET /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if buf.is_empty() {
            return Err("connection closed without a response".into());
        }
        Ok(RawAnswer {
            version,
            server_cert,
            text: String::from_utf8_lossy(&buf).into_owned(),
        })
    })
}

/// The port of a node's API URL (`https://127.0.0.1:PORT`).
pub fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

pub fn tls_config(ca: &Path, cert: &Path, key: &Path) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let certs: Vec<_> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap()
}

impl Api {
    pub fn new(base: &str, ca: &Path, cert: &Path, key: &Path) -> Api {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(ca, cert, key))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Api {
            base: base.to_string(),
            http,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    pub fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        match self.try_send(req) {
            Ok(r) => r,
            Err(e) => panic!("request did not reach the node: {e:?}"),
        }
    }

    /// Sends a request; a failure says whether the request certainly never left
    /// (`Connect`) or its fate is unknown (`Other`: timeout, reset).
    pub fn try_send(&self, req: reqwest::RequestBuilder) -> Result<Resp, SendError> {
        self.rt.block_on(async {
            let r = req.send().await.map_err(|e| {
                if e.is_connect() {
                    SendError::Connect(e.to_string())
                } else {
                    SendError::Other(e.to_string())
                }
            })?;
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r
                .text()
                .await
                .map_err(|e| SendError::Other(e.to_string()))?;
            Ok(Resp {
                status,
                headers,
                body,
            })
        })
    }

    /// Runs `f` on this client's runtime: for a test that reads an answer piece by piece.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn try_get(&self, path: &str) -> Option<Resp> {
        self.try_send(
            self.req(reqwest::Method::GET, path)
                .timeout(Duration::from_secs(3)),
        )
        .ok()
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{}", self.base, path))
    }

    pub fn get(&self, path: &str) -> Resp {
        self.send(self.req(reqwest::Method::GET, path))
    }

    /// A data read with a purpose.
    pub fn read(&self, path: &str, purpose: &str) -> Resp {
        self.send(
            self.req(reqwest::Method::GET, path)
                .header("x-purpose", purpose),
        )
    }

    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(self.req(reqwest::Method::POST, path).json(body))
    }

    pub fn put(&self, path: &str, body: &Value) -> Resp {
        self.send(self.req(reqwest::Method::PUT, path).json(body))
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.send(self.req(reqwest::Method::DELETE, path))
    }
}

/// Percent-encodes a query-string value (everything but RFC 3986's unreserved
/// characters), e.g. Chinese search text.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A variable `ops/test.sh` sets for the tests (database URLs, the Python with the test
/// packages); its absence fails the test with how to set it, never skips it.
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with ops/test.sh (databases: `ops/testdb.sh start DIR && . DIR/env`; Python: `ops/test.sh` creates the venv and sets YIWANG_TEST_PYTHON and YIWANG_TEST_SCHEMATHESIS)"
        )
    })
}

/// Runs one of the Python helpers in `tests/python/` with the test venv's Python
/// (`YIWANG_TEST_PYTHON`, which has ckanapi and rdflib from PyPI); returns its stdout
/// parsed as JSON, failing the test with its stderr when it fails.
pub fn run_python(script: &str, args: &[&str]) -> Value {
    let python = required_env("YIWANG_TEST_PYTHON");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let out = Command::new(&python)
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed: {stderr}\n{stdout}");
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}\n{stderr}"))
}

/// Runs the CLI against a node, returning (exit code, stdout, stderr).
/// Runs a `yiwang` command that needs no node (certificates, offline tools): its exit
/// code and its stdout and stderr together.
pub fn cli_offline(args: &[&str]) -> (i32, String) {
    let out = Command::new(binary())
        .args(args)
        .output()
        .expect("run yiwang");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

pub fn cli(node: &DemoNode, principal: &str, args: &[&str]) -> (i32, String, String) {
    let c = node.certs();
    let out = Command::new(binary())
        .args(args)
        .env("YIWANG_SERVER", node.base())
        .env("YIWANG_CA", c.join("ca.pem"))
        .env("YIWANG_CERT", c.join(format!("{principal}.pem")))
        .env("YIWANG_KEY", c.join(format!("{principal}.key")))
        .output()
        .expect("run yiwang");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
