//! The `tls` config plugin: the reply to `config_tls_endpoint` is the config (options,
//! schedule, packs, decorators, file_paths …), applied by the config service like a file.
//! The last good reply is kept in the store, so a start while the server is unreachable
//! begins with it.

use std::{sync::Arc, time::Duration};

use serde_json::{Map, Value};

use super::Remote;
use crate::config::live::Fetch;

/// Where the last good config text is kept (store metadata).
const CONFIG_META: &[u8] = b"remote.config";

/// Fetches the config over TLS.
#[derive(Debug)]
pub struct TlsConfig {
    remote: Arc<Remote>,
}

impl TlsConfig {
    pub fn new(remote: Arc<Remote>) -> Self {
        Self { remote }
    }
}

/// The config text of a reply (osquery's server members removed).
pub fn config_text(mut reply: Map<String, Value>) -> String {
    reply.remove("node_invalid");
    Value::Object(reply).to_string()
}

impl Fetch for TlsConfig {
    fn origin(&self) -> String {
        format!(
            "tls:{}",
            self.remote
                .url(self.remote.flags().get("config_tls_endpoint"))
        )
    }

    fn fetch(&self) -> Result<String, String> {
        let endpoint = self.remote.flags().get("config_tls_endpoint").to_owned();
        let attempts = self.remote.flags().u64("config_tls_max_attempts").max(1);
        let mut last = String::new();
        for i in 0..attempts {
            if i > 0 {
                std::thread::sleep(Duration::from_secs(1));
            }
            match self
                .remote
                .block_on(self.remote.request(&endpoint, Map::new(), false))
            {
                Ok(reply) => return Ok(config_text(reply)),
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!("{last} ({attempts} attempt(s))"))
    }

    fn keep(&self, text: &str) {
        if self.cached().as_deref() == Some(text) {
            return;
        }
        if let Err(e) = self
            .remote
            .store()
            .put_meta(CONFIG_META, text.as_bytes(), false)
        {
            log::warn!("keeping the fetched config: {e}");
        }
    }

    fn cached(&self) -> Option<String> {
        self.remote
            .store()
            .get_meta(CONFIG_META)
            .ok()
            .flatten()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }
}
