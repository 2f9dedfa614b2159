//! `process_envs`: the environment each process started with (`/proc/<pid>/environ`), a row
//! per variable. `WHERE pid = N` reads only that process; a process whose environment cannot
//! be read (gone, or another user's without the privilege) has no rows.

use std::path::Path;

use crate::sql::{
    tables::{
        ns::pids_for,
        util::{int, text},
    },
    vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[col("pid", Integer), col("key", Text), col("value", Text)];
const PID: usize = 0;

#[derive(Debug)]
pub struct ProcessEnvs;

/// The `KEY=value` entries of an environ block (NUL-separated; an entry without `=` is a
/// key with an empty value).
pub fn parse(b: &[u8]) -> Vec<(String, String)> {
    b.split(|c| *c == 0)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let e = String::from_utf8_lossy(e);
            match e.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (e.into_owned(), String::new()),
            }
        })
        .collect()
}

impl Table for ProcessEnvs {
    fn name(&self) -> &'static str {
        "process_envs"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let (pids, _) = pids_for(ctx, PID, Path::new("/proc"))?;
        let mut rows = Vec::new();
        for pid in pids {
            let Ok(b) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            rows.extend(
                parse(&b)
                    .into_iter()
                    .map(|(k, v)| Ok(vec![int(pid), text(k), text(v)])),
            );
        }
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::rows_of;

    #[test]
    fn our_own_environment_is_what_std_env_sees() {
        assert_eq!(
            super::parse(b"A=1\0B=x=y\0C\0\0"),
            [
                ("A".into(), "1".into()),
                ("B".into(), "x=y".into()),
                ("C".into(), String::new())
            ]
        );
        // A child with an environment of our choosing, stopped until we have read it.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env_clear()
            .env("OSPREY_ENV_TEST", "value=with=equals")
            .env("PATH", "/usr/bin:/bin")
            .spawn()
            .unwrap();
        let got = rows_of(&format!(
            "SELECT key, value FROM process_envs WHERE pid = {} ORDER BY key",
            child.id()
        ));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            got,
            [
                vec!["OSPREY_ENV_TEST".to_owned(), "value=with=equals".to_owned()],
                vec!["PATH".to_owned(), "/usr/bin:/bin".to_owned()],
            ]
        );
    }
}
