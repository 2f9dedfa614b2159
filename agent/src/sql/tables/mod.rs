//! Every table, one file each. Adding a table = a file here + a line in [`all`] (and an
//! updated `schema.expected`, see [`schema`]).

// Architecture invariant: no table contains `unsafe`; SQL's unsafe code is in `sql/vtab.rs`.
#![forbid(unsafe_code)]

mod apparmor_profiles;
mod apt_sources;
mod arp_cache;
mod atom_packages;
mod authorized_keys;
mod block_devices;
mod carves;
mod chrome_extension_content_scripts;
mod chrome_extensions;
mod cpu_info;
mod cpu_time;
mod cpuid;
mod crontab;
mod deb_package_files;
mod deb_packages;
mod disk_encryption;
mod dns_resolvers;
mod etc_hosts;
mod etc_protocols;
mod etc_services;
mod event_drops;
pub mod event_scan;
mod extended_attributes;
mod file;
mod firefox_addons;
mod groups;
mod hash;
mod interface_ipv6;
mod jetbrains_plugins;
mod kernel_info;
mod kernel_modules;
mod known_hosts;
mod last;
mod listening_ports;
mod load_average;
mod logged_in_users;
mod md_personalities;
mod memory_info;
mod memory_map;
mod mounts;
mod network;
mod npm_packages;
mod ns;
mod os_version;
mod osquery_events;
mod osquery_extensions;
mod osquery_flags;
mod osquery_info;
mod osquery_registry;
mod osquery_schedule;
mod pci_devices;
mod platform_info;
mod portage_keywords;
mod portage_packages;
mod portage_use;
mod process_envs;
mod process_memory_map;
mod process_namespaces;
mod process_open_files;
mod process_open_pipes;
mod process_open_sockets;
pub mod processes;
mod python_packages;
mod rpm_package_files;
mod rpm_packages;
pub mod schema;
mod secureboot;
mod selinux_settings;
mod shadow;
mod shared_memory;
mod shell_history;
mod ssh_configs;
mod startup_items;
mod sudoers;
mod suid_bin;
mod system_controls;
mod system_info;
mod systemd_units;
mod time;
mod ulimit_info;
mod uptime;
mod usb_devices;
mod user_files;
mod user_groups;
mod user_ssh_keys;
mod users;
mod vscode_extensions;
pub(crate) mod vulnerabilities;
mod yum_sources;

pub use system_info::host_uuid;

use std::sync::Arc;

use super::{TableEnv, vtab::Table};

/// The tables `sql` owns (live state and the agent's own); the event tables come from
/// [`TableEnv::providers`].
pub fn all(env: &TableEnv) -> Vec<Arc<dyn Table>> {
    vec![
        Arc::new(osquery_events::OsqueryEvents::new(env.clone())),
        Arc::new(event_drops::EventDrops::new(env.clone())),
        Arc::new(osquery_flags::OsqueryFlags::new(env.clone())),
        Arc::new(osquery_info::OsqueryInfo::new(env.clone())),
        Arc::new(osquery_schedule::OsquerySchedule::new(env.clone())),
        Arc::new(osquery_schedule::OsqueryPacks::new(env.clone())),
        Arc::new(osquery_registry::OsqueryRegistry::new(env.clone())),
        Arc::new(osquery_extensions::OsqueryExtensions::new(env.clone())),
        Arc::new(carves::Carves::new(env.clone())),
        Arc::new(deb_packages::DebPackages),
        Arc::new(network::InterfaceAddresses),
        Arc::new(network::InterfaceDetails),
        Arc::new(network::Routes),
        Arc::new(python_packages::PythonPackages),
        Arc::new(npm_packages::NpmPackages),
        Arc::new(disk_encryption::DiskEncryption),
        Arc::new(rpm_packages::RpmPackages),
        Arc::new(time::Time),
        Arc::new(processes::Processes::new()),
        Arc::new(os_version::OsVersion),
        Arc::new(kernel_info::KernelInfo),
        Arc::new(system_info::SystemInfo),
        Arc::new(uptime::Uptime),
        Arc::new(users::Users),
        Arc::new(groups::Groups),
        Arc::new(mounts::Mounts),
        Arc::new(extended_attributes::ExtendedAttributes),
        Arc::new(etc_hosts::EtcHosts),
        Arc::new(etc_services::EtcServices),
        Arc::new(etc_protocols::EtcProtocols),
        Arc::new(load_average::LoadAverage),
        Arc::new(memory_info::MemoryInfo),
        Arc::new(cpu_time::CpuTime),
        Arc::new(process_envs::ProcessEnvs),
        Arc::new(process_open_files::ProcessOpenFiles),
        Arc::new(process_namespaces::ProcessNamespaces),
        Arc::new(shadow::Shadow),
        Arc::new(file::File),
        Arc::new(hash::Hash::new(env.clone())),
        Arc::new(suid_bin::SuidBin),
        Arc::new(ulimit_info::UlimitInfo),
        Arc::new(system_controls::SystemControls),
        Arc::new(process_open_sockets::ProcessOpenSockets),
        Arc::new(listening_ports::ListeningPorts),
        Arc::new(interface_ipv6::InterfaceIpv6),
        Arc::new(crontab::Crontab),
        Arc::new(kernel_modules::KernelModules),
        Arc::new(logged_in_users::LoggedInUsers),
        Arc::new(last::Last),
        Arc::new(arp_cache::ArpCache),
        Arc::new(process_memory_map::ProcessMemoryMap),
        Arc::new(user_groups::UserGroups),
        Arc::new(deb_package_files::DebPackageFiles),
        Arc::new(dns_resolvers::DnsResolvers),
        Arc::new(vulnerabilities::Vulnerabilities::new(env.clone())),
        Arc::new(systemd_units::SystemdUnits::new(env.clone())),
        Arc::new(startup_items::StartupItems::new(env.clone())),
        Arc::new(sudoers::Sudoers),
        Arc::new(authorized_keys::AuthorizedKeys),
        Arc::new(known_hosts::KnownHosts),
        Arc::new(process_open_pipes::ProcessOpenPipes),
        Arc::new(cpu_info::CpuInfo),
        Arc::new(block_devices::BlockDevices),
        Arc::new(pci_devices::PciDevices),
        Arc::new(usb_devices::UsbDevices),
        Arc::new(user_ssh_keys::UserSshKeys),
        Arc::new(shell_history::ShellHistory),
        Arc::new(ssh_configs::SshConfigs),
        Arc::new(apt_sources::AptSources),
        Arc::new(yum_sources::YumSources),
        Arc::new(rpm_package_files::RpmPackageFiles),
        Arc::new(portage_packages::PortagePackages),
        Arc::new(portage_keywords::PortageKeywords),
        Arc::new(portage_use::PortageUse),
        Arc::new(selinux_settings::SelinuxSettings),
        Arc::new(apparmor_profiles::ApparmorProfiles),
        Arc::new(shared_memory::SharedMemory),
        Arc::new(memory_map::MemoryMap),
        Arc::new(secureboot::Secureboot),
        Arc::new(platform_info::PlatformInfo),
        Arc::new(md_personalities::MdPersonalities),
        Arc::new(cpuid::Cpuid),
        Arc::new(vscode_extensions::VscodeExtensions),
        Arc::new(atom_packages::AtomPackages),
        Arc::new(chrome_extensions::ChromeExtensions),
        Arc::new(chrome_extension_content_scripts::ChromeExtensionContentScripts),
        Arc::new(firefox_addons::FirefoxAddons),
        Arc::new(jetbrains_plugins::JetbrainsPlugins),
    ]
}

/// Helpers shared by the tables.
pub mod util {
    use rusqlite::types::Value;

    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    pub fn int(i: impl Into<i64>) -> Value {
        Value::Integer(i.into())
    }

    /// A line of a whitespace-separated /etc file: its fields before any `#`, and the
    /// comment after it (trimmed; None when there is none). None for a line of no fields.
    pub fn etc_fields(line: &str) -> Option<(Vec<&str>, Option<&str>)> {
        let (body, comment) = match line.split_once('#') {
            Some((b, c)) => (b, Some(c.trim())),
            None => (line, None),
        };
        let fields: Vec<&str> = body.split_whitespace().collect();
        (!fields.is_empty()).then_some((fields, comment))
    }

    /// The rows of `sql` on an engine without a store, as text (tests of live tables).
    #[cfg(test)]
    pub fn rows_of(sql: &str) -> Vec<Vec<String>> {
        let env =
            crate::sql::TableEnv::new(None, std::sync::Arc::new(crate::flags::Flags::default()));
        crate::sql::Engine::new(env)
            .expect("engine")
            .query(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows
            .iter()
            .map(|r| r.iter().map(crate::sql::text_of).collect())
            .collect()
    }

    /// Standard output of a system tool the tests compare with; panics (naming it) when it
    /// cannot run or fails.
    #[cfg(test)]
    pub fn tool(cmd: &str, args: &[&str]) -> String {
        let out = std::process::Command::new(cmd)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
        assert!(
            out.status.success(),
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `run` on every prefix of each seed and on each seed with one byte (at each
    /// place, and appended) replaced by each of `specials`; returns how many mutated inputs
    /// ran. The parsers' no-panic tests feed their parsers with it.
    #[cfg(test)]
    pub fn each_mutation(seeds: &[&[u8]], specials: &[u8], mut run: impl FnMut(&[u8])) -> usize {
        let mut cases = 0;
        for seed in seeds {
            for i in 0..=seed.len() {
                run(&seed[..i]);
                for &c in specials {
                    let mut m = seed.to_vec();
                    match m.get_mut(i) {
                        Some(x) => *x = c,
                        None => m.push(c),
                    }
                    run(&m);
                    cases += 1;
                }
            }
        }
        cases
    }

    pub fn uint(u: u64) -> Value {
        Value::Integer(i64::try_from(u).unwrap_or(i64::MAX))
    }

    /// Seconds -> ns range bounds, saturating.
    pub fn secs_to_ns_range(lo: i64, hi: i64) -> (u64, u64) {
        let lo_ns = if lo <= 0 {
            0
        } else {
            (lo as u64).saturating_mul(1_000_000_000)
        };
        let hi_ns = if hi < 0 {
            0
        } else {
            (hi as u64)
                .saturating_add(1)
                .saturating_mul(1_000_000_000)
                .saturating_sub(1)
        };
        (lo_ns, hi_ns)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_registry_lists_tables_and_the_plugins_in_use() {
        let mut flags = crate::flags::Flags::default();
        flags
            .parse_args(
                &["--logger_plugin=filesystem,tls".to_owned()],
                crate::flags::Source::CommandLine,
            )
            .unwrap();
        let env = crate::sql::TableEnv::new(None, std::sync::Arc::new(flags));
        let e = crate::sql::Engine::new(env).unwrap();
        let rs = e
            .query("SELECT registry || ':' || name || '=' || active FROM osquery_registry WHERE registry != 'table' ORDER BY registry, name")
            .unwrap();
        let got: Vec<String> = rs
            .rows
            .iter()
            .map(|r| match &r[0] {
                rusqlite::types::Value::Text(t) => t.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                "config:filesystem=1",
                "config:tls=0",
                "distributed:tls=0",
                "logger:filesystem=1",
                "logger:kafka_producer=0",
                "logger:stdout=0",
                "logger:syslog=0",
                "logger:tls=1",
            ]
        );
        // Fleet's discovery query for an optional table.
        let rs = e
            .query("SELECT 1 FROM osquery_registry WHERE active = true AND registry = 'table' AND name = 'mounts'")
            .unwrap();
        assert_eq!(rs.rows.len(), 1);
        let rs = e
            .query("SELECT 1 FROM osquery_registry WHERE active = true AND registry = 'table' AND name = 'homebrew_packages'")
            .unwrap();
        assert_eq!(rs.rows.len(), 0);
    }

    /// Every parser of host files, fed truncated and byte-mutated versions of real-looking
    /// input: none may panic (the results are checked by each table's own tests).
    #[test]
    fn parsers_never_panic_on_mutated_input() {
        use super::{
            groups::parse_group, kernel_info::split_cmdline, mounts::parse_mounts,
            os_version::version_parts, processes, system_info, users::parse_passwd,
        };
        let seeds: [&str; 6] = [
            "4242 (a) b) S 1 4242 4242 0 -1 4194560 100 0 0 0 12 34 0 0 20 -5 3 0 98765 1 2",
            "Uid:\t1 2 3 4\nGid:\t5 6 7 8\nVmRSS:\t 3 kB\nread_bytes: 9\n0::/a:b\n",
            "root:x:0:0:root:/root:/bin/bash\nsudo:x:27:alice\n",
            "/dev/sda1 /mnt/a\\040b ext4 rw,relatime 0 0\n",
            "processor\t: 0\nphysical id\t: 0\ncore id\t: 1\nMemTotal: 12 kB\n",
            "NAME=\"Debian\"\nVERSION_ID=\"12.1\"\nBOOT_IMAGE=/v root=/dev/x ro\n",
        ];
        let specials = [
            b':', b'\n', b'(', b')', b'\\', 0, 0xff, b' ', b'=', b'"', b'-', b'9',
        ];
        let run = |t: &str| {
            let _ = processes::parse_stat(t);
            let _ = processes::parse_status(t);
            let _ = processes::parse_io(t);
            let _ = processes::parse_cgroup(t);
            let _ = processes::parse_cmdline(t.as_bytes());
            let _ = parse_passwd(t);
            let _ = parse_group(t);
            let _ = parse_mounts(t);
            let _ = system_info::parse_cpuinfo(t);
            let _ = system_info::parse_mem_total(t);
            let _ = crate::sys::procfs::parse_env_file(t);
            let _ = split_cmdline(t);
            let _ = version_parts(t);
        };
        let seeds: Vec<&[u8]> = seeds.iter().map(|s| s.as_bytes()).collect();
        let cases =
            super::util::each_mutation(&seeds, &specials, |b| run(&String::from_utf8_lossy(b)));
        assert!(cases > 1000, "{cases}");
    }

    /// This batch's parsers of host and user files, fed truncated and byte-mutated versions
    /// of real-looking input: none may panic (each table's tests check the results).
    #[test]
    fn user_file_parsers_never_panic_on_mutated_input() {
        use super::{
            apt_sources, atom_packages, authorized_keys, known_hosts, portage_keywords,
            portage_packages, shell_history, ssh_configs, sudoers, user_ssh_keys,
            vscode_extensions, yum_sources,
        };
        let seeds = [
            "root ALL=(ALL) ALL \\\n #include x\n@includedir d\n",
            "from=\"a b\",no-pty ssh-ed25519 AAAA c d\nzos-key-ring-label=\"K\"\n",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n",
            "-----BEGIN PRIVATE KEY-----\nMA0CAQAwCAYGKoZIzj0CAQ==\n-----END PRIVATE KEY-----\n",
            "#1700000000\nls\n: 1700000001:0;vim\n",
            "Host a\n  User b\nMatch host c\n",
            "deb [arch=amd64] http://mirror.example.org/d bookworm main\nTypes: deb\nURIs: http://mirror.example.org/d\nSuites: ./\n",
            "[repo]\nname=R\nbaseurl=http://mirror.example.org/r\n  more\n",
            ">=dev-lang/python-3.11.8-r2 ~amd64\n=a/b-1\n",
            "[{\"identifier\":{\"id\":\"a\"},\"location\":{\"path\":\"/p\"},\"metadata\":{}}]",
        ];
        let specials = [
            b'\n', b' ', b'\t', b'"', b'\\', b'-', b'=', b'/', b'[', b']', b'#', b':', 0, 0xff,
        ];
        let run = |t: &str| {
            let _ = sudoers::parse("/s", t);
            let _ = t.lines().map(authorized_keys::parse_line).count();
            let _ = known_hosts::parse(t).count();
            let _ = user_ssh_keys::classify(t);
            let _ = shell_history::parse(t);
            let _ = ssh_configs::parse(t);
            let _ = t.lines().map(apt_sources::parse_line).count();
            let _ = apt_sources::parse_deb822(t);
            let _ = apt_sources::parse_release(t);
            let _ = yum_sources::repos(t);
            let _ = t.lines().map(portage_packages::split_atom).count();
            let _ = portage_keywords::summary(t, t, t);
            let _ = vscode_extensions::parse(t);
            let _ = atom_packages::parse(t);
        };
        let seeds: Vec<&[u8]> = seeds.iter().map(|s| s.as_bytes()).collect();
        let cases =
            super::util::each_mutation(&seeds, &specials, |b| run(&String::from_utf8_lossy(b)));
        assert!(cases > 5000, "{cases}");
    }
}
