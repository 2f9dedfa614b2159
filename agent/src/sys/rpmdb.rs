//! The RPM database where one exists: `rpmdb.sqlite` (rpm 4.16 and later), opened read-only;
//! each row of its `Packages` table is one package's header blob.

use std::path::Path;

/// The header blobs of the database at `path`; None when there is no such database.
pub fn headers(path: &Path) -> Option<Result<Vec<Vec<u8>>, String>> {
    if !path.is_file() {
        return None;
    }
    let read = || -> rusqlite::Result<Vec<Vec<u8>>> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let mut stmt = conn.prepare("SELECT blob FROM Packages")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        rows.collect()
    };
    Some(read().map_err(|e| format!("{}: {e}", path.display())))
}
