//! osquery's TLS remote API as Fleet serves it: enrollment and the node key ([`Remote`]),
//! the `tls` config plugin ([`config::TlsConfig`]), the `tls` logger ([`logger::TlsLogger`])
//! and distributed queries ([`distributed`]).
//!
//! Every request goes through [`Remote::request`], which adds the node key (enrolling first
//! when there is none), and reads the reply as osquery does: `"node_invalid": true` drops
//! the key and enrolls again (whatever the HTTP status), any `"error"` member fails the
//! request. The key is kept in the store's metadata, so a restart does not enroll again.
//!
//! The requests are async (reqwest on the control-plane runtime); the config service and
//! the log forwarder call them from `block_in_place` through [`Remote::block_on`].

pub mod carve;
pub mod config;
pub mod distributed;
pub mod http;
pub mod logger;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Map, Value, json};

use crate::{
    flags::Flags,
    sql::{Engine, TableEnv},
    storage::Store,
};

pub use http::{Http, HttpError};

/// Where the node key is kept (store metadata).
const KEY_META: &[u8] = b"remote.node_key";

/// osquery's `platform_type` for Linux: POSIX (0x01) | LINUX (0x08).
pub const PLATFORM_TYPE: &str = "9";

/// The tables whose first row is sent at enrollment, under their names.
const DETAIL_TABLES: &[&str] = &["os_version", "osquery_info", "system_info", "platform_info"];

/// Why a request failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RemoteError {
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The server answered `node_invalid` and enrolling again is off or did not help.
    #[error("the server says the node key is invalid (node_invalid){0}")]
    NodeInvalid(&'static str),
    /// The reply carried an `error` member.
    #[error("HTTP {status}: the server says: {message}")]
    Server { status: u16, message: String },
    /// No node key, and enrolling failed or is not allowed now.
    #[error("not enrolled: {0}")]
    NotEnrolled(String),
}

/// The enrollment state: the key, and when the next attempt is allowed after failures
/// (osquery's backoff: 1, 2, 4 … s, at most `tls_enroll_max_interval`).
#[derive(Debug, Default)]
struct KeyState {
    key: Option<String>,
    failures: u64,
    not_before: Option<Instant>,
    last_error: Option<String>,
}

/// Makes the `host_details` object of an enrollment.
pub type Details = Arc<dyn Fn() -> Map<String, Value> + Send + Sync>;

/// The remote API client of a daemon.
pub struct Remote {
    http: Http,
    rt: tokio::runtime::Handle,
    store: Arc<Store>,
    /// The start-up flags: the TLS settings are read once.
    flags: Flags,
    host_identifier: String,
    details: Details,
    key: tokio::sync::Mutex<KeyState>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("http", &self.http)
            .field("host_identifier", &self.host_identifier)
            .finish_non_exhaustive()
    }
}

/// Whether `flags` use the remote API at all (then `tls_hostname` must be set).
pub fn wanted(flags: &Flags) -> bool {
    flags.get("config_plugin") == "tls"
        || flags
            .get("logger_plugin")
            .split(',')
            .any(|p| p.trim() == "tls")
        || (!flags.bool("disable_distributed") && flags.get("distributed_plugin") == "tls")
}

/// Each flag `flags` need for what they turn on, with the setting that needs it.
pub fn check(flags: &Flags) -> Result<(), String> {
    let mut missing = Vec::new();
    let mut need = |flag: &str, why: &str| {
        if flags.get(flag).trim().is_empty() {
            missing.push(format!("--{flag} (for {why})"));
        }
    };
    need("tls_hostname", "the TLS remote API");
    if !flags.bool("disable_enrollment") {
        need("enroll_tls_endpoint", "enrollment");
    }
    if flags.get("config_plugin") == "tls" {
        need("config_tls_endpoint", "--config_plugin=tls");
    }
    if flags
        .get("logger_plugin")
        .split(',')
        .any(|p| p.trim() == "tls")
    {
        need("logger_tls_endpoint", "--logger_plugin=tls");
    }
    if !flags.bool("disable_distributed") && flags.get("distributed_plugin") == "tls" {
        need("distributed_tls_read_endpoint", "distributed queries");
        need("distributed_tls_write_endpoint", "distributed queries");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing {}", missing.join(", ")))
    }
}

/// The first row of each of [`DETAIL_TABLES`], every value a string (a table this build
/// does not have gives an empty object).
pub fn host_details(env: &TableEnv) -> Map<String, Value> {
    let mut out = Map::new();
    let engine = match Engine::new(env.clone()) {
        Ok(e) => e,
        Err(e) => {
            log::warn!("enrollment details: {e}");
            return out;
        }
    };
    for t in DETAIL_TABLES {
        let mut row = Map::new();
        if engine.table(t).is_some() {
            match engine.query(&format!("SELECT * FROM {t} LIMIT 1")) {
                Ok(rs) => {
                    if let Some(r) = crate::schedule::rows(&rs).into_iter().next() {
                        row = text_values(r);
                    }
                }
                Err(e) => log::warn!("enrollment details from {t}: {e}"),
            }
        }
        out.insert((*t).to_owned(), Value::Object(row));
    }
    out
}

/// A row with every value as a string, as osquery sends rows.
pub fn text_values(row: Map<String, Value>) -> Map<String, Value> {
    row.into_iter()
        .map(|(k, v)| {
            let t = match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k, Value::String(t))
        })
        .collect()
}

impl Remote {
    /// The client for the TLS flags of `flags` (a bad setting is an error naming the flag).
    pub fn new(
        flags: &Flags,
        store: Arc<Store>,
        rt: tokio::runtime::Handle,
        host_identifier: String,
        details: Details,
    ) -> Result<Arc<Self>, String> {
        check(flags)?;
        let http = Http::new(flags).map_err(|e| e.to_string())?;
        let mut state = KeyState::default();
        if !flags.bool("enroll_always") {
            state.key = store
                .get_meta(KEY_META)
                .map_err(|e| format!("reading the cached node key: {e}"))?
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .filter(|k| !k.is_empty());
        }
        Ok(Arc::new(Self {
            http,
            rt,
            store,
            flags: flags.clone(),
            host_identifier,
            details,
            key: tokio::sync::Mutex::new(state),
        }))
    }

    /// The start-up flags.
    pub fn flags(&self) -> &Flags {
        &self.flags
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The URL of `endpoint`.
    pub fn url(&self, endpoint: &str) -> String {
        self.http.url(endpoint)
    }

    /// The control-plane runtime the requests run on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.rt
    }

    /// POSTs `body` as is (no node key: carve blocks carry their session instead); an
    /// `error` member fails it.
    pub async fn post_plain(
        &self,
        endpoint: &str,
        body: &Value,
    ) -> Result<Map<String, Value>, RemoteError> {
        let (status, reply) = self.http.post(endpoint, body, None, false).await?;
        if let Some(message) = error_text(&reply) {
            return Err(RemoteError::Server { status, message });
        }
        Ok(reply)
    }

    /// Runs `fut` to completion from synchronous code (the config service, the forwarder's
    /// sinks): on the control-plane runtime, off its async workers.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::block_in_place(|| self.rt.block_on(fut))
        } else {
            self.rt.block_on(fut)
        }
    }

    /// The node key in use (enrolling when there is none), or why there is none.
    pub async fn node_key(&self) -> Result<String, RemoteError> {
        let mut st = self.key.lock().await;
        if let Some(k) = &st.key {
            return Ok(k.clone());
        }
        if self.flags.bool("disable_enrollment") {
            return Err(RemoteError::NotEnrolled(
                "--disable_enrollment is set and no node key is cached".into(),
            ));
        }
        if let Some(t) = st.not_before
            && Instant::now() < t
        {
            return Err(RemoteError::NotEnrolled(format!(
                "the next enrollment attempt is in {} s (after {} failure(s): {})",
                t.saturating_duration_since(Instant::now()).as_secs() + 1,
                st.failures,
                st.last_error.as_deref().unwrap_or("")
            )));
        }
        match self.enroll().await {
            Ok(key) => {
                if let Err(e) = self.store.put_meta(KEY_META, key.as_bytes(), true) {
                    log::warn!("caching the node key: {e} (the next start enrolls again)");
                }
                if st.failures > 0 {
                    log::info!("enrolled after {} failed attempt(s)", st.failures);
                } else {
                    log::info!(
                        "enrolled at {}",
                        self.url(self.flags.get("enroll_tls_endpoint"))
                    );
                }
                *st = KeyState {
                    key: Some(key.clone()),
                    ..KeyState::default()
                };
                Ok(key)
            }
            Err(e) => {
                st.failures += 1;
                let max = self.flags.u64("tls_enroll_max_interval").max(1);
                let wait = 1u64
                    .checked_shl(st.failures.saturating_sub(1).min(62) as u32)
                    .unwrap_or(u64::MAX)
                    .min(max);
                st.not_before = Some(Instant::now() + Duration::from_secs(wait));
                let attempts = self.flags.u64("tls_enroll_max_attempts");
                let msg = e.to_string();
                if attempts > 0 && st.failures == attempts {
                    log::error!(
                        "enrollment failed {attempts} times ({msg}); trying again every {max} s"
                    );
                } else if st.last_error.as_deref() != Some(msg.as_str()) {
                    log::warn!("enrollment failed: {msg}; next attempt in {wait} s");
                }
                st.last_error = Some(msg.clone());
                Err(RemoteError::NotEnrolled(msg))
            }
        }
    }

    /// Forgets `key` (when it is still the one in use): the next request enrolls again.
    async fn forget(&self, key: &str) {
        let mut st = self.key.lock().await;
        if st.key.as_deref() == Some(key) {
            st.key = None;
            let _ = self.store.delete_meta(KEY_META, true);
        }
    }

    fn secret(&self) -> Result<String, String> {
        if let Some(p) = self.flags.path("enroll_secret_path") {
            let s = std::fs::read_to_string(&p)
                .map_err(|e| format!("--enroll_secret_path={}: {e}", p.display()))?;
            return Ok(s.trim().to_owned());
        }
        let env = self.flags.get("enroll_secret_env").trim();
        if !env.is_empty() {
            return std::env::var(env)
                .map(|s| s.trim().to_owned())
                .map_err(|_| format!("--enroll_secret_env={env}: the variable is not set"));
        }
        Err("no enrollment secret: set --enroll_secret_path or --enroll_secret_env".into())
    }

    async fn enroll(&self) -> Result<String, String> {
        let secret = self.secret()?;
        let details = {
            let d = self.details.clone();
            if tokio::runtime::Handle::try_current().is_ok() {
                tokio::task::block_in_place(|| d())
            } else {
                d()
            }
        };
        let body = json!({
            "enroll_secret": secret,
            "host_identifier": self.host_identifier,
            "platform_type": PLATFORM_TYPE,
            "host_details": details,
        });
        let endpoint = self.flags.get("enroll_tls_endpoint");
        let (status, reply) = self
            .http
            .post(endpoint, &body, None, false)
            .await
            .map_err(|e| e.to_string())?;
        enroll_reply(status, &reply)
    }

    /// POSTs `body` (with the node key added) to `endpoint` and returns the reply; enrolls
    /// again once when the server says `node_invalid`.
    pub async fn request(
        &self,
        endpoint: &str,
        body: Map<String, Value>,
        gzip: bool,
    ) -> Result<Map<String, Value>, RemoteError> {
        let mut body = body;
        for attempt in 0..2 {
            let key = self.node_key().await?;
            body.insert("node_key".into(), Value::String(key.clone()));
            let (status, reply) = self
                .http
                .post(endpoint, &Value::Object(body.clone()), Some(&key), gzip)
                .await?;
            if reply.get("node_invalid") == Some(&Value::Bool(true)) {
                self.forget(&key).await;
                if self.flags.bool("disable_reenrollment") {
                    return Err(RemoteError::NodeInvalid(
                        " and --disable_reenrollment is set",
                    ));
                }
                if attempt == 0 {
                    log::warn!(
                        "{}: the server says the node key is invalid; enrolling again",
                        self.url(endpoint)
                    );
                    continue;
                }
                return Err(RemoteError::NodeInvalid(" even after enrolling again"));
            }
            if let Some(message) = error_text(&reply) {
                return Err(RemoteError::Server { status, message });
            }
            return Ok(reply);
        }
        Err(RemoteError::NodeInvalid(""))
    }
}

/// The node key of an enrollment reply, or why there is none (`node_invalid`, an `error`
/// member, no key).
pub fn enroll_reply(status: u16, reply: &Map<String, Value>) -> Result<String, String> {
    if reply.get("node_invalid") == Some(&Value::Bool(true)) {
        return Err(format!(
            "HTTP {status}: the server refused the enrollment (node_invalid){}",
            error_text(reply)
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    if let Some(e) = error_text(reply) {
        return Err(format!("HTTP {status}: the server says: {e}"));
    }
    match reply.get("node_key").or_else(|| reply.get("id")) {
        Some(Value::String(k)) if !k.is_empty() => Ok(k.clone()),
        _ => Err(format!("HTTP {status}: the reply has no node_key")),
    }
}

/// The reply's `error` member as text, if it has one.
pub fn error_text(reply: &Map<String, Value>) -> Option<String> {
    reply.get("error").map(|e| match e {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests;
