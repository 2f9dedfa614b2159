//! `extended_attributes`: the extended attributes of the files a query names, with osquery's
//! columns. `path = '…'` (one file) or `directory = '…'` (its entries, not recursive) is
//! required, as in osquery; symlinks are not followed (a link's own attributes), so a query
//! never reads outside what it names. `value` is the text when it is printable (one trailing
//! NUL dropped), else base64 with `base64` = 1; `security.capability` is decoded to the text
//! `getcap` prints (`cap_net_raw=ep`).

use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col},
    },
    sys::xattr::{attributes, capability_text},
};

const COLUMNS: &[Column] = &[
    col("path", Text),
    col("directory", Text),
    col("key", Text),
    col("value", Text),
    col("base64", Integer),
];
const PATH: usize = 0;
const DIRECTORY: usize = 1;

#[derive(Debug)]
pub struct ExtendedAttributes;

/// `value` as the row shows it: (text, base64).
pub fn shown(key: &str, value: &[u8]) -> (String, bool) {
    if key == "security.capability"
        && let Some(t) = capability_text(value)
    {
        return (t, false);
    }
    let body = value.strip_suffix(&[0]).unwrap_or(value);
    match std::str::from_utf8(body) {
        Ok(s) if !s.chars().any(char::is_control) => (s.to_owned(), false),
        _ => (
            base64::engine::general_purpose::STANDARD.encode(value),
            true,
        ),
    }
}

impl Table for ExtendedAttributes {
    fn name(&self) -> &'static str {
        "extended_attributes"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn cost(&self, constrained: &[(usize, Op)]) -> f64 {
        crate::sql::tables::file::named_cost(constrained)
    }

    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let paths = ctx.equal_texts(PATH);
        let dirs = ctx.equal_texts(DIRECTORY);
        if paths.is_empty() && dirs.is_empty() {
            return Err(
                "extended_attributes needs WHERE path = '…' or WHERE directory = '…'".to_owned(),
            );
        }
        let mut files: Vec<(PathBuf, String)> = paths
            .into_iter()
            .map(|p| {
                let dir = Path::new(&p)
                    .parent()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default();
                (PathBuf::from(p), dir)
            })
            .collect();
        for d in dirs {
            // A folder that cannot be read has no rows (as a file that does not exist).
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut inside: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            inside.sort();
            files.extend(inside.into_iter().map(|p| (p, d.clone())));
        }
        let mut rows = Vec::new();
        for (path, dir) in files {
            let Ok(attrs) = attributes(&path) else {
                continue;
            };
            for (key, value) in attrs {
                let (value, b64) = shown(&key, &value);
                rows.push(Ok(vec![
                    text(path.display().to_string()),
                    text(dir.clone()),
                    text(key),
                    text(value),
                    int(i64::from(b64)),
                ]));
            }
        }
        Ok(Box::new(rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use std::{process::Command, sync::Arc};

    use crate::{
        flags::Flags,
        sql::{Engine, TableEnv},
    };

    fn run(cmd: &str, args: &[&str]) -> String {
        let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| {
            panic!("{cmd} (cargo xtask setup installs attr and libcap2-bin): {e}")
        });
        assert!(
            out.status.success(),
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Needs root (setcap): the tests run as root in CI, and fail loudly otherwise.
    #[test]
    fn attributes_and_capabilities_read_as_getfattr_and_getcap_show_them() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "x").unwrap();
        std::fs::write(&b, "y").unwrap();
        let (a_s, b_s) = (a.display().to_string(), b.display().to_string());
        run("setfattr", &["-n", "user.osprey", "-v", "hello", &a_s]);
        run("setfattr", &["-n", "user.bin", "-v", "0x00ff01", &a_s]);
        run("setcap", &["cap_net_raw+ep", &a_s]);
        run("setcap", &["cap_chown,cap_net_raw+p cap_chown+i", &b_s]);
        // A symlink to a: its own attributes (none), not a's.
        std::os::unix::fs::symlink(&a, dir.path().join("c")).unwrap();
        let getcap = |p: &str| {
            run("getcap", &[p])
                .trim()
                .strip_prefix(p)
                .unwrap()
                .trim()
                .to_owned()
        };
        let engine = Engine::new(TableEnv::new(None, Arc::new(Flags::default()))).unwrap();
        let q = |sql: String| -> Vec<Vec<String>> {
            engine
                .query(&sql)
                .unwrap()
                .rows
                .iter()
                .map(|r| r.iter().map(crate::sql::text_of).collect())
                .collect()
        };
        let d = dir.path().display().to_string();
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            q(format!(
                "SELECT path, directory, key, value, base64 FROM extended_attributes WHERE path = '{a_s}' ORDER BY key"
            )),
            [
                s(&[&a_s, &d, "security.capability", &getcap(&a_s), "0"]),
                s(&[&a_s, &d, "user.bin", "AP8B", "1"]),
                s(&[&a_s, &d, "user.osprey", "hello", "0"]),
            ]
        );
        assert_eq!(getcap(&a_s), "cap_net_raw=ep");
        // getfattr's base64 of the binary value is the same text.
        assert!(run("getfattr", &["-d", "-m", "user.bin", &a_s]).contains("user.bin=0sAP8B"));
        assert_eq!(
            q(format!(
                "SELECT path, key, value FROM extended_attributes WHERE directory = '{d}' AND key = 'security.capability' ORDER BY path"
            )),
            [
                s(&[&a_s, "security.capability", "cap_net_raw=ep"]),
                s(&[&b_s, "security.capability", &getcap(&b_s)]),
            ]
        );
        assert_eq!(getcap(&b_s), "cap_chown=ip cap_net_raw+p");
        // No constraint: a clear error, not a walk of the file system.
        let e = engine
            .query("SELECT * FROM extended_attributes")
            .unwrap_err();
        assert!(e.contains("needs WHERE path = "), "{e}");
    }
}
