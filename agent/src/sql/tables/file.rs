//! `file`: the metadata of the files a query names, osquery's columns. A constraint on
//! `path` or `directory` is required, as in osquery: `path = '…'`, `directory = '…'` (its
//! entries), or `LIKE` patterns where `%` is any name within one level (not one starting
//! with `.`, as glob(3)'s `*`) and a last level `%%` is everything below (`/etc/%%`). Walks
//! never descend through a symlink, so a pattern reads only below what it names; a symlink
//! that is named is shown with `symlink` = 1 and its target's metadata (its own when the
//! target is missing). `mode` is the permission bits in octal (`0644`), `type` one of
//! `regular`, `directory`, `symlink`, `character`, `block`, `fifo`, `socket`.

use std::{
    os::unix::fs::{FileTypeExt as _, MetadataExt as _},
    path::{Path, PathBuf},
};

use rusqlite::types::Value;

use crate::sql::{
    tables::util::{int, text, uint},
    vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("path", Text),
    col("directory", Text),
    col("filename", Text),
    col("inode", BigInt),
    col("uid", BigInt),
    col("gid", BigInt),
    col("mode", Text),
    col("device", BigInt),
    col("size", BigInt),
    col("block_size", Integer),
    col("atime", BigInt),
    col("mtime", BigInt),
    col("ctime", BigInt),
    col("btime", BigInt),
    col("hard_links", Integer),
    col("symlink", Integer),
    col("type", Text),
    col("symlink_target_path", Text),
];
const PATH: usize = 0;
const DIRECTORY: usize = 1;

#[derive(Debug)]
pub struct File;

/// Whether `name` matches one level of a pattern, `%` being any run of characters (a
/// leading `%` does not match a leading `.`).
fn level_matches(pattern: &str, name: &str) -> bool {
    if pattern.starts_with('%') && name.starts_with('.') {
        return false;
    }
    let parts: Vec<&str> = pattern.split('%').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == name;
    }
    if !name.starts_with(first) || !name[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The entries of `dir`, sorted (none when it cannot be read).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.sort();
    v
}

/// Whether `p` is a folder and not a symlink (walks descend only into those).
fn real_dir(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

/// Everything below `dir`, depth first, never through a symlink.
fn below(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in entries(dir) {
        let descend = real_dir(&e);
        out.push(e.clone());
        if descend {
            below(&e, out);
        }
    }
}

/// The paths a LIKE pattern names (an absolute pattern; a relative one names nothing).
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let Some(rest) = pattern.strip_prefix('/') else {
        return Vec::new();
    };
    let mut nodes = vec![PathBuf::from("/")];
    let levels: Vec<&str> = rest.split('/').filter(|l| !l.is_empty()).collect();
    for (i, level) in levels.iter().enumerate() {
        let last = i + 1 == levels.len();
        let mut next = Vec::new();
        if *level == "%%" {
            // Everything below (osquery drops what follows a `%%`).
            for n in nodes.iter().filter(|n| real_dir(n)) {
                below(n, &mut next);
            }
            return next;
        }
        for n in &nodes {
            if !level.contains('%') {
                let p = n.join(level);
                // A literal level the pattern names: followed as the path says.
                if last || p.is_dir() {
                    next.push(p);
                }
                continue;
            }
            if !real_dir(n) {
                continue;
            }
            next.extend(
                entries(n)
                    .into_iter()
                    .filter(|e| {
                        e.file_name()
                            .and_then(|f| f.to_str())
                            .is_some_and(|f| level_matches(level, f))
                    })
                    .filter(|e| last || real_dir(e)),
            );
        }
        nodes = next;
    }
    nodes
}

/// The row of `path`, None when nothing is there.
pub fn row(path: &Path) -> Option<Vec<Value>> {
    let link = std::fs::symlink_metadata(path).ok()?;
    let is_link = link.file_type().is_symlink();
    let m = if is_link {
        std::fs::metadata(path).unwrap_or(link)
    } else {
        link
    };
    let ft = m.file_type();
    let kind = if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_char_device() {
        "character"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else {
        "regular"
    };
    let btime = m
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let name = |p: Option<&std::ffi::OsStr>| {
        p.map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    Some(vec![
        text(path.display().to_string()),
        text(
            path.parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
        text(name(path.file_name())),
        uint(m.ino()),
        int(m.uid()),
        int(m.gid()),
        text(format!("{:04o}", m.mode() & 0o7777)),
        uint(m.rdev()),
        uint(m.size()),
        uint(m.blksize()),
        int(m.atime()),
        int(m.mtime()),
        int(m.ctime()),
        uint(btime),
        uint(m.nlink()),
        int(i64::from(is_link)),
        text(kind),
        // Where a named symlink leads, every link on the way resolved ("" when it dangles).
        text(if is_link {
            std::fs::canonicalize(path)
                .map(|t| t.display().to_string())
                .unwrap_or_default()
        } else {
            String::new()
        }),
    ])
}

impl Table for File {
    fn name(&self) -> &'static str {
        "file"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn cost(&self, constrained: &[(usize, Op)]) -> f64 {
        named_cost(constrained)
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let paths = named(ctx, "file")?;
        Ok(Box::new(
            paths
                .into_iter()
                .filter_map(|p| row(&p))
                .map(Ok)
                .collect::<Vec<_>>()
                .into_iter(),
        ))
    }
}

/// The planner's cost of a scan of `file` or `hash` under `constrained`: cheap with a path,
/// dearer with a directory or a pattern, prohibitive with neither (so that in a join SQLite
/// gives this table the other table's paths, as Fleet's `deb_package_files JOIN file` needs).
pub fn named_cost(constrained: &[(usize, Op)]) -> f64 {
    let has = |column: usize, op: Op| constrained.iter().any(|(c, o)| *c == column && *o == op);
    if has(PATH, Op::Eq) {
        10.0
    } else if has(DIRECTORY, Op::Eq) {
        1_000.0
    } else if has(PATH, Op::Like) || has(DIRECTORY, Op::Like) {
        100_000.0
    } else {
        1e15
    }
}

/// The paths the `path` (column 0) and `directory` (column 1) constraints of `ctx` name, for
/// table `table` (`file`, `hash`), sorted. Err: neither is constrained.
pub fn named(ctx: &QueryContext, table: &str) -> Result<Vec<PathBuf>, String> {
    let texts = |column: usize, op: Op| -> Vec<String> {
        ctx.constraints
            .iter()
            .filter(|c| c.column == column && c.op == op)
            .filter_map(|c| match &c.value {
                Value::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    };
    if !ctx
        .constraints
        .iter()
        .any(|c| c.column == PATH || c.column == DIRECTORY)
    {
        return Err(format!(
            "{table} needs a path or directory constraint: path = '…', path LIKE '/etc/%', directory = '…'"
        ));
    }
    let mut paths: Vec<PathBuf> = texts(PATH, Op::Eq).into_iter().map(PathBuf::from).collect();
    paths.extend(texts(PATH, Op::Like).iter().flat_map(|p| expand(p)));
    let mut dirs: Vec<PathBuf> = texts(DIRECTORY, Op::Eq)
        .into_iter()
        .map(PathBuf::from)
        .collect();
    dirs.extend(texts(DIRECTORY, Op::Like).iter().flat_map(|p| expand(p)));
    for d in dirs {
        paths.extend(entries(&d));
    }
    paths.sort();
    paths.dedup();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn one_level_wildcards_match_as_glob_does() {
        use super::level_matches as m;
        assert!(m("%", "a") && !m("%", ".hidden") && m(".%", ".hidden"));
        assert!(m("a%c", "abc") && m("a%c", "ac") && !m("a%c", "abd"));
        assert!(m("%.conf", "x.conf") && m("a%b%c", "a1b2c") && !m("a%b%c", "a1c"));
        assert!(m("exact", "exact") && !m("exact", "exactly"));
    }

    #[test]
    fn metadata_is_what_stat_says_and_patterns_list_what_find_lists() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
        std::fs::write(d.join("a.conf"), "12345").unwrap();
        std::fs::write(d.join(".hidden"), "").unwrap();
        std::fs::write(d.join("sub/deeper/z"), "z").unwrap();
        std::os::unix::fs::symlink(d.join("sub"), d.join("link")).unwrap();
        let ds = d.display().to_string();
        let stat = |p: &str, deref: bool| -> Vec<String> {
            let fmt = "%n|%i|%u|%g|%a|%s|%h|%X|%Y|%Z";
            let args = if deref {
                vec!["-L", "-c", fmt, p]
            } else {
                vec!["-c", fmt, p]
            };
            let out = tool("stat", &args);
            let mut f: Vec<String> = out.trim().split('|').map(str::to_owned).collect();
            // stat's %a has no leading zeros.
            f[4] = format!("{:0>4}", f[4]);
            f
        };
        let cols = "path, inode, uid, gid, mode, size, hard_links, atime, mtime, ctime";
        let a = format!("{ds}/a.conf");
        assert_eq!(
            rows_of(&format!("SELECT {cols} FROM file WHERE path = '{a}'")),
            [stat(&a, false)]
        );
        // The symlink: flagged, with its target's metadata.
        let l = format!("{ds}/link");
        let mut want = stat(&l, true);
        want[0] = l.clone();
        assert_eq!(
            rows_of(&format!("SELECT {cols} FROM file WHERE path = '{l}'")),
            [want]
        );
        assert_eq!(
            rows_of(&format!(
                "SELECT symlink, type, filename, directory, symlink_target_path FROM file WHERE path = '{l}'"
            )),
            [vec![
                "1".to_owned(),
                "directory".to_owned(),
                "link".to_owned(),
                ds.clone(),
                tool("readlink", &["-f", &l]).trim().to_owned(),
            ]]
        );
        // One level: find's view without dot names; recursive: find's view (which, like the
        // walk, does not follow the symlink).
        let find = |args: &[&str]| -> Vec<Vec<String>> {
            let mut v: Vec<String> = tool("find", args).lines().map(str::to_owned).collect();
            v.sort();
            v.into_iter().map(|p| vec![p]).collect()
        };
        assert_eq!(
            rows_of(&format!(
                "SELECT path FROM file WHERE path LIKE '{ds}/%' ORDER BY path"
            )),
            find(&[
                &ds,
                "-mindepth",
                "1",
                "-maxdepth",
                "1",
                "-not",
                "-name",
                ".*"
            ])
        );
        assert_eq!(
            rows_of(&format!(
                "SELECT path FROM file WHERE path LIKE '{ds}/%%' ORDER BY path"
            )),
            find(&[&ds, "-mindepth", "1"])
        );
        assert_eq!(
            rows_of(&format!(
                "SELECT path FROM file WHERE directory = '{ds}/sub' ORDER BY path"
            )),
            [vec![format!("{ds}/sub/deeper")]]
        );
        assert_eq!(
            rows_of(&format!(
                "SELECT path FROM file WHERE path LIKE '{ds}/%/deeper/%'"
            )),
            [vec![format!("{ds}/sub/deeper/z")]]
        );
        // No constraint: a clear error, never a walk of the whole file system.
        let env =
            crate::sql::TableEnv::new(None, std::sync::Arc::new(crate::flags::Flags::default()));
        let e = crate::sql::Engine::new(env)
            .unwrap()
            .query("SELECT * FROM file")
            .unwrap_err();
        assert!(
            e.contains("file needs a path or directory constraint"),
            "{e}"
        );
    }
}
