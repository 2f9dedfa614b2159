//! systemd's manager over the system D-Bus (zbus, on tokio): the units it has loaded and the
//! properties `systemd_units` and `startup_items` show.
//!
//! A call runs on the caller's tokio runtime when it is a multi-threaded one (the daemon's
//! control plane, where scheduled and distributed queries run inside `block_in_place`), so
//! zbus's reader task lives there; a caller outside any runtime (`osprey query`, the shell)
//! gets a one-call runtime on a scoped thread. Every call has one deadline for the whole
//! listing: a bus that never answers costs the query that much, never a hang.

use std::{future::Future, time::Duration};

use zbus::{
    Connection,
    zvariant::{OwnedObjectPath, OwnedValue},
};

/// The system bus when no address is given: `$DBUS_SYSTEM_BUS_ADDRESS`, else the standard
/// socket.
pub fn default_system_bus() -> String {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "unix:path=/run/dbus/system_bus_socket".to_owned())
}

/// One unit of `ListUnits`, with the per-unit properties when they were asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unit {
    pub id: String,
    pub description: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    pub following: String,
    pub object_path: String,
    pub job_id: u32,
    pub job_type: String,
    /// Empty when no job is queued (systemd says `/`).
    pub job_path: String,
    pub unit_file_state: String,
    pub fragment_path: String,
    pub source_path: String,
    /// `User=` of a service unit; empty for other units and services without one.
    pub user: String,
}

/// What [`units`] fetches beyond `ListUnits`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted {
    /// UnitFileState, FragmentPath and SourcePath (one call per unit each).
    pub unit_properties: bool,
    /// `User` of service units (one call per service).
    pub user: bool,
}

type ListedUnit = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

const SYSTEMD: &str = "org.freedesktop.systemd1";

/// The units systemd has loaded, as `systemctl list-units --all` lists them; `keep` decides
/// by id which units get their properties fetched (and are returned).
pub fn units(
    address: &str,
    timeout: Duration,
    wanted: Wanted,
    keep: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Vec<Unit>, String> {
    let address = address.to_owned();
    block_on(async move {
        tokio::time::timeout(timeout, list(&address, wanted, keep))
            .await
            .map_err(|_| format!("no answer from {address} within {timeout:?}"))?
    })?
}

async fn list(
    address: &str,
    wanted: Wanted,
    keep: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Vec<Unit>, String> {
    let conn = zbus::connection::Builder::address(address)
        .map_err(|e| format!("bus address {address}: {e}"))?
        .build()
        .await
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    let reply = conn
        .call_method(
            Some(SYSTEMD),
            "/org/freedesktop/systemd1",
            Some("org.freedesktop.systemd1.Manager"),
            "ListUnits",
            &(),
        )
        .await
        .map_err(|e| format!("ListUnits: {e}"))?;
    let listed: Vec<ListedUnit> = reply
        .body()
        .deserialize()
        .map_err(|e| format!("ListUnits reply: {e}"))?;
    let mut out = Vec::with_capacity(listed.len());
    for (id, description, load, active, sub, following, path, job_id, job_type, job_path) in listed
    {
        if !keep(&id) {
            continue;
        }
        let job_path = job_path.as_str();
        let mut u = Unit {
            description,
            load_state: load,
            active_state: active,
            sub_state: sub,
            following,
            object_path: path.as_str().to_owned(),
            job_id,
            job_type,
            job_path: if job_path == "/" {
                String::new()
            } else {
                job_path.to_owned()
            },
            ..Unit::default()
        };
        if wanted.unit_properties {
            let iface = "org.freedesktop.systemd1.Unit";
            u.unit_file_state = string_property(&conn, &path, iface, "UnitFileState").await?;
            u.fragment_path = string_property(&conn, &path, iface, "FragmentPath").await?;
            u.source_path = string_property(&conn, &path, iface, "SourcePath").await?;
        }
        if wanted.user && id.ends_with(".service") {
            // A unit that is not loaded has no Service interface: no user then.
            u.user = string_property(&conn, &path, "org.freedesktop.systemd1.Service", "User")
                .await
                .unwrap_or_default();
        }
        u.id = id;
        out.push(u);
    }
    Ok(out)
}

async fn string_property(
    conn: &Connection,
    path: &OwnedObjectPath,
    iface: &str,
    name: &str,
) -> Result<String, String> {
    let reply = conn
        .call_method(
            Some(SYSTEMD),
            path.as_str(),
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(iface, name),
        )
        .await
        .map_err(|e| format!("{name} of {}: {e}", path.as_str()))?;
    let v: OwnedValue = reply
        .body()
        .deserialize()
        .map_err(|e| format!("{name} of {}: {e}", path.as_str()))?;
    String::try_from(v).map_err(|e| format!("{name} of {}: {e}", path.as_str()))
}

/// Runs `fut` on the caller's multi-threaded runtime (off its async workers), or, outside
/// one, on a one-call runtime of a scoped thread.
fn block_on<F>(fut: F) -> Result<F::Output, String>
where
    F: Future + Send,
    F::Output: Send,
{
    if let Ok(h) = tokio::runtime::Handle::try_current()
        && h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
    {
        return Ok(tokio::task::block_in_place(|| h.block_on(fut)));
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("D-Bus runtime: {e}"))?;
            Ok(rt.block_on(fut))
        })
        .join()
        .map_err(|_| "the D-Bus call panicked".to_owned())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bus_that_is_not_there_is_a_clear_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("unix:path={}/none", dir.path().display());
        let err = units(&addr, Duration::from_secs(5), Wanted::default(), &|_| true).unwrap_err();
        assert!(err.starts_with(&format!("connecting to {addr}: ")), "{err}");
        let err = units("bogus", Duration::from_secs(5), Wanted::default(), &|_| {
            true
        })
        .unwrap_err();
        assert!(err.starts_with("bus address bogus: "), "{err}");
        // A socket that accepts and never answers: the deadline ends the call.
        let path = dir.path().join("silent");
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let addr = format!("unix:path={}", path.display());
        let err = units(
            &addr,
            Duration::from_millis(300),
            Wanted::default(),
            &|_| true,
        )
        .unwrap_err();
        assert_eq!(err, format!("no answer from {addr} within 300ms"));
    }
}
