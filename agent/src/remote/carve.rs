//! The file carver behind the `carves` table: the matched files go into a tar archive (a
//! temporary file), which is uploaded as osquery does: `carver_start_endpoint` with
//! `{block_count, block_size, carve_size, carve_id, request_id, node_key}` answers a
//! `session_id`; then each block of `carver_block_size` bytes goes to
//! `carver_continue_endpoint` as `{block_id, session_id, request_id, data}` (base64).
//! Carves run as tasks on the control-plane runtime; their record (status, size, SHA-256)
//! is kept in the store, which the `carves` table lists.

use std::{
    io::{Read as _, Seek as _, Write as _},
    sync::{Arc, Mutex},
};

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::Digest as _;

use super::Remote;
use crate::sql::{CARVES_META, Carve, Carver};

/// Most carve records kept (the oldest go first).
const KEEP: usize = 100;

/// Carves through the remote API. `request` is the id of the distributed query running now
/// (set by the distributed runner), which a carve carries.
pub struct RemoteCarver {
    remote: Arc<Remote>,
    pub request: Arc<Mutex<String>>,
    block_size: u64,
    lock: Mutex<()>,
}

impl RemoteCarver {
    pub fn new(remote: Arc<Remote>) -> Self {
        let block_size = remote
            .flags()
            .u64("carver_block_size")
            .clamp(1024, 256 << 20);
        Self {
            remote,
            request: Arc::default(),
            block_size,
            lock: Mutex::new(()),
        }
    }

    fn save(&self, c: &Carve) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.stored();
        match all.iter_mut().find(|x| x.carve_guid == c.carve_guid) {
            Some(x) => *x = c.clone(),
            None => all.push(c.clone()),
        }
        if all.len() > KEEP {
            let extra = all.len() - KEEP;
            all.drain(..extra);
        }
        match serde_json::to_vec(&all) {
            Ok(v) => {
                if let Err(e) = self.remote.store().put_meta(CARVES_META, &v, true) {
                    log::warn!("saving carve {}: {e}", c.carve_guid);
                }
            }
            Err(e) => log::warn!("saving carve {}: {e}", c.carve_guid),
        }
    }
}

/// Writes the tar archive of `paths` to `out`; returns its size and SHA-256.
pub fn archive(paths: &[String], out: &mut std::fs::File) -> Result<(u64, String), String> {
    {
        let mut b = tar::Builder::new(&mut *out);
        b.follow_symlinks(false);
        for p in paths {
            let name = p.trim_start_matches('/');
            b.append_path_with_name(p, name)
                .map_err(|e| format!("adding {p} to the archive: {e}"))?;
        }
        b.finish().map_err(|e| format!("the archive: {e}"))?;
    }
    out.flush().map_err(|e| e.to_string())?;
    out.rewind().map_err(|e| e.to_string())?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = out.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    out.rewind().map_err(|e| e.to_string())?;
    Ok((
        size,
        h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
    ))
}

impl RemoteCarver {
    fn stored(&self) -> Vec<Carve> {
        crate::sql::stored_carves(self.remote.store())
    }

    async fn upload(&self, c: &mut Carve) -> Result<(), String> {
        let f = self.remote.flags().clone();
        let mut file = tokio::task::block_in_place(|| -> Result<std::fs::File, String> {
            let mut file = tempfile::tempfile().map_err(|e| format!("a temporary file: {e}"))?;
            let (size, sha) = archive(&c.paths, &mut file)?;
            c.size = size;
            c.sha256 = sha;
            Ok(file)
        })?;
        c.status = "UPLOADING".into();
        self.save(c);
        let blocks = c.size.div_ceil(self.block_size).max(1);
        let mut begin = Map::new();
        begin.insert("block_count".into(), json!(blocks));
        begin.insert("block_size".into(), json!(self.block_size));
        begin.insert("carve_size".into(), json!(c.size));
        begin.insert("carve_id".into(), json!(c.carve_guid));
        begin.insert("request_id".into(), json!(c.request_id));
        let reply = self
            .remote
            .request(f.get("carver_start_endpoint"), begin, false)
            .await
            .map_err(|e| format!("carve start: {e}"))?;
        let session = match reply.get("session_id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err("carve start: the reply has no session_id".into()),
        };
        let mut buf = vec![0u8; self.block_size as usize];
        for id in 0..blocks {
            let n = tokio::task::block_in_place(|| read_full(&mut file, &mut buf))
                .map_err(|e| format!("reading the archive: {e}"))?;
            let body = json!({
                "block_id": id,
                "session_id": session,
                "request_id": c.request_id,
                "data": base64::engine::general_purpose::STANDARD.encode(&buf[..n]),
            });
            self.remote
                .post_plain(f.get("carver_continue_endpoint"), &body)
                .await
                .map_err(|e| format!("carve block {id} of {blocks}: {e}"))?;
        }
        Ok(())
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

impl Carver for Arc<RemoteCarver> {
    fn start(&self, paths: Vec<String>) -> Result<Carve, String> {
        let c = Carve {
            time: crate::sys::now_ns() / 1_000_000_000,
            carve_guid: crate::sys::random_uuid().ok_or("no random source for the carve id")?,
            request_id: self
                .request
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            paths,
            status: "STARTING".into(),
            size: 0,
            sha256: String::new(),
        };
        self.save(&c);
        let me = self.clone();
        let mut job = c.clone();
        self.remote.runtime().spawn(async move {
            job.status = match me.upload(&mut job).await {
                Ok(()) => {
                    log::info!(
                        "carve {} uploaded: {} file(s), {} bytes",
                        job.carve_guid,
                        job.paths.len(),
                        job.size
                    );
                    "SUCCESS".into()
                }
                Err(e) => {
                    log::warn!("carve {}: {e}", job.carve_guid);
                    format!("FAILED: {e}")
                }
            };
            me.save(&job);
        });
        Ok(c)
    }

    fn list(&self) -> Vec<Carve> {
        self.stored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_holds_the_files_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.bin");
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&a, &data).unwrap();
        let mut out = tempfile::tempfile().unwrap();
        let (size, sha) = archive(&[a.display().to_string()], &mut out).unwrap();
        assert_eq!(size % 512, 0);
        assert_eq!(sha.len(), 64);
        let mut t = tar::Archive::new(out);
        let mut e = t.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(
            e.path().unwrap().display().to_string(),
            a.display().to_string().trim_start_matches('/')
        );
        let mut back = Vec::new();
        e.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }
}
