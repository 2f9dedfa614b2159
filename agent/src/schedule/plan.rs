//! What to run: the config's `schedule` and its packs' queries, with osquery's names and
//! filters.
//!
//! - Names: a `schedule` entry keeps its own; a pack query is `pack` + delimiter + pack name +
//!   delimiter + query name (`pack_delimiter`, default `_`: `pack_mypack_myquery`).
//! - `platform` (of a query or of its pack): `all`, `any`, `posix`, `linux` or a comma list of
//!   them match this host; other platforms (`darwin`, `windows`, …) leave the query out.
//! - A pack with `discovery` queries is active only while every one of them returns a row
//!   (checked by the scheduler on each config change and every `pack_refresh_interval`).
//! - `version` (of a query or its pack): the lowest osquery version the query needs; it runs
//!   when [`OSQUERY_COMPAT`], the osquery version whose tables, flags and formats this build
//!   follows, is at least that.
//! - `shard` (of a query or its pack, 1..=100) keeps the query on that percentage of hosts:
//!   it runs where the host's shard (the first byte of the SHA-1 of its host identifier,
//!   modulo 100, as osquery computes it) is at most the shard given.
//! - The interval is splayed by up to `schedule_splay_percent` either way, by a value derived
//!   from the name, so that a restart keeps the same interval.

use crate::config::{Config, Query};

pub use crate::sql::OSQUERY_COMPAT;

/// Does this build meet `version` (osquery's field, `major.minor.patch`; empty = any)? A
/// version that does not parse is not met (the query is left out, as osquery does).
pub fn version_met(version: Option<&str>) -> bool {
    let Some(v) = version.map(str::trim).filter(|v| !v.is_empty()) else {
        return true;
    };
    let parse = |s: &str| -> Option<Vec<u64>> {
        s.split('.').map(|p| p.trim().parse::<u64>().ok()).collect()
    };
    match (parse(v), parse(OSQUERY_COMPAT)) {
        (Some(want), Some(have)) => {
            let n = want.len().max(have.len());
            let pad = |mut x: Vec<u64>| {
                x.resize(n, 0);
                x
            };
            pad(have) >= pad(want)
        }
        _ => false,
    }
}

/// One scheduled query, ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub name: String,
    pub sql: String,
    /// Seconds after splay.
    pub interval: u64,
    pub snapshot: bool,
    /// Log removed rows (osquery's `removed`, default true).
    pub removed: bool,
    /// The watchdog may denylist it (osquery's `denylist`, default true).
    pub denylist: bool,
    /// The pack it belongs to (None: the top-level schedule).
    pub pack: Option<String>,
}

/// A pack as the scheduler follows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackPlan {
    pub name: String,
    pub platform: String,
    pub version: String,
    pub shard: u64,
    pub discovery: Vec<String>,
    /// False when the platform does not match (never active).
    pub runs_here: bool,
}

/// Does `platform` (osquery's field; empty = any) include this host?
pub fn platform_matches(platform: Option<&str>) -> bool {
    let Some(p) = platform.map(str::trim).filter(|p| !p.is_empty()) else {
        return true;
    };
    p.split(',').map(str::trim).any(|one| {
        matches!(one, "all" | "any" | "posix" | "linux" | "ubuntu" | "centos")
            || (cfg!(target_os = "macos") && one == "darwin")
            || (cfg!(windows) && one == "windows")
    })
}

/// `interval` moved by up to `percent` % either way (at least 1 s), stable for a name.
pub fn splay(name: &str, interval: u64, percent: u64) -> u64 {
    if percent == 0 || percent > 100 || interval == 0 {
        return interval.max(1);
    }
    let span = interval * percent / 100;
    if span == 0 {
        return interval;
    }
    // FNV-1a of the name: the same offset on every start.
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let offset = h % (2 * span + 1);
    (interval + offset).saturating_sub(span).max(1)
}

/// How intervals are chosen (`schedule_default_interval` for a query without one, then
/// `schedule_splay_percent`), and this host's shard.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub default_interval: u64,
    pub splay_percent: u64,
    pub machine_shard: u64,
}

/// osquery's machine shard of a host identifier: 0..=99.
pub fn machine_shard(host_identifier: &str) -> u64 {
    use sha1::Digest;
    let h = sha1::Sha1::digest(host_identifier.as_bytes());
    u64::from(h[0]) % 100
}

fn in_shard(shard: Option<u64>, t: Timing) -> bool {
    shard.is_none_or(|s| s == 0 || t.machine_shard <= s)
}

/// The filters a query and a pack share: platform, shard and version.
fn applies(platform: Option<&str>, shard: Option<u64>, version: Option<&str>, t: Timing) -> bool {
    platform_matches(platform) && in_shard(shard, t) && version_met(version)
}

fn job(name: String, q: &Query, pack: Option<&str>, t: Timing) -> Job {
    let interval = if q.interval_given {
        q.interval
    } else {
        t.default_interval.max(1)
    };
    Job {
        interval: splay(&name, interval, t.splay_percent),
        name,
        sql: q.query.clone(),
        snapshot: q.snapshot,
        removed: q.removed,
        denylist: q.denylist,
        pack: pack.map(str::to_owned),
    }
}

/// Every job of `config` for this host, and its packs.
pub fn plan(config: &Config, delimiter: &str, t: Timing) -> (Vec<Job>, Vec<PackPlan>) {
    let mut jobs = Vec::new();
    for (name, q) in &config.schedule {
        if applies(q.platform.as_deref(), q.shard, q.version.as_deref(), t) {
            jobs.push(job(name.clone(), q, None, t));
        }
    }
    let mut packs = Vec::new();
    for (pack, p) in &config.packs {
        let runs_here = applies(p.platform.as_deref(), p.shard, p.version.as_deref(), t);
        packs.push(PackPlan {
            name: pack.clone(),
            platform: p.platform.clone().unwrap_or_default(),
            version: p.version.clone().unwrap_or_default(),
            shard: p.shard.unwrap_or(0),
            discovery: p.discovery.clone(),
            runs_here,
        });
        if !runs_here {
            continue;
        }
        for (qname, q) in &p.queries {
            if applies(q.platform.as_deref(), q.shard, q.version.as_deref(), t) {
                let name = format!("pack{delimiter}{pack}{delimiter}{qname}");
                jobs.push(job(name, q, Some(pack), t));
            }
        }
    }
    (jobs, packs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::parse(text, "test", None).unwrap().config
    }

    #[test]
    fn names_platforms_and_packs_as_osquery() {
        let c = config(
            r#"{"schedule": {"procs": {"query": "SELECT 1", "interval": 60},
                              "mac": {"query": "SELECT 2", "interval": 60, "platform": "darwin"}},
                "packs": {"mine": {"queries": {"q": {"query": "SELECT 3", "interval": 10,
                                                      "snapshot": true, "removed": false}}},
                          "win": {"platform": "windows", "queries": {"w": {"query": "SELECT 4"}}},
                          "gated": {"discovery": ["SELECT 1 WHERE 0"],
                                    "queries": {"g": {"query": "SELECT 5", "platform": "linux,darwin"}}}}}"#,
        );
        let t = Timing {
            default_interval: 3600,
            splay_percent: 0,
            machine_shard: 0,
        };
        let (jobs, packs) = plan(&c, "_", t);
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["procs", "pack_mine_q", "pack_gated_g"]);
        assert_eq!(
            jobs[1],
            Job {
                name: "pack_mine_q".into(),
                sql: "SELECT 3".into(),
                interval: 10,
                snapshot: true,
                removed: false,
                denylist: true,
                pack: Some("mine".into()),
            }
        );
        let (jobs, _) = plan(
            &c,
            "/",
            Timing {
                default_interval: 77,
                splay_percent: 0,
                machine_shard: 0,
            },
        );
        assert_eq!(jobs[1].name, "pack/mine/q");
        // No interval given: schedule_default_interval.
        assert_eq!(
            (jobs[2].name.as_str(), jobs[2].interval),
            ("pack/gated/g", 77)
        );
        assert_eq!(
            packs
                .iter()
                .map(|p| (p.name.as_str(), p.runs_here, p.discovery.len()))
                .collect::<Vec<_>>(),
            [("mine", true, 0), ("win", false, 0), ("gated", true, 1)]
        );
    }

    #[test]
    fn shards_keep_a_query_on_a_share_of_hosts() {
        // sha1("web-01") starts with 0xc6 (198 % 100 = 98); sha1("db-7") with 0x30 (48).
        assert_eq!(machine_shard("web-01"), 98);
        assert_eq!(machine_shard("db-7"), 48);
        let c = config(
            r#"{"schedule": {"half": {"query": "SELECT 1", "shard": 50},
                              "all": {"query": "SELECT 2", "shard": 100}}}"#,
        );
        let names = |shard| {
            let t = Timing {
                default_interval: 60,
                splay_percent: 0,
                machine_shard: shard,
            };
            plan(&c, "_", t)
                .0
                .into_iter()
                .map(|j| j.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(98), ["all"]);
        assert_eq!(names(48), ["half", "all"]);
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(version_met(None));
        assert!(version_met(Some("")));
        assert!(version_met(Some("1.4.5")));
        assert!(version_met(Some("5.12.1")));
        assert!(version_met(Some("5.12")));
        assert!(version_met(Some("5.2.10")), "numbers, not text");
        assert!(!version_met(Some("5.12.2")));
        assert!(!version_met(Some("6.0.0")));
        assert!(!version_met(Some("latest")));
    }

    #[test]
    fn splay_is_bounded_and_stable() {
        for name in ["a", "b", "pack_x_y", "a longer name"] {
            let s = splay(name, 100, 10);
            assert!((90..=110).contains(&s), "{name}: {s}");
            assert_eq!(s, splay(name, 100, 10));
        }
        assert_eq!(splay("a", 100, 0), 100);
        assert_eq!(
            splay("a", 5, 10),
            5,
            "a span under a second does not move it"
        );
        assert!(splay("a", 1, 100) >= 1);
    }
}
