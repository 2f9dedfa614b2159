use std::sync::Arc;

use crate::{
    flags::Flags,
    sql::{Engine, TableEnv},
};

/// An OSV record for Debian source package `name` in `ecosystem`, with one range.
fn record(id: &str, name: &str, ecosystem: &str, events: &str) -> String {
    format!(
        r#"{{"id": "{id}", "summary": "{id} in {name}", "aliases": ["CVE-2026-{n}"],
            "affected": [{{"package": {{"ecosystem": "{ecosystem}", "name": "{name}"}},
              "ranges": [{{"type": "ECOSYSTEM", "events": {events}}}],
              "ecosystem_specific": {{"urgency": "high"}}}}]}}"#,
        n = id.len()
    )
}

const STATUS: &str = "Package: libfoo1\nStatus: install ok installed\nSource: foo (1.2-3)\nVersion: 1.2-3+b1\n\n\
Package: baz\nStatus: install ok installed\nVersion: 2.0-1\n\n\
Package: bar\nStatus: install ok installed\nVersion: 1:0.9-1\n\n\
Package: qux\nStatus: install ok installed\nVersion: 3.0~rc1-1\n\n\
Package: libbar-data\nStatus: install ok installed\nSource: bardata (2.0-1)\nVersion: 1.9-1\n\n\
Package: gone\nStatus: deinstall ok config-files\nVersion: 0.1-1\n\n";

#[test]
fn installed_packages_match_by_source_with_dpkgs_ordering_and_epochs_decide() {
    let dir = tempfile::tempdir().unwrap();
    let (db, root) = (dir.path().join("osv"), dir.path().join("root"));
    let admindir = root.join("var/lib/dpkg");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::create_dir_all(&admindir).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(admindir.join("status"), STATUS).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\n",
    )
    .unwrap();
    let files = [
        // Affected: 1.2-3+b1 < 1.2-4 (matched by the source, foo, not the binary name).
        (
            "A.json",
            record(
                "DSA-1",
                "foo",
                "Debian:12",
                r#"[{"introduced": "0"}, {"fixed": "1.2-4"}]"#,
            ),
        ),
        // Fixed in the installed version: not listed.
        (
            "B.json",
            record(
                "DSA-2",
                "baz",
                "Debian:12",
                r#"[{"introduced": "0"}, {"fixed": "2.0-1"}]"#,
            ),
        ),
        // Epoch 1 is newer than any version without one: 1:0.9-1 > 1.5-1, not affected.
        (
            "C.json",
            record(
                "DSA-3",
                "bar",
                "Debian:12",
                r#"[{"introduced": "0"}, {"fixed": "1.5-1"}]"#,
            ),
        ),
        // ... but older than 1:1.0-1: affected.
        (
            "D.json",
            record(
                "DSA-4",
                "bar",
                "Debian:12",
                r#"[{"introduced": "0"}, {"fixed": "1:1.0-1"}]"#,
            ),
        ),
        // Another release: not this system's.
        (
            "E.json",
            record(
                "DSA-5",
                "foo",
                "Debian:11",
                r#"[{"introduced": "0"}, {"fixed": "9.9-1"}]"#,
            ),
        ),
        // `~` sorts before anything: 3.0~rc1-1 < 3.0-1; introduced after it: not affected.
        (
            "F.json",
            record(
                "DSA-6",
                "qux",
                "Debian",
                r#"[{"introduced": "3.0-1"}, {"fixed": "3.1-1"}]"#,
            ),
        ),
        // last_affected, inclusive.
        (
            "G.json",
            record(
                "DSA-7",
                "qux",
                "Debian",
                r#"[{"introduced": "0"}, {"last_affected": "3.0~rc1-1"}]"#,
            ),
        ),
        // Built from the fixed source (2.0-1), though the binary's own version is 1.9-1.
        (
            "H.json",
            record(
                "DSA-8",
                "bardata",
                "Debian:12",
                r#"[{"introduced": "0"}, {"fixed": "2.0-1"}]"#,
            ),
        ),
        // Not affected here, but the package that was removed would be: not listed.
        (
            "I.json",
            record(
                "DSA-9",
                "gone",
                "Debian:12",
                r#"[{"introduced": "0"}, {"fixed": "9-1"}]"#,
            ),
        ),
        // Not records: skipped and counted, the query still answers.
        ("bad.json", "{".to_owned()),
        ("no-id.json", r#"{"affected": []}"#.to_owned()),
        ("notes.txt", "not json at all".to_owned()),
    ];
    for (name, body) in files {
        std::fs::write(db.join(name), body).unwrap();
    }
    let engine = Engine::new(TableEnv::new(None, Arc::new(Flags::default()))).unwrap();
    let rs = engine
        .query(&format!(
            "SELECT id, package, source, version, fixed_version, ecosystem, aliases, severity, summary \
             FROM vulnerabilities WHERE vuln_db_path = '{}' AND admindir = '{}' ORDER BY id",
            db.display(),
            admindir.display()
        ))
        .unwrap();
    let rows: Vec<Vec<String>> = rs
        .rows
        .iter()
        .map(|r| r.iter().map(crate::sql::text_of).collect())
        .collect();
    assert_eq!(
        rows,
        [
            [
                "DSA-1",
                "libfoo1",
                "foo",
                "1.2-3+b1",
                "1.2-4",
                "Debian:12",
                "CVE-2026-5",
                "high",
                "DSA-1 in foo"
            ],
            [
                "DSA-4",
                "bar",
                "bar",
                "1:0.9-1",
                "1:1.0-1",
                "Debian:12",
                "CVE-2026-5",
                "high",
                "DSA-4 in bar"
            ],
            [
                "DSA-7",
                "qux",
                "qux",
                "3.0~rc1-1",
                "",
                "Debian",
                "CVE-2026-5",
                "high",
                "DSA-7 in qux"
            ],
        ]
    );
    // No database there: no rows, no error.
    let rs = engine
        .query("SELECT id FROM vulnerabilities WHERE vuln_db_path = '/nonexistent/osv'")
        .unwrap();
    assert!(rs.rows.is_empty());
}

#[test]
fn records_that_are_not_osv_are_errors_and_bytes_never_panic() {
    assert_eq!(
        super::parse_record(r#"{"affected": []}"#).unwrap_err(),
        "no id"
    );
    assert_eq!(
        super::parse_record(r#"{"id": "x"}"#).unwrap_err(),
        "no affected list"
    );
    let good = record(
        "DSA-1",
        "foo",
        "Debian:12",
        r#"[{"introduced": "0"}, {"fixed": "1.2-4"}]"#,
    );
    for cut in 0..good.len() {
        let _ = super::parse_record(&good[..cut]);
    }
}
