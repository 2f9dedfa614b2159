//! The CLI contract: errors are clear and exit non-zero; output modes.

use std::process::Command;

use tests::osprey_bin;

fn osprey(args: &[&str]) -> std::process::Output {
    Command::new(osprey_bin())
        .args(args)
        .output()
        .expect("run osprey")
}

#[test]
fn sql_error_is_reported_with_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("--database_path={}", dir.path().join("none").display());
    let out = osprey(&["query", &db, "SELEC 1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Error: near \"SELEC\": syntax error"), "{err}");
    let out = osprey(&["query", &db, "SELECT * FROM no_such_table"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such table: no_such_table"));
}

#[test]
fn unknown_flag_is_an_error_with_a_suggestion() {
    let out = osprey(&["query", "--jsn", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "osprey: error: unknown flag --jsn (did you mean --json?)"
    );
}

#[test]
fn output_modes() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("--database_path={}", dir.path().join("none").display());
    let sql = "SELECT 1 AS a, 'x' AS b";
    let out = osprey(&["query", &db, "--csv", sql]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a|b\n1|x\n");
    let out = osprey(&["query", &db, "--json", sql]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[\n  {\n    \"a\": \"1\",\n    \"b\": \"x\"\n  }\n]\n"
    );
    let out = osprey(&["query", &db, "--line", sql]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a = 1\nb = x\n");
}

/// `deb_packages` against dpkg's own view of the same database: every package with its
/// version, architecture and status, no more, no less.
#[test]
fn deb_packages_match_dpkg_query() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none");
    let out = Command::new("dpkg-query")
        .args([
            "-W",
            "-f",
            "${Package}\t${Version}\t${Architecture}\t${Status}\n",
        ])
        .output()
        .expect("dpkg-query (this is a Debian machine)");
    assert!(out.status.success());
    let mut want: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    want.sort();
    let rows = tests::query_at(
        &db,
        "SELECT name || char(9) || version || char(9) || arch || char(9) || status AS l FROM deb_packages",
    );
    let mut got: Vec<String> = rows.iter().map(|r| tests::s(r, "l").to_owned()).collect();
    got.sort();
    assert!(want.len() > 50, "{want:?}");
    assert_eq!(got, want);
    // Fleet's software query, with the dpkg version order as collation.
    let rows = tests::query_at(
        &db,
        "SELECT name, version FROM deb_packages WHERE name = 'dpkg' AND status LIKE '% ok installed' ORDER BY version COLLATE version_dpkg",
    );
    assert_eq!(rows.len(), 1);
}

fn lines(cmd: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(out.status.success(), "{cmd} {args:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `interface_addresses`, `interface_details` and `routes` against iproute2's view.
#[test]
fn network_tables_match_ip() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none");
    // Addresses: "<if> <address>/<prefix>", as `ip -o addr` prints them.
    let mut want: Vec<String> = lines("ip", &["-o", "addr"])
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(format!("{} {}", f.get(1)?, f.get(3)?))
        })
        .collect();
    want.sort();
    let mut got: Vec<String> = tests::query_at(
        &db,
        "SELECT interface, address, mask FROM interface_addresses",
    )
    .iter()
    .map(|r| {
        let mask = tests::s(r, "mask");
        let bits: u32 = if mask.contains(':') {
            mask.split(':')
                .filter(|p| !p.is_empty())
                .map(|p| u16::from_str_radix(p, 16).unwrap_or(0).count_ones())
                .sum()
        } else {
            mask.split('.')
                .map(|p| p.parse::<u8>().unwrap_or(0).count_ones())
                .sum()
        };
        format!(
            "{} {}/{bits}",
            tests::s(r, "interface"),
            tests::s(r, "address")
        )
    })
    .collect();
    got.sort();
    assert_eq!(got, want);
    // Links: name, MAC and MTU as `ip -o link` prints them.
    let mut want: Vec<String> = lines("ip", &["-o", "link"])
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = f.get(1)?.trim_end_matches(':').split('@').next()?;
            let mtu = f
                .iter()
                .position(|w| *w == "mtu")
                .and_then(|i| f.get(i + 1))?;
            let mac = f
                .iter()
                .position(|w| w.starts_with("link/"))
                .and_then(|i| f.get(i + 1))?;
            Some(format!("{name} {mac} {mtu}"))
        })
        .collect();
    want.sort();
    let mut got: Vec<String> =
        tests::query_at(&db, "SELECT interface, mac, mtu FROM interface_details")
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    tests::s(r, "interface"),
                    tests::s(r, "mac"),
                    tests::s(r, "mtu")
                )
            })
            .collect();
    got.sort();
    assert_eq!(got, want);
    // The IPv4 default route: the gateway and interface `ip route` names.
    let default = lines("ip", &["-4", "route", "show", "default"]);
    let f: Vec<&str> = default
        .first()
        .map_or(vec![], |l| l.split_whitespace().collect());
    let rows = tests::query_at(
        &db,
        "SELECT gateway, interface FROM routes WHERE destination = '0.0.0.0' AND netmask = 0 AND type = 'gateway'",
    );
    if let (Some(via), Some(dev)) = (
        f.iter()
            .position(|w| *w == "via")
            .and_then(|i| f.get(i + 1)),
        f.iter()
            .position(|w| *w == "dev")
            .and_then(|i| f.get(i + 1)),
    ) {
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (
                tests::s(&rows[0], "gateway"),
                tests::s(&rows[0], "interface")
            ),
            (*via, *dev)
        );
    } else {
        assert_eq!(rows.len(), 0, "no default route here: {rows:?}");
    }
}

/// `python_packages` of Debian's dist-packages folder against the system Python's own
/// `importlib.metadata` over the same folder.
#[test]
fn python_packages_match_importlib_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none");
    let site = "/usr/lib/python3/dist-packages";
    let mut want = lines(
        "/usr/bin/python3",
        &[
            "-c",
            &format!(
                "import importlib.metadata as m\nfor d in m.distributions(path=['{site}']): print(d.metadata['Name'] + ' ' + d.version)"
            ),
        ],
    );
    want.sort();
    want.dedup();
    let mut got: Vec<String> = tests::query_at(
        &db,
        &format!(
            "SELECT name || ' ' || version AS l FROM python_packages WHERE directory = '{site}'"
        ),
    )
    .iter()
    .map(|r| tests::s(r, "l").to_owned())
    .collect();
    got.sort();
    got.dedup();
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

/// `disk_encryption` has a row for every block device `lsblk -a` lists.
#[test]
fn disk_encryption_lists_every_block_device() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none");
    let mut want: Vec<String> = lines("lsblk", &["-a", "-rno", "NAME"])
        .iter()
        .map(|n| format!("/dev/{n}"))
        .collect();
    want.sort();
    want.dedup();
    let got: Vec<String> = tests::query_at(
        &db,
        "SELECT name, encrypted, encryption_status FROM disk_encryption ORDER BY name",
    )
    .iter()
    .map(|r| {
        // Nothing on this machine is a dm-crypt mapping.
        assert_eq!(
            (tests::s(r, "encrypted"), tests::s(r, "encryption_status")),
            ("0", "not encrypted")
        );
        tests::s(r, "name").to_owned()
    })
    .collect();
    assert_eq!(got, want);
}
