//! Extensions' tables for a process that is not the daemon (`osprey query`, `osprey shell`):
//! listed, described and generated through the daemon's extension manager, as
//! `osqueryi --connect` does. The manager forwards `call("table", …)` to the extension that
//! owns the table.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use super::{
    osquery::{
        ExtensionManagerSyncClient, TExtensionManagerSyncClient as _, TExtensionSyncClient as _,
    },
    protocols,
    table::{self, ExtensionTable, Generate},
};
use crate::sql::{
    DynamicTables,
    vtab::{self, Column},
};

/// The daemon's manager at a socket.
#[derive(Debug)]
struct Manager {
    socket: PathBuf,
    timeout: Duration,
}

impl Manager {
    fn client(&self) -> Result<ExtensionManagerSyncClient<super::In, super::Out>, String> {
        let (i, o) = protocols(&self.socket, self.timeout)?;
        Ok(ExtensionManagerSyncClient::new(i, o))
    }

    fn call(
        &self,
        name: &str,
        request: BTreeMap<String, String>,
    ) -> Result<Vec<BTreeMap<String, String>>, String> {
        let r = self
            .client()?
            .call("table".to_owned(), name.to_owned(), request)
            .map_err(|e| format!("the extension manager: {e}"))?;
        let st = r.status.unwrap_or_default();
        if st.code.unwrap_or(0) != 0 {
            return Err(st.message.unwrap_or_default());
        }
        Ok(r.response.unwrap_or_default())
    }

    /// The extensions' tables now, with their columns.
    fn list(&self) -> Result<Vec<(String, &'static [Column])>, String> {
        let r = self
            .client()?
            .query(
                "SELECT name FROM osquery_registry WHERE registry = 'table' AND owner_uuid != 0 \
                 ORDER BY name"
                    .to_owned(),
            )
            .map_err(|e| format!("the extension manager: {e}"))?;
        let mut out = Vec::new();
        for row in r.response.unwrap_or_default() {
            let Some(name) = row.get("name") else {
                continue;
            };
            let action = BTreeMap::from([("action".to_owned(), "columns".to_owned())]);
            let routes = self.call(name, action)?;
            out.push((name.clone(), table::columns_of(&routes)));
        }
        Ok(out)
    }
}

impl Generate for Manager {
    fn generate(
        &self,
        name: &str,
        request: BTreeMap<String, String>,
    ) -> Result<Vec<BTreeMap<String, String>>, String> {
        self.call(name, request)
    }
}

/// [`DynamicTables`] through the daemon's manager: the list is asked for before each
/// statement (one query and one `columns` call per table).
#[derive(Debug)]
pub struct ViaManager {
    manager: Arc<Manager>,
    now: Mutex<Vec<(String, &'static [Column])>>,
    generation: AtomicU64,
}

impl ViaManager {
    /// The manager at `socket`, when one answers there (None: no daemon, or not allowed to
    /// talk to it; then there are no extension tables).
    pub fn connect(socket: &Path, timeout: Duration) -> Option<Self> {
        let manager = Manager {
            socket: socket.to_owned(),
            timeout,
        };
        let list = manager.list().ok()?;
        Some(Self {
            manager: Arc::new(manager),
            now: Mutex::new(list),
            generation: AtomicU64::new(0),
        })
    }
}

impl DynamicTables for ViaManager {
    fn generation(&self) -> u64 {
        // A manager that stopped answering keeps the last list (its tables then fail).
        if let Ok(list) = self.manager.list() {
            let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
            let key = |l: &[(String, &'static [Column])]| -> Vec<(String, usize)> {
                l.iter()
                    .map(|(n, c)| (n.clone(), c.as_ptr() as usize))
                    .collect()
            };
            if key(&now) != key(&list) {
                *now = list;
                self.generation.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.generation.load(Ordering::SeqCst)
    }

    fn tables(&self) -> Vec<Arc<dyn vtab::Table>> {
        let now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        now.iter()
            .map(|(name, columns)| {
                Arc::new(ExtensionTable {
                    name: table::table_name(name),
                    columns,
                    source: self.manager.clone(),
                }) as Arc<dyn vtab::Table>
            })
            .collect()
    }
}

/// `osprey extension uninstall NAME` while a daemon runs: its manager drops the data.
/// Err when no manager answers at `socket` (the caller then opens the store itself).
pub fn uninstall(socket: &Path, timeout: Duration, name: &str) -> Result<bool, String> {
    let m = Manager {
        socket: socket.to_owned(),
        timeout,
    };
    let r = m
        .client()?
        .call(
            "storage".to_owned(),
            "uninstall".to_owned(),
            BTreeMap::from([("extension".to_owned(), name.to_owned())]),
        )
        .map_err(|e| format!("the extension manager: {e}"))?;
    let st = r.status.unwrap_or_default();
    if st.code.unwrap_or(0) != 0 {
        return Err(st.message.unwrap_or_default());
    }
    Ok(r.response
        .unwrap_or_default()
        .first()
        .and_then(|row| row.get("removed"))
        .is_some_and(|v| v == "1"))
}
