//! `hash`: md5, sha1 and sha256 of the files a query names, in one streaming pass (`sys::hash`,
//! as the file events' hashes). The same constraints as `file`: `path` or `directory`
//! (required), `=` or `LIKE` with `%` per level and a last `%%`, never through a symlink; a
//! symlink given by `path = '…'` is hashed through (its target, as osquery does), one met by a
//! pattern or in a directory is not (its target may lie outside what the query names). What is not a regular file,
//! or is larger than `--read_max`, has no row (osquery: the same), a file that cannot be read
//! neither.

use crate::{
    sql::{
        TableEnv,
        tables::{
            file::{named, named_cost},
            util::text,
        },
        vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col},
    },
    sys::hash::{Hashed, hash_file},
};

const COLUMNS: &[Column] = &[
    col("path", Text),
    col("directory", Text),
    col("md5", Text),
    col("sha1", Text),
    col("sha256", Text),
];

pub struct Hash {
    env: TableEnv,
}

impl Hash {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

impl Table for Hash {
    fn name(&self) -> &'static str {
        "hash"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn cost(&self, constrained: &[(usize, Op)]) -> f64 {
        named_cost(constrained)
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let given = ctx.equal_texts(0);
        let paths: Vec<_> = named(ctx, "hash")?
            .into_iter()
            .filter(|p| {
                !std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
                    || given.iter().any(|g| std::path::Path::new(g) == p)
            })
            .collect();
        let read_max = self.env.flags.u64("read_max");
        Ok(Box::new(
            paths
                .into_iter()
                .filter_map(|p| match hash_file(&p, read_max) {
                    Hashed::Done(h) => Some(Ok(vec![
                        text(p.display().to_string()),
                        text(
                            p.parent()
                                .map(|d| d.display().to_string())
                                .unwrap_or_default(),
                        ),
                        text(h.md5),
                        text(h.sha1),
                        text(h.sha256),
                    ])),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .into_iter(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn digests_are_what_the_sum_tools_print() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"osprey\n").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        // A symlink to a file outside the folder: hashed only when named itself.
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), "elsewhere").unwrap();
        let l = dir.path().join("link");
        std::os::unix::fs::symlink(outside.path(), &l).unwrap();
        let a_s = a.display().to_string();
        let sum = |tool_name: &str| {
            tool(tool_name, &[&a_s])
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            rows_of(&format!(
                "SELECT path, md5, sha1, sha256 FROM hash WHERE path = '{a_s}'"
            )),
            [vec![
                a_s.clone(),
                sum("md5sum"),
                sum("sha1sum"),
                sum("sha256sum")
            ]]
        );
        // A folder's entries: the folder `sub` is no regular file, so only `a`.
        let d = dir.path().display().to_string();
        assert_eq!(
            rows_of(&format!("SELECT path FROM hash WHERE directory = '{d}'")),
            [vec![a_s]]
        );
        let l_s = l.display().to_string();
        let target = tool("sha256sum", &[&outside.path().display().to_string()]);
        assert_eq!(
            rows_of(&format!("SELECT sha256 FROM hash WHERE path = '{l_s}'")),
            [vec![target.split_whitespace().next().unwrap().to_owned()]]
        );
    }
}
