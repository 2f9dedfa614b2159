//! `shadow`: the local accounts' password state from `/etc/shadow` (root only), osquery's
//! columns. `password_status`: `not_set` (`!!`), `locked` (starting with `!`, `*` or `x`),
//! `empty`, else `active`; `hash_alg` is the crypt id of a hash that starts with `$id$`
//! (`y` yescrypt, `6` SHA-512, …); an empty number is -1, as glibc gives it. Hashes are never
//! shown. `WHERE username = '…'` returns only those accounts.

use rusqlite::types::Value;

use crate::{
    sql::{
        tables::util::{int, text},
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col},
    },
    sys::procfs::read_text,
};

const COLUMNS: &[Column] = &[
    col("password_status", Text),
    col("hash_alg", Text),
    col("last_change", BigInt),
    col("min", BigInt),
    col("max", BigInt),
    col("warning", BigInt),
    col("inactive", BigInt),
    col("expire", BigInt),
    col("flag", BigInt),
    col("username", Text),
];
const USERNAME: usize = 9;

#[derive(Debug)]
pub struct Shadow;

/// The row of one line of a shadow file; None for a line that is not one.
pub fn row(line: &str) -> Option<Vec<Value>> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 9 || f[0].is_empty() {
        return None;
    }
    let password = f[1];
    let status = if password == "!!" {
        "not_set"
    } else if password.starts_with(['!', '*', 'x']) {
        "locked"
    } else if password.is_empty() {
        "empty"
    } else {
        "active"
    };
    let hash_alg = password
        .strip_prefix('$')
        .and_then(|rest| rest.split_once('$'))
        .map(|(id, _)| id)
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or("");
    let number = |s: &str| int(s.trim().parse::<i64>().unwrap_or(-1));
    let mut row = vec![text(status), text(hash_alg)];
    row.extend(f[2..9].iter().map(|s| number(s)));
    row.push(text(f[0]));
    Some(row)
}

impl Table for Shadow {
    fn name(&self) -> &'static str {
        "shadow"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let wanted = ctx.equal_texts(USERNAME);
        let s = read_text(std::path::Path::new("/etc/shadow")).unwrap_or_default();
        Ok(Box::new(
            s.lines()
                .filter(|l| {
                    wanted.is_empty() || wanted.iter().any(|w| l.split(':').next() == Some(w))
                })
                .filter_map(row)
                .map(Ok)
                .collect::<Vec<_>>()
                .into_iter(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::tables::util::{rows_of, tool};

    #[test]
    fn statuses_and_algorithms_as_osquery_names_them_and_numbers_as_getent_gives_them() {
        let t = |l: &str| -> Vec<String> {
            super::row(l)
                .unwrap()
                .iter()
                .map(crate::sql::text_of)
                .collect()
        };
        assert_eq!(
            t("a:$y$j9T$salt$hash:19000:0:99999:7:::"),
            [
                "active", "y", "19000", "0", "99999", "7", "-1", "-1", "-1", "a"
            ]
        );
        assert_eq!(t("b:!$6$s$h:19000::::::")[..2], ["locked", ""]);
        assert_eq!(t("c:*:19000:0:99999:7:::")[0], "locked");
        assert_eq!(t("d:!!:::::::")[0], "not_set");
        assert_eq!(
            t("e::1:2:3:4:5:6:7")[..],
            ["empty", "", "1", "2", "3", "4", "5", "6", "7", "e"]
        );
        assert!(super::row("short:x:1").is_none());
        // Every account getent lists, with its numbers (the test runs as root).
        let want: Vec<Vec<String>> = tool("getent", &["shadow"])
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                let n = |s: &str| {
                    if s.is_empty() {
                        "-1".to_owned()
                    } else {
                        s.to_owned()
                    }
                };
                vec![f[0].to_owned(), n(f[2]), n(f[4]), n(f[7])]
            })
            .collect();
        assert!(!want.is_empty());
        assert_eq!(
            rows_of("SELECT username, last_change, max, expire FROM shadow"),
            want
        );
        assert_eq!(
            rows_of("SELECT username FROM shadow WHERE username = 'root'"),
            [vec!["root".to_owned()]]
        );
    }
}
