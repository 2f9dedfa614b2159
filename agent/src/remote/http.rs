//! The transport of the remote API: HTTPS only (TLS 1.2 or newer, rustls), the system's
//! roots plus `tls_server_certs`, an optional client certificate, JSON both ways.
//!
//! osquery's rules for a reply: the HTTP status is not what decides, the body is. A body that
//! is not a JSON object is an error naming the status; the caller looks at `node_invalid`
//! and `error` ([`super::Remote::request`]).

use std::{io::Write as _, time::Duration};

use serde_json::{Map, Value};

use crate::flags::Flags;

/// Longest wait for one request (connect, send, reply).
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest reply read (a config with many packs is a few MB); a longer one is an error.
const MAX_REPLY: usize = 64 << 20;

/// One HTTPS client for every endpoint on `tls_hostname`.
#[derive(Clone, Debug)]
pub struct Http {
    client: reqwest::Client,
    base: String,
}

/// Why a request had no usable reply.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The settings cannot make a client (a certificate file that is missing or bad).
    #[error("{0}")]
    Setup(String),
    /// No reply: connection, TLS (a certificate that does not verify) or timeout.
    #[error("{0}")]
    Transport(String),
    /// A reply that is not a JSON object.
    #[error("HTTP {status}: the reply is not a JSON object ({what})")]
    Body { status: u16, what: String },
}

/// The full chain of an error's causes, `: `-separated (reqwest's top message alone says
/// only "error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn read_pem(flags: &Flags, name: &str) -> Result<Option<Vec<u8>>, HttpError> {
    match flags.path(name) {
        None => Ok(None),
        Some(p) => std::fs::read(&p)
            .map(Some)
            .map_err(|e| HttpError::Setup(format!("--{name}={}: {e}", p.display()))),
    }
}

impl Http {
    /// The client for `tls_hostname` with the TLS flags; the user agent names the osquery
    /// version whose API this speaks, then Osprey's own.
    pub fn new(flags: &Flags) -> Result<Self, HttpError> {
        let host = flags.get("tls_hostname").trim();
        if host.is_empty() {
            return Err(HttpError::Setup("--tls_hostname is empty".into()));
        }
        if host.contains("://") || host.contains('/') {
            return Err(HttpError::Setup(format!(
                "--tls_hostname={host}: give host[:port] only (the API is HTTPS only; paths go in the *_tls_endpoint flags)"
            )));
        }
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(true)
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .user_agent(format!(
                "osquery/{} osprey/{}",
                crate::sql::OSQUERY_COMPAT,
                env!("CARGO_PKG_VERSION")
            ))
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10));
        if flags.bool("tls_session_reuse") {
            b = b.pool_idle_timeout(Duration::from_secs(flags.u64("tls_session_timeout").max(1)));
        } else {
            b = b.pool_max_idle_per_host(0);
        }
        if let Some(pem) = read_pem(flags, "tls_server_certs")? {
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| HttpError::Setup(format!("--tls_server_certs: {}", chain(&e))))?;
            if certs.is_empty() {
                return Err(HttpError::Setup(
                    "--tls_server_certs: no PEM certificate in the file".into(),
                ));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        match (
            read_pem(flags, "tls_client_cert")?,
            read_pem(flags, "tls_client_key")?,
        ) {
            (Some(mut cert), Some(key)) => {
                cert.push(b'\n');
                cert.extend_from_slice(&key);
                let id = reqwest::Identity::from_pem(&cert).map_err(|e| {
                    HttpError::Setup(format!("--tls_client_cert/--tls_client_key: {}", chain(&e)))
                })?;
                b = b.identity(id);
            }
            (None, None) => {}
            _ => {
                return Err(HttpError::Setup(
                    "--tls_client_cert and --tls_client_key go together".into(),
                ));
            }
        }
        let proxy = flags.get("proxy_hostname").trim();
        if !proxy.is_empty() {
            let p = reqwest::Proxy::https(format!("http://{proxy}"))
                .map_err(|e| HttpError::Setup(format!("--proxy_hostname: {}", chain(&e))))?;
            b = b.proxy(p);
        } else {
            b = b.no_proxy();
        }
        let client = b
            .build()
            .map_err(|e| HttpError::Setup(format!("the HTTPS client: {}", chain(&e))))?;
        Ok(Self {
            client,
            base: format!("https://{host}"),
        })
    }

    /// The URL of `endpoint` (a path on `tls_hostname`).
    pub fn url(&self, endpoint: &str) -> String {
        if endpoint.starts_with('/') {
            format!("{}{endpoint}", self.base)
        } else {
            format!("{}/{endpoint}", self.base)
        }
    }

    /// POSTs `body` as JSON (gzipped when `gzip`), with `Authorization: NodeKey <key>` when
    /// a key is given; returns the status and the reply object.
    pub async fn post(
        &self,
        endpoint: &str,
        body: &Value,
        node_key: Option<&str>,
        gzip: bool,
    ) -> Result<(u16, Map<String, Value>), HttpError> {
        let bytes = serde_json::to_vec(body).map_err(|e| HttpError::Setup(e.to_string()))?;
        let mut req = self
            .client
            .post(self.url(endpoint))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(k) = node_key {
            req = req.header(reqwest::header::AUTHORIZATION, format!("NodeKey {k}"));
        }
        req = if gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&bytes)
                .and_then(|()| enc.finish())
                .map(|z| {
                    req.header(reqwest::header::CONTENT_ENCODING, "gzip")
                        .body(z)
                })
                .map_err(|e| HttpError::Setup(format!("gzip: {e}")))?
        } else {
            req.body(bytes)
        };
        let reply = req
            .send()
            .await
            .map_err(|e| HttpError::Transport(format!("{}: {}", self.url(endpoint), chain(&e))))?;
        let status = reply.status().as_u16();
        let mut reply = reply;
        let mut text = Vec::new();
        while let Some(chunk) = reply
            .chunk()
            .await
            .map_err(|e| HttpError::Transport(format!("{}: {}", self.url(endpoint), chain(&e))))?
        {
            if text.len() + chunk.len() > MAX_REPLY {
                return Err(HttpError::Body {
                    status,
                    what: format!("longer than {MAX_REPLY} bytes"),
                });
            }
            text.extend_from_slice(&chunk);
        }
        reply_object(status, &text).map(|m| (status, m))
    }
}

/// A reply body as the object osquery requires (anything else is an error naming `status`).
pub fn reply_object(status: u16, body: &[u8]) -> Result<Map<String, Value>, HttpError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(HttpError::Body {
            status,
            what: format!("a JSON {}", kind(&other)),
        }),
        Err(e) => Err(HttpError::Body {
            status,
            what: e.to_string(),
        }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut f = Flags::default();
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        f.parse_args(&args, crate::flags::Source::CommandLine)
            .unwrap();
        f
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        assert_eq!(
            Http::new(&flags(&[])).unwrap_err(),
            HttpError::Setup("--tls_hostname is empty".into())
        );
        assert!(matches!(
            Http::new(&flags(&["--tls_hostname=http://fleet:8080"])).unwrap_err(),
            HttpError::Setup(m) if m.contains("host[:port] only")
        ));
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("ca.pem");
        let err = Http::new(&flags(&[
            "--tls_hostname=fleet:8080",
            &format!("--tls_server_certs={}", missing.display()),
        ]))
        .unwrap_err();
        assert!(
            matches!(&err, HttpError::Setup(m) if m.starts_with("--tls_server_certs=") && m.contains("No such file")),
            "{err}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err = Http::new(&flags(&[
            "--tls_hostname=fleet:8080",
            &format!("--tls_server_certs={}", junk.display()),
        ]))
        .unwrap_err();
        assert_eq!(
            err,
            HttpError::Setup("--tls_server_certs: no PEM certificate in the file".into())
        );
        let err = Http::new(&flags(&[
            "--tls_hostname=fleet:8080",
            &format!("--tls_client_cert={}", junk.display()),
        ]))
        .unwrap_err();
        assert_eq!(
            err,
            HttpError::Setup("--tls_client_cert and --tls_client_key go together".into())
        );
    }

    #[test]
    fn endpoints_are_paths_on_the_host() {
        let h = Http::new(&flags(&["--tls_hostname=fleet.example:8412"])).unwrap();
        assert_eq!(
            h.url("/api/v1/osquery/enroll"),
            "https://fleet.example:8412/api/v1/osquery/enroll"
        );
        assert_eq!(h.url("log"), "https://fleet.example:8412/log");
    }
}
