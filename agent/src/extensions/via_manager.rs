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

use osprey_sdk::osquery::{TExtensionManagerSyncClient as _, TExtensionSyncClient as _};

use super::table::{self, ExtensionTable, Generate};
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
    fn client(&self) -> Result<osprey_sdk::client::Manager, String> {
        osprey_sdk::client::manager(&self.socket, self.timeout)
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

    fn plugins(&self) -> Vec<(String, String, i64)> {
        let Ok(r) = self.manager.client().and_then(|mut c| {
            c.query(
                "SELECT registry, name, owner_uuid FROM osquery_registry WHERE owner_uuid != 0"
                    .to_owned(),
            )
            .map_err(|e| e.to_string())
        }) else {
            return Vec::new();
        };
        r.response
            .unwrap_or_default()
            .into_iter()
            .filter_map(|row| {
                Some((
                    row.get("registry")?.clone(),
                    row.get("name")?.clone(),
                    row.get("owner_uuid")?.parse().ok()?,
                ))
            })
            .collect()
    }

    fn extensions(&self) -> Vec<crate::sql::ExtensionRow> {
        let Ok(list) = self
            .manager
            .client()
            .and_then(|mut c| c.extensions().map_err(|e| e.to_string()))
        else {
            return Vec::new();
        };
        list.into_iter()
            .map(|(uuid, info)| crate::sql::ExtensionRow {
                uuid,
                name: info.name.unwrap_or_default(),
                version: info.version.unwrap_or_default(),
                sdk_version: info.sdk_version.unwrap_or_default(),
                path: format!("{}.{uuid}", self.manager.socket.display()),
            })
            .collect()
    }
}

/// `osprey extension uninstall NAME` while a daemon runs: its manager drops the data
/// (Some(whether there was any)). None: no manager answers at `socket` (the caller then
/// opens the store itself). Err: the manager answered with an error.
pub fn uninstall(socket: &Path, timeout: Duration, name: &str) -> Result<Option<bool>, String> {
    let m = Manager {
        socket: socket.to_owned(),
        timeout,
    };
    let Ok(mut client) = m.client() else {
        return Ok(None);
    };
    let r = client
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
    Ok(Some(
        r.response
            .unwrap_or_default()
            .first()
            .and_then(|row| row.get("removed"))
            .is_some_and(|v| v == "1"),
    ))
}
