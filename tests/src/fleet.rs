//! The project's test server for the TLS remote API (`tests/fleet/server.py`) and the
//! certificates it and the agent use (made with the `openssl` command for each test).

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::scaled;

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian openssl, installed by cargo xtask setup)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority and the server and client certificates it signed.
#[derive(Debug)]
pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Certs {
    /// Makes a CA named `name` and its leaf certificates in `dir` (server: 127.0.0.1 and
    /// localhost).
    pub fn make(dir: &Path, name: &str) -> Self {
        std::fs::create_dir_all(dir).expect("cert dir");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509", "-days", "2"];
        ca.extend(ec);
        let subj = format!("/CN={name} test CA");
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&ca, dir);
        for (who, ext) in [
            (
                "server",
                "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            ),
            (
                "client",
                "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
            ),
        ] {
            let (key, csr, pem, extf) = (
                format!("{who}.key"),
                format!("{who}.csr"),
                format!("{who}.pem"),
                format!("{who}.ext"),
            );
            std::fs::write(dir.join(&extf), ext).expect("ext file");
            let subj = format!("/CN={who}");
            let mut req = vec!["req", "-new"];
            req.extend(ec);
            req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(&req, dir);
            openssl(
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-out",
                    &pem,
                    "-extfile",
                    &extf,
                ],
                dir,
            );
        }
        Self {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}

/// The test server, stopped when dropped.
#[derive(Debug)]
pub struct FleetServer {
    child: Child,
    pub port: u16,
    pub state: PathBuf,
    pub secret: String,
}

impl FleetServer {
    /// Starts the server on a free loopback port with `certs`' server certificate;
    /// `mtls` requires client certificates signed by `certs`' CA.
    pub fn start(state: &Path, certs: &Certs, mtls: bool) -> Self {
        std::fs::create_dir_all(state).expect("state dir");
        let secret = "osprey-test-secret".to_owned();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fleet/server.py");
        let mut cmd = Command::new("python3");
        cmd.arg(&script)
            .arg("--state")
            .arg(state)
            .arg("--cert")
            .arg(&certs.server_cert)
            .arg("--key")
            .arg(&certs.server_key)
            .arg("--secret")
            .arg(&secret);
        if mtls {
            cmd.arg("--client-ca").arg(&certs.ca);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 tests/fleet/server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server's first line");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the test server said {line:?}"));
        Self {
            child,
            port,
            state: state.to_owned(),
            secret,
        }
    }

    /// The osqueryd flags Fleet's launcher passes, pointed at this server, plus the
    /// enrollment secret in a file.
    pub fn launcher_flags(&self, certs: &Certs) -> Vec<String> {
        let secret = self.state.join("secret.txt");
        std::fs::write(&secret, format!("{}\n", self.secret)).expect("secret file");
        [
            "--host_identifier=uuid".to_owned(),
            format!("--tls_hostname=127.0.0.1:{}", self.port),
            format!("--tls_server_certs={}", certs.ca.display()),
            format!("--enroll_secret_path={}", secret.display()),
            "--enroll_tls_endpoint=/api/v1/osquery/enroll".into(),
            "--config_plugin=tls".into(),
            "--config_tls_endpoint=/api/v1/osquery/config".into(),
            "--config_refresh=60".into(),
            "--disable_distributed=false".into(),
            "--distributed_plugin=tls".into(),
            "--distributed_tls_max_attempts=10".into(),
            "--distributed_tls_read_endpoint=/api/v1/osquery/distributed/read".into(),
            "--distributed_tls_write_endpoint=/api/v1/osquery/distributed/write".into(),
            "--logger_plugin=tls".into(),
            "--logger_tls_endpoint=/api/v1/osquery/log".into(),
            "--disable_carver=false".into(),
            "--carver_disable_function=false".into(),
            "--carver_start_endpoint=/api/v1/osquery/carve/begin".into(),
            "--carver_continue_endpoint=/api/v1/osquery/carve/block".into(),
            "--carver_block_size=2000000".into(),
        ]
        .into()
    }

    /// Writes a state file the server reads (`config.json`, `queries.json`, …).
    pub fn set(&self, name: &str, value: &Value) {
        let tmp = self.state.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, value.to_string()).expect("state file");
        std::fs::rename(&tmp, self.state.join(name)).expect("state file");
    }

    /// Creates (`on`) or removes a switch file (`down`, `invalidate`).
    pub fn switch(&self, name: &str, on: bool) {
        let p = self.state.join(name);
        if on {
            std::fs::write(&p, b"").expect("switch");
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }

    /// The objects the server appended to `name` so far.
    pub fn received(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.state.join(name))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Polls `name` until `done` holds for what was received (or the scaled `secs` pass).
    pub fn wait(&self, name: &str, secs: u64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + scaled(Duration::from_secs(secs));
        loop {
            let got = self.received(name);
            if done(&got) || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for FleetServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
