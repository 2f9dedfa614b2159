//! `jetbrains_plugins`: the plugins of JetBrains IDEs in each account's
//! `~/.local/share/JetBrains/<product><version>/` folders, osquery's products ([`PRODUCTS`];
//! a folder belongs to the product with the longest matching prefix, so `PyCharmCE2024.1`
//! is PyCharm Community's only). Accounts and file guards: [`super::user_files`]; `WHERE uid
//! = N` reads one account.
//!
//! In such a folder, a file that is a zip archive (a jar) with a `META-INF/plugin.xml` is a
//! plugin, and so is a sub-folder with such a jar in its `lib/` (the jars tried in the
//! order IntelliJ tries them: `resources*` and versioned `name-1.2.jar` ones last, then those
//! named like the folder first, `-idea.jar` and `database-plugin.jar` last, shorter names
//! first). `name`, `vendor` and `version` are the contents of the first `<name…>`,
//! `<vendor…>` and `<version…>` elements of `plugin.xml`, as osquery takes them (not
//! trimmed nor unescaped; empty when absent). Only the zip's central directory and that
//! one entry (stored or deflated, at most 8 MiB) are read.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::Path,
    sync::LazyLock,
};

use regex::Regex;
use rusqlite::types::Value;

use crate::sql::{
    tables::{
        user_files::{Account, accounts, in_home, open_inside, uid_cost},
        util::{int, text},
    },
    vtab::{Column, ColumnType::*, Op, QueryContext, Rows, Table, col},
};

const COLUMNS: &[Column] = &[
    col("product_type", Text),
    col("uid", BigInt),
    col("name", Text),
    col("version", Text),
    col("vendor", Text),
    col("path", Text),
];
const UID: usize = 1;
/// Folder name prefixes under `~/.local/share/JetBrains` and osquery's product names.
pub const PRODUCTS: [(&str, &str); 13] = [
    ("CLion", "clion"),
    ("DataGrip", "datagrip"),
    ("GoLand", "goland"),
    ("IntelliJIdea", "intellij_idea"),
    ("IdeaIC", "intellij_idea_community_edition"),
    ("PhpStorm", "phpstorm"),
    ("PyCharm", "pycharm"),
    ("PyCharmCE", "pycharm_community_edition"),
    ("ReSharper", "resharper"),
    ("Rider", "rider"),
    ("RubyMine", "rubymine"),
    // sic: osquery's name for RustRover.
    ("RustRover", "rust_rov"),
    ("WebStorm", "webstorm"),
];
const PLUGIN_XML: &str = "META-INF/plugin.xml";
const MAX_ENTRY: u64 = 8 << 20;
/// The most central directory read from a jar.
const MAX_DIRECTORY: u64 = 64 << 20;

/// The product of a folder name: the longest matching prefix's.
pub fn product_of(folder: &str) -> Option<&'static str> {
    PRODUCTS
        .iter()
        .filter(|(p, _)| folder.starts_with(p))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, name)| *name)
}

fn le16(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le32(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_le_bytes(
        b.get(at..at + 4)?.try_into().ok()?,
    )))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn read_at(f: &mut File, at: u64, len: u64) -> Option<Vec<u8>> {
    f.seek(SeekFrom::Start(at)).ok()?;
    let mut buf = Vec::new();
    f.take(len).read_to_end(&mut buf).ok()?;
    (buf.len() as u64 == len).then_some(buf)
}

/// The contents of the entry named `want` of the zip archive `f` (stored or deflated, at
/// most `max` bytes); None when `f` is not a zip, has no such entry or it is larger.
pub fn zip_entry(f: &mut File, want: &str, max: u64) -> Option<Vec<u8>> {
    let len = f.metadata().ok()?.len();
    // The end of central directory record: 22 bytes and a comment of up to 64 KiB.
    let tail_len = len.min(22 + 0xffff);
    let tail = read_at(f, len - tail_len, tail_len)?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])?;
    let (mut dir_size, mut dir_at) = (le32(&tail, eocd + 12)?, le32(&tail, eocd + 16)?);
    if dir_size == 0xffff_ffff || dir_at == 0xffff_ffff {
        // Zip64: the locator just before the record names the zip64 record.
        let loc = eocd.checked_sub(20)?;
        (tail[loc..loc + 4] == [0x50, 0x4b, 0x06, 0x07]).then_some(())?;
        let rec = read_at(f, le64(&tail, loc + 8)?, 56)?;
        (rec[..4] == [0x50, 0x4b, 0x06, 0x06]).then_some(())?;
        (dir_size, dir_at) = (le64(&rec, 40)?, le64(&rec, 48)?);
    }
    if dir_size > MAX_DIRECTORY {
        return None;
    }
    let dir = read_at(f, dir_at, dir_size)?;
    let mut i = 0;
    while dir.get(i..i + 4) == Some(&[0x50, 0x4b, 0x01, 0x02]) {
        let method = le16(&dir, i + 10)?;
        let (packed, size) = (le32(&dir, i + 20)?, le32(&dir, i + 24)?);
        let (name_len, extra_len, comment_len) = (
            le16(&dir, i + 28)? as usize,
            le16(&dir, i + 30)? as usize,
            le16(&dir, i + 32)? as usize,
        );
        let local = le32(&dir, i + 42)?;
        let name = dir.get(i + 46..i + 46 + name_len)?;
        i += 46 + name_len + extra_len + comment_len;
        if name != want.as_bytes() {
            continue;
        }
        if size > max || packed == 0xffff_ffff || local == 0xffff_ffff {
            return None;
        }
        let head = read_at(f, local, 30)?;
        (head[..4] == [0x50, 0x4b, 0x03, 0x04]).then_some(())?;
        let data_at = local + 30 + le16(&head, 26)? + le16(&head, 28)?;
        f.seek(SeekFrom::Start(data_at)).ok()?;
        let packed_data = Read::by_ref(f).take(packed);
        let mut out = Vec::new();
        match method {
            0 => packed_data.take(max).read_to_end(&mut out).ok()?,
            8 => flate2::read::DeflateDecoder::new(packed_data)
                .take(max)
                .read_to_end(&mut out)
                .ok()?,
            _ => return None,
        };
        return Some(out);
    }
    None
}

/// The `(name, version, vendor)` of a `plugin.xml` text, as osquery reads them.
pub fn parse_plugin_xml(xml: &str) -> (String, String, String) {
    static TAGS: LazyLock<[Regex; 3]> = LazyLock::new(|| {
        ["name", "version", "vendor"]
            .map(|t| Regex::new(&format!(r"<{t}[\s\S]*?>([\s\S]*?)</{t}>")).expect("tag regex"))
    });
    let content = |i: usize, guard: &str| {
        if !xml.contains(guard) {
            return String::new();
        }
        TAGS[i]
            .captures(xml)
            .and_then(|c| c.get(1))
            .map_or_else(String::new, |m| m.as_str().to_owned())
    };
    (
        content(0, "<name>"),
        content(1, "<version>"),
        content(2, "<vendor"),
    )
}

/// IntelliJ's guess that a jar is a versioned library: `-` then a digit (or `m`/`M` and a
/// digit) after its last `-`.
pub fn is_versioned_library(name: &str) -> bool {
    let Some(i) = name.rfind('-') else {
        return false;
    };
    let b = &name.as_bytes()[i + 1..];
    match b {
        [c, ..] if c.is_ascii_digit() => true,
        [b'm' | b'M', c, ..] => c.is_ascii_digit(),
        _ => false,
    }
}

/// The jars of a plugin's `lib` in the order they are tried (see the module comment).
pub fn order_jars(plugin_folder: &str, jars: &mut [String]) {
    let folder = plugin_folder.to_ascii_lowercase();
    jars.sort_by_key(|n| {
        let lower = n.to_ascii_lowercase();
        (
            n.starts_with("resources"),
            is_versioned_library(n),
            !lower.starts_with(&folder),
            lower.ends_with("-idea.jar"),
            n == "database-plugin.jar",
            n.len(),
            n.clone(),
        )
    });
}

/// The names of the entries of `dir` that are folders (`dirs`) or not, sorted.
fn entries(dir: &Path, dirs: bool) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir() == dirs))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// `plugin.xml` of the jar at `file` (a regular file inside the home), parsed.
fn jar_attributes(a: &Account, file: &Path) -> Option<(String, String, String)> {
    let mut f = open_inside(&a.path, file)?;
    let xml = zip_entry(&mut f, PLUGIN_XML, MAX_ENTRY).filter(|x| !x.is_empty())?;
    Some(parse_plugin_xml(&String::from_utf8_lossy(&xml)))
}

fn rows_under(root: &Path, ctx: &QueryContext) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for a in accounts(root, ctx, UID) {
        let (base, base_shown) = in_home(&a, ".local/share/JetBrains");
        for folder in entries(&base, true) {
            let Some(product) = product_of(&folder) else {
                continue;
            };
            let dir = base.join(&folder);
            let shown = format!("{base_shown}/{folder}");
            let mut row = |attrs: (String, String, String), path: String| {
                let (name, version, vendor) = attrs;
                rows.push(vec![
                    text(product),
                    int(a.uid),
                    text(name),
                    text(version),
                    text(vendor),
                    text(path),
                ]);
            };
            for file in entries(&dir, false) {
                if let Some(attrs) = jar_attributes(&a, &dir.join(&file)) {
                    row(attrs, format!("{shown}/{file}"));
                }
            }
            for plugin in entries(&dir, true) {
                let lib = dir.join(&plugin).join("lib");
                let mut jars = entries(&lib, false);
                order_jars(&plugin, &mut jars);
                if let Some(attrs) = jars.iter().find_map(|j| jar_attributes(&a, &lib.join(j))) {
                    row(attrs, format!("{shown}/{plugin}"));
                }
            }
        }
    }
    rows
}

#[derive(Debug)]
pub struct JetbrainsPlugins;

impl Table for JetbrainsPlugins {
    fn name(&self) -> &'static str {
        "jetbrains_plugins"
    }
    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }
    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        Ok(Box::new(
            rows_under(Path::new("/"), ctx).into_iter().map(Ok),
        ))
    }
    fn cost(&self, constrained: &[(usize, Op)]) -> f64 {
        uid_cost(constrained, UID)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::tables::{
        user_files::tests::{fake_root, uid_eq},
        util::tool,
    };

    const XML: &str = "<idea-plugin>\n  <id>org.example.banana</id>\n  <name>Banana Tools</name>\n  <version>1.3.18</version>\n  <vendor url=\"https://example.org\" email=\"dev@example.org\">Example Org</vendor>\n  <description><![CDATA[<b>x</b>]]></description>\n</idea-plugin>\n";

    /// A jar at `jar` (made with `zip`, deflated unless `stored`) holding `files`.
    fn make_jar(jar: &Path, files: &[(&str, &str)], stored: bool) {
        let src = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let p = src.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        std::fs::create_dir_all(jar.parent().unwrap()).unwrap();
        let mut args = vec!["-q", "-X", if stored { "-0" } else { "-9" }];
        let jar_s = jar.to_str().unwrap();
        args.push(jar_s);
        args.extend(files.iter().map(|(n, _)| *n));
        let out = std::process::Command::new("zip")
            .current_dir(src.path())
            .args(&args)
            .output()
            .expect("zip");
        assert!(out.status.success(), "{out:?}");
    }

    #[test]
    fn zip_entries_are_read_as_unzip_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let big = "<!-- filler -->\n".repeat(2000) + XML;
        for stored in [false, true] {
            let jar = dir.path().join(format!("p{stored}.jar"));
            make_jar(
                &jar,
                &[
                    ("a/Other.class", "cafebabe"),
                    (PLUGIN_XML, &big),
                    ("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n"),
                ],
                stored,
            );
            let want = tool("unzip", &["-p", jar.to_str().unwrap(), PLUGIN_XML]);
            assert_eq!(want, big);
            let mut f = File::open(&jar).unwrap();
            assert_eq!(
                zip_entry(&mut f, PLUGIN_XML, MAX_ENTRY).as_deref(),
                Some(big.as_bytes())
            );
            assert_eq!(zip_entry(&mut f, "META-INF/none.xml", MAX_ENTRY), None);
            // Larger than the cap: not read.
            assert_eq!(zip_entry(&mut f, PLUGIN_XML, 100), None);
        }
        let not_zip = dir.path().join("x.jar");
        std::fs::write(&not_zip, "PK\x05\x06 but not really a zip at all").unwrap();
        assert_eq!(
            zip_entry(&mut File::open(&not_zip).unwrap(), PLUGIN_XML, MAX_ENTRY),
            None
        );
        std::fs::write(&not_zip, "").unwrap();
        assert_eq!(
            zip_entry(&mut File::open(&not_zip).unwrap(), PLUGIN_XML, MAX_ENTRY),
            None
        );
    }

    /// A jar truncated at every byte and with every byte altered: never a panic, and the
    /// entry read back only when the bytes it needs are intact.
    #[test]
    fn damaged_jars_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let jar = dir.path().join("p.jar");
        make_jar(&jar, &[("a", "x"), (PLUGIN_XML, XML)], false);
        let good = std::fs::read(&jar).unwrap();
        let probe = dir.path().join("probe.jar");
        let read = |bytes: &[u8]| {
            std::fs::write(&probe, bytes).unwrap();
            zip_entry(&mut File::open(&probe).unwrap(), PLUGIN_XML, MAX_ENTRY)
        };
        assert_eq!(read(&good).as_deref(), Some(XML.as_bytes()));
        let mut found = 0;
        for i in 0..good.len() {
            assert_eq!(read(&good[..i]), None, "truncated at {i}");
            for b in [0u8, 0xff, good[i] ^ 1] {
                let mut m = good.clone();
                m[i] = b;
                found += usize::from(read(&m).is_some());
            }
        }
        // Bytes such as timestamps and CRCs are not checked, so some damage reads back.
        assert!(found > 0 && found < 3 * good.len(), "{found}");
    }

    #[test]
    fn plugin_xml_and_jar_order_follow_osquery() {
        assert_eq!(
            parse_plugin_xml(XML),
            (
                "Banana Tools".to_owned(),
                "1.3.18".to_owned(),
                "Example Org".to_owned()
            )
        );
        assert_eq!(
            parse_plugin_xml("<idea-plugin><vendor>\n  Osquery\n</vendor></idea-plugin>"),
            (String::new(), String::new(), "\n  Osquery\n".to_owned())
        );
        for (name, versioned) in [
            ("kotlin-stdlib-1.5.0.jar", true),
            ("kotlin-stdlib-m5.jar", true),
            ("kotlin-stdlib-M5.jar", true),
            ("jsr305-3.0.2.jar", true),
            ("kotlin-stdlib-1.5.0-sources.jar", false),
            ("kotlin-stdlib.jar", false),
            ("banana-plugin.jar", false),
            ("resources.jar", false),
            ("x-", false),
        ] {
            assert_eq!(is_versioned_library(name), versioned, "{name}");
        }
        let order = |folder: &str, names: &[&str]| {
            let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            order_jars(folder, &mut v);
            v
        };
        assert_eq!(
            order("banana", &["resources.jar", "kotlin-stdlib.jar"]),
            ["kotlin-stdlib.jar", "resources.jar"]
        );
        assert_eq!(
            order(
                "banana",
                &["json-2.8.0.jar", "completion-ranking.jar", "junit-m5.jar"]
            ),
            ["completion-ranking.jar", "junit-m5.jar", "json-2.8.0.jar"]
        );
        assert_eq!(
            order("Banana", &["plugin.jar", "banana-stdlib.jar"]),
            ["banana-stdlib.jar", "plugin.jar"]
        );
        assert_eq!(
            order("banana", &["banana-idea.jar", "banana-stdlib.jar"]),
            ["banana-stdlib.jar", "banana-idea.jar"]
        );
        assert_eq!(
            order("banana", &["database-plugin.jar", "plugin-common.jar"]),
            ["plugin-common.jar", "database-plugin.jar"]
        );
        assert_eq!(
            order("banana", &["android-base-common.jar", "android.jar"]),
            ["android.jar", "android-base-common.jar"]
        );
        assert_eq!(
            product_of("PyCharmCE2024.1"),
            Some("pycharm_community_edition")
        );
        assert_eq!(product_of("PyCharm2024.1"), Some("pycharm"));
        assert_eq!(product_of("RustRover2024.2"), Some("rust_rov"));
        assert_eq!(product_of("consentOptions"), None);
    }

    #[test]
    fn plugins_of_each_account_and_uid_reads_one() {
        let root = fake_root(&[("ann", 1000, "/home/ann"), ("bob", 1001, "/home/bob")]);
        let r = root.path();
        let idea = r.join("home/ann/.local/share/JetBrains/IntelliJIdea2024.3");
        // A plugin that is one jar, one that is a folder with its jar among libraries (the
        // first library tried has no plugin.xml), a folder without one, and other files.
        make_jar(&idea.join("banana.jar"), &[(PLUGIN_XML, XML)], false);
        make_jar(
            &idea.join("cherry/lib/cherry.jar"),
            &[("c/C.class", "x")],
            false,
        );
        make_jar(
            &idea.join("cherry/lib/cherry-core.jar"),
            &[(
                PLUGIN_XML,
                "<idea-plugin><name>Cherry</name><version>2.0</version></idea-plugin>",
            )],
            true,
        );
        make_jar(
            &idea.join("cherry/lib/resources.jar"),
            &[(PLUGIN_XML, "<idea-plugin><name>Wrong</name></idea-plugin>")],
            false,
        );
        make_jar(&idea.join("empty/lib/util.jar"), &[("u", "u")], false);
        std::fs::write(idea.join("notes.txt"), "not a zip").unwrap();
        // Outside the home, through a symlink: not read.
        make_jar(&r.join("opt/evil.jar"), &[(PLUGIN_XML, XML)], false);
        std::os::unix::fs::symlink(r.join("opt/evil.jar"), idea.join("evil.jar")).unwrap();
        make_jar(
            &r.join("home/bob/.local/share/JetBrains/PyCharmCE2024.1/banana.jar"),
            &[(PLUGIN_XML, XML)],
            false,
        );
        std::fs::create_dir_all(r.join("home/bob/.local/share/JetBrains/consentOptions")).unwrap();
        let s = |x: &[&str]| x.iter().map(|s| text(*s)).collect::<Vec<_>>();
        let ann = "/home/ann/.local/share/JetBrains/IntelliJIdea2024.3";
        let mut ann_rows = vec![
            s(&[
                "intellij_idea",
                "1000",
                "Banana Tools",
                "1.3.18",
                "Example Org",
                &format!("{ann}/banana.jar"),
            ]),
            s(&[
                "intellij_idea",
                "1000",
                "Cherry",
                "2.0",
                "",
                &format!("{ann}/cherry"),
            ]),
        ];
        for r in &mut ann_rows {
            r[1] = int(1000);
        }
        let mut bob_row = s(&[
            "pycharm_community_edition",
            "",
            "Banana Tools",
            "1.3.18",
            "Example Org",
            "/home/bob/.local/share/JetBrains/PyCharmCE2024.1/banana.jar",
        ]);
        bob_row[1] = int(1001);
        let mut all = ann_rows.clone();
        all.push(bob_row.clone());
        assert_eq!(rows_under(r, &QueryContext::default()), all);
        assert_eq!(rows_under(r, &uid_eq(UID, 1001)), [bob_row]);
        assert_eq!(rows_under(r, &uid_eq(UID, 1000)), ann_rows);
        assert!(rows_under(r, &uid_eq(UID, 3)).is_empty());
    }
}
