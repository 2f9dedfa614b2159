//! `vulnerabilities`: installed Debian packages matched on the host against OSV records (the
//! JSON files OSV publishes for Debian) in `--vuln_db_path` (or `WHERE vuln_db_path = '…'`).
//!
//! A record's affected package is a Debian *source* package; an installed package matches by
//! its `Source` (its own name when it has none), in an ecosystem `Debian` or `Debian:<major>`
//! of the installed system (its `VERSION_ID`; any Debian ecosystem when it has none). A
//! version is affected when it is listed in `versions`, or lies in a range of type
//! `ECOSYSTEM`: at or after an `introduced` event and before the next `fixed` (or at or before
//! a `last_affected`), the installed source version compared (a binNMU `1.2-3+b1` of source
//! `1.2-3` is `1.2-3`); versions compare as dpkg compares them (the `debversion` crate: epochs,
//! `~`, revisions). `fixed_version` is the fix of the range that matched (empty when none is
//! known). A file that is not an OSV record, or a version that does not parse, is skipped and
//! counted in one warning per query, never a failed query. `admindir` reads another dpkg
//! database, as in `deb_packages` (its root's os-release then decides the ecosystem).

use std::path::{Path, PathBuf};

use debversion::Version;
use rusqlite::types::Value;
use serde_json::Value as Json;

use super::deb_packages::parse_status;
use crate::{
    sql::{
        TableEnv,
        tables::util::text,
        vtab::{Column, ColumnType::*, QueryContext, Rows, Table, col, hidden},
    },
    sys::procfs::{parse_env_file, read_text},
};

const COLUMNS: &[Column] = &[
    col("id", Text),
    col("package", Text),
    col("source", Text),
    col("version", Text),
    col("fixed_version", Text),
    col("ecosystem", Text),
    col("aliases", Text),
    col("severity", Text),
    col("summary", Text),
    hidden("vuln_db_path", Text),
    hidden("admindir", Text),
];
const VULN_DB_PATH: usize = 9;
const ADMINDIR: usize = 10;
const DEFAULT_ADMINDIR: &str = "/var/lib/dpkg";

pub struct Vulnerabilities {
    env: TableEnv,
}

impl Vulnerabilities {
    pub fn new(env: TableEnv) -> Self {
        Self { env }
    }
}

/// An installed package: binary name, source name, the binary's version and the source's
/// (`Source: name (version)` when they differ, as for a binNMU or a binary versioned on its
/// own; OSV's versions are the source's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    pub source: String,
    pub version: String,
    pub source_version: String,
}

/// The installed packages of a dpkg status file (`install ok installed` only).
pub fn installed(status: &str) -> Vec<Installed> {
    parse_status(status)
        .iter()
        .filter_map(|st| {
            let get = |k: &str| {
                st.iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(k))
                    .map_or("", |(_, v)| v.as_str())
            };
            let name = get("Package");
            if name.is_empty() || get("Status") != "install ok installed" {
                return None;
            }
            let mut source = get("Source").split_whitespace();
            let source_name = source.next().unwrap_or(name);
            let version = get("Version");
            let source_version = source
                .next()
                .and_then(|v| v.strip_prefix('(')?.strip_suffix(')'))
                .unwrap_or(version);
            Some(Installed {
                name: name.to_owned(),
                source: source_name.to_owned(),
                version: version.to_owned(),
                source_version: source_version.to_owned(),
            })
        })
        .collect()
}

/// One affected package of a record, reduced to what matching needs.
#[derive(Debug, Default)]
struct Affected {
    ecosystem: String,
    name: String,
    versions: Vec<String>,
    /// (introduced, fixed, last_affected) per interval of the ECOSYSTEM ranges.
    intervals: Vec<(String, Option<String>, Option<String>)>,
}

/// A record: its fields for the row and its affected packages.
#[derive(Debug, Default)]
pub struct Record {
    id: String,
    summary: String,
    aliases: Vec<String>,
    severity: String,
    affected: Vec<Affected>,
}

fn str_of(v: &Json, key: &str) -> String {
    v.get(key).and_then(Json::as_str).unwrap_or("").to_owned()
}

/// Reads one OSV record. Err: why it is not one.
pub fn parse_record(text: &str) -> Result<Record, String> {
    let v: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let id = str_of(&v, "id");
    if id.is_empty() {
        return Err("no id".to_owned());
    }
    let aliases = v
        .get("aliases")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    // A CVSS vector when there is one, else Debian's urgency.
    let severity = v
        .get("severity")
        .and_then(Json::as_array)
        .and_then(|s| s.first())
        .map(|s| str_of(s, "score"))
        .unwrap_or_default();
    let mut rec = Record {
        summary: str_of(&v, "summary"),
        id,
        aliases,
        severity,
        affected: Vec::new(),
    };
    let Some(list) = v.get("affected").and_then(Json::as_array) else {
        return Err("no affected list".to_owned());
    };
    for a in list {
        let pkg = a.get("package").unwrap_or(&Json::Null);
        let mut aff = Affected {
            ecosystem: str_of(pkg, "ecosystem"),
            name: str_of(pkg, "name"),
            ..Affected::default()
        };
        if rec.severity.is_empty() {
            for key in ["ecosystem_specific", "database_specific"] {
                let u = a.get(key).map(|d| str_of(d, "urgency")).unwrap_or_default();
                if !u.is_empty() {
                    rec.severity = u;
                    break;
                }
            }
        }
        aff.versions = a
            .get("versions")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        for range in a
            .get("ranges")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            if str_of(range, "type") != "ECOSYSTEM" {
                continue;
            }
            let mut open: Option<String> = None;
            for ev in range
                .get("events")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(i) = ev.get("introduced").and_then(Json::as_str) {
                    open = Some(i.to_owned());
                } else if let Some(f) = ev.get("fixed").and_then(Json::as_str) {
                    aff.intervals.push((
                        open.take().unwrap_or_else(|| "0".into()),
                        Some(f.into()),
                        None,
                    ));
                } else if let Some(l) = ev.get("last_affected").and_then(Json::as_str) {
                    aff.intervals.push((
                        open.take().unwrap_or_else(|| "0".into()),
                        None,
                        Some(l.into()),
                    ));
                }
            }
            if let Some(i) = open {
                aff.intervals.push((i, None, None));
            }
        }
        rec.affected.push(aff);
    }
    Ok(rec)
}

/// Whether `ecosystem` is the Debian release `major` (None: any Debian release).
fn debian_ecosystem(ecosystem: &str, major: Option<&str>) -> bool {
    match ecosystem.split_once(':') {
        None => ecosystem == "Debian",
        Some(("Debian", release)) => major.is_none_or(|m| release == m),
        Some(_) => false,
    }
}

/// Whether `v` is affected by `a`: the fix of the interval that holds it (Some("") when
/// none is known), or None. Err: a version that does not parse.
fn affected(a: &Affected, v: &Version) -> Result<Option<String>, String> {
    let parse = |s: &str| {
        s.parse::<Version>()
            .map_err(|e| format!("version {s:?}: {e:?}"))
    };
    for listed in &a.versions {
        if parse(listed)? == *v {
            return Ok(Some(String::new()));
        }
    }
    for (introduced, fixed, last) in &a.intervals {
        let from = introduced == "0" || parse(introduced)? <= *v;
        if !from {
            continue;
        }
        match (fixed, last) {
            (Some(f), _) if *v < parse(f)? => return Ok(Some(f.clone())),
            (Some(_), _) => {}
            (None, Some(l)) if *v <= parse(l)? => return Ok(Some(String::new())),
            (None, Some(_)) => {}
            (None, None) => return Ok(Some(String::new())),
        }
    }
    Ok(None)
}

/// The rows for `packages` against `records`, and how many matches could not be decided.
pub fn matches(
    packages: &[Installed],
    records: &[Record],
    major: Option<&str>,
    admindir: &str,
    db: &str,
) -> (Vec<Vec<Value>>, usize) {
    let mut rows = Vec::new();
    let mut bad = 0;
    for p in packages {
        let Ok(v) = p.source_version.parse::<Version>() else {
            bad += 1;
            continue;
        };
        for r in records {
            for a in &r.affected {
                if a.name != p.source || !debian_ecosystem(&a.ecosystem, major) {
                    continue;
                }
                match affected(a, &v) {
                    Ok(Some(fixed)) => rows.push(vec![
                        text(r.id.clone()),
                        text(p.name.clone()),
                        text(p.source.clone()),
                        text(p.version.clone()),
                        text(fixed),
                        text(a.ecosystem.clone()),
                        text(r.aliases.join(",")),
                        text(r.severity.clone()),
                        text(r.summary.clone()),
                        text(db),
                        text(admindir),
                    ]),
                    Ok(None) => {}
                    Err(_) => bad += 1,
                }
            }
        }
    }
    (rows, bad)
}

/// Every `*.json` record under `dir` (not recursive), and the files skipped with why.
fn load(dir: &Path) -> (Vec<Record>, Vec<(PathBuf, String)>) {
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (records, skipped);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in paths {
        match std::fs::read_to_string(&p)
            .map_err(|e| e.to_string())
            .and_then(|t| parse_record(&t))
        {
            Ok(r) => records.push(r),
            Err(e) => skipped.push((p, e)),
        }
    }
    (records, skipped)
}

/// The Debian major release of the system whose dpkg database is `admindir`.
fn major_of(admindir: &str) -> Option<String> {
    let root = admindir.strip_suffix(DEFAULT_ADMINDIR).unwrap_or("");
    let release = read_text(Path::new(&format!("{root}/etc/os-release")))
        .or_else(|| read_text(Path::new(&format!("{root}/usr/lib/os-release"))))?;
    parse_env_file(&release)
        .into_iter()
        .rev()
        .find(|(k, _)| k == "VERSION_ID")
        .map(|(_, v)| v.split('.').next().unwrap_or("").to_owned())
        .filter(|v| !v.is_empty())
}

impl Table for Vulnerabilities {
    fn name(&self) -> &'static str {
        "vulnerabilities"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn generate(&self, ctx: &QueryContext) -> Result<Rows, String> {
        let mut dbs = ctx.equal_texts(VULN_DB_PATH);
        if dbs.is_empty() {
            dbs.push(self.env.flags.get("vuln_db_path").to_owned());
        }
        let mut admindirs = ctx.equal_texts(ADMINDIR);
        if admindirs.is_empty() {
            admindirs.push(DEFAULT_ADMINDIR.to_owned());
        }
        let mut rows = Vec::new();
        for db in dbs.iter().filter(|d| !d.is_empty()) {
            let (records, skipped) = load(Path::new(db));
            let mut bad = skipped.len();
            for admindir in &admindirs {
                let Some(status) = read_text(&Path::new(admindir).join("status")) else {
                    continue;
                };
                let major = major_of(admindir);
                let (r, b) = matches(
                    &installed(&status),
                    &records,
                    major.as_deref(),
                    admindir,
                    db,
                );
                rows.extend(r);
                bad += b;
            }
            if bad > 0 {
                let first = skipped
                    .first()
                    .map(|(p, e)| format!(" (first: {}: {e})", p.display()))
                    .unwrap_or_default();
                log::warn!("vulnerabilities: {bad} record(s) or version(s) in {db} skipped{first}");
            }
        }
        Ok(Box::new(rows.into_iter().map(Ok)))
    }
}

#[cfg(test)]
mod tests;
