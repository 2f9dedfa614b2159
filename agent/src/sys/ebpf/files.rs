//! The file syscalls Osprey watches, how their arguments map onto a record ([`FileSpec`]),
//! and the watched-prefix trie. Syscall numbers come from `libc` for the build target, so the
//! table is right for every architecture libc knows.

use agent_common::{
    file::{DirKey, FILTER_KEY_MAX, FileOp, FileSpec, MAX_SYSCALL_NR, PathKey},
    maps,
};
use anyhow::{Context as _, Result, anyhow};
use aya::{
    Ebpf,
    maps::{Array, HashMap, LpmTrie, MapData, lpm_trie::Key},
};

/// fchmodat2 (Linux 6.6) has the same number on every architecture (new system calls are
/// numbered once for all); libc names it only for some.
const SYS_FCHMODAT2: libc::c_long = 452;

// creat's implied flags (x86_64 has creat; newer architectures do not).
#[cfg(target_arch = "x86_64")]
const O_CREAT: u32 = libc::O_CREAT as u32;
#[cfg(target_arch = "x86_64")]
const O_WRONLY: u32 = libc::O_WRONLY as u32;
#[cfg(target_arch = "x86_64")]
const O_TRUNC: u32 = libc::O_TRUNC as u32;

fn spec(op: FileOp) -> FileSpec {
    FileSpec {
        op: op as u8,
        ..FileSpec::NONE
    }
}

/// (syscall name, spec). The name is the tracepoint suffix (`sys_enter_<name>`).
pub fn syscalls() -> Vec<(&'static str, (i64, FileSpec))> {
    use FileOp::*;
    let s = spec;
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut v: Vec<(&'static str, (i64, FileSpec))> = vec![
        (
            "openat",
            (
                libc::SYS_openat,
                FileSpec {
                    dfd: 0,
                    path: 1,
                    flags: 2,
                    mode: 3,
                    ..s(Open)
                },
            ),
        ),
        (
            "openat2",
            (
                libc::SYS_openat2,
                FileSpec {
                    dfd: 0,
                    path: 1,
                    how: 2,
                    ..s(Open)
                },
            ),
        ),
        (
            "truncate",
            (
                libc::SYS_truncate,
                FileSpec {
                    path: 0,
                    ..s(Truncate)
                },
            ),
        ),
        (
            "ftruncate",
            (
                libc::SYS_ftruncate,
                FileSpec {
                    fd: 0,
                    ..s(Truncate)
                },
            ),
        ),
        (
            "unlinkat",
            (
                libc::SYS_unlinkat,
                FileSpec {
                    dfd: 0,
                    path: 1,
                    flags: 2,
                    ..s(Unlink)
                },
            ),
        ),
        (
            "mkdirat",
            (
                libc::SYS_mkdirat,
                FileSpec {
                    dfd: 0,
                    path: 1,
                    mode: 2,
                    ..s(Mkdir)
                },
            ),
        ),
        (
            "renameat",
            (
                libc::SYS_renameat,
                FileSpec {
                    dfd: 0,
                    path: 1,
                    dfd2: 2,
                    path2: 3,
                    ..s(Rename)
                },
            ),
        ),
        (
            "renameat2",
            (
                libc::SYS_renameat2,
                FileSpec {
                    dfd: 0,
                    path: 1,
                    dfd2: 2,
                    path2: 3,
                    flags: 4,
                    ..s(Rename)
                },
            ),
        ),
        (
            "linkat",
            (
                libc::SYS_linkat,
                FileSpec {
                    dfd: 2,
                    path: 3,
                    dfd2: 0,
                    path2: 1,
                    flags: 4,
                    ..s(Link)
                },
            ),
        ),
        (
            "symlinkat",
            (
                libc::SYS_symlinkat,
                FileSpec {
                    dfd: 1,
                    path: 2,
                    path2: 0,
                    path2_raw: 1,
                    ..s(Symlink)
                },
            ),
        ),
        (
            "fchmod",
            (
                libc::SYS_fchmod,
                FileSpec {
                    fd: 0,
                    mode: 1,
                    ..s(Chmod)
                },
            ),
        ),
        (
            "fchmodat",
            (
                libc::SYS_fchmodat,
                FileSpec {
                    dfd: 0,
                    path: 1,
                    mode: 2,
                    ..s(Chmod)
                },
            ),
        ),
        (
            "fchmodat2",
            (
                SYS_FCHMODAT2,
                FileSpec {
                    dfd: 0,
                    path: 1,
                    mode: 2,
                    flags: 3,
                    ..s(Chmod)
                },
            ),
        ),
        (
            "fchown",
            (
                libc::SYS_fchown,
                FileSpec {
                    fd: 0,
                    uid: 1,
                    gid: 2,
                    ..s(Chown)
                },
            ),
        ),
        (
            "fchownat",
            (
                libc::SYS_fchownat,
                FileSpec {
                    dfd: 0,
                    path: 1,
                    uid: 2,
                    gid: 3,
                    flags: 4,
                    ..s(Chown)
                },
            ),
        ),
        (
            "setxattr",
            (
                libc::SYS_setxattr,
                FileSpec {
                    path: 0,
                    path2: 1,
                    path2_raw: 1,
                    flags: 4,
                    ..s(SetXattr)
                },
            ),
        ),
        (
            "lsetxattr",
            (
                libc::SYS_lsetxattr,
                FileSpec {
                    path: 0,
                    path2: 1,
                    path2_raw: 1,
                    flags: 4,
                    ..s(SetXattr)
                },
            ),
        ),
        (
            "fsetxattr",
            (
                libc::SYS_fsetxattr,
                FileSpec {
                    fd: 0,
                    path2: 1,
                    path2_raw: 1,
                    flags: 4,
                    ..s(SetXattr)
                },
            ),
        ),
        (
            "removexattr",
            (
                libc::SYS_removexattr,
                FileSpec {
                    path: 0,
                    path2: 1,
                    path2_raw: 1,
                    ..s(RemoveXattr)
                },
            ),
        ),
        (
            "lremovexattr",
            (
                libc::SYS_lremovexattr,
                FileSpec {
                    path: 0,
                    path2: 1,
                    path2_raw: 1,
                    ..s(RemoveXattr)
                },
            ),
        ),
        (
            "fremovexattr",
            (
                libc::SYS_fremovexattr,
                FileSpec {
                    fd: 0,
                    path2: 1,
                    path2_raw: 1,
                    ..s(RemoveXattr)
                },
            ),
        ),
        (
            "utimensat",
            (
                libc::SYS_utimensat,
                FileSpec {
                    dfd: 0,
                    path: 1,
                    flags: 3,
                    ..s(Utimes)
                },
            ),
        ),
        (
            "open_by_handle_at",
            (
                libc::SYS_open_by_handle_at,
                FileSpec {
                    flags: 2,
                    ..s(Open)
                },
            ),
        ),
        (
            "copy_file_range",
            (libc::SYS_copy_file_range, FileSpec { fd: 2, ..s(Write) }),
        ),
        (
            "sendfile64",
            (libc::SYS_sendfile, FileSpec { fd: 0, ..s(Write) }),
        ),
        ("splice", (libc::SYS_splice, FileSpec { fd: 2, ..s(Write) })),
        (
            "mmap",
            (
                libc::SYS_mmap,
                FileSpec {
                    fd: 4,
                    ..s(MapWrite)
                },
            ),
        ),
        ("write", (libc::SYS_write, s(Write))),
        ("pwrite64", (libc::SYS_pwrite64, s(Write))),
        ("writev", (libc::SYS_writev, s(Write))),
        ("pwritev", (libc::SYS_pwritev, s(Write))),
        ("pwritev2", (libc::SYS_pwritev2, s(Write))),
        ("close", (libc::SYS_close, s(CloseWrite))),
        // dup3(old, new) closes what `new` was (a shell restoring its stdout after `> file`).
        (
            "dup3",
            (
                libc::SYS_dup3,
                FileSpec {
                    fd: 1,
                    dfd: 0,
                    ..s(CloseWrite)
                },
            ),
        ),
        ("read", (libc::SYS_read, s(Read))),
        ("pread64", (libc::SYS_pread64, s(Read))),
        ("readv", (libc::SYS_readv, s(Read))),
        ("preadv", (libc::SYS_preadv, s(Read))),
        ("preadv2", (libc::SYS_preadv2, s(Read))),
    ];
    // The legacy path syscalls that newer architectures (arm64) no longer have.
    #[cfg(target_arch = "x86_64")]
    v.extend([
        (
            "utimes",
            (
                libc::SYS_utimes,
                FileSpec {
                    path: 0,
                    ..s(Utimes)
                },
            ),
        ),
        (
            "utime",
            (
                libc::SYS_utime,
                FileSpec {
                    path: 0,
                    ..s(Utimes)
                },
            ),
        ),
        (
            "futimesat",
            (
                libc::SYS_futimesat,
                FileSpec {
                    dfd: 0,
                    path: 1,
                    ..s(Utimes)
                },
            ),
        ),
        (
            "dup2",
            (
                libc::SYS_dup2,
                FileSpec {
                    fd: 1,
                    dfd: 0,
                    ..s(CloseWrite)
                },
            ),
        ),
        (
            "open",
            (
                libc::SYS_open,
                FileSpec {
                    path: 0,
                    flags: 1,
                    mode: 2,
                    ..s(Open)
                },
            ),
        ),
        (
            "creat",
            (
                libc::SYS_creat,
                FileSpec {
                    path: 0,
                    mode: 1,
                    fixed_flags: O_CREAT | O_WRONLY | O_TRUNC,
                    ..s(Open)
                },
            ),
        ),
        (
            "unlink",
            (
                libc::SYS_unlink,
                FileSpec {
                    path: 0,
                    ..s(Unlink)
                },
            ),
        ),
        (
            "rmdir",
            (
                libc::SYS_rmdir,
                FileSpec {
                    path: 0,
                    ..s(Rmdir)
                },
            ),
        ),
        (
            "mkdir",
            (
                libc::SYS_mkdir,
                FileSpec {
                    path: 0,
                    mode: 1,
                    ..s(Mkdir)
                },
            ),
        ),
        (
            "rename",
            (
                libc::SYS_rename,
                FileSpec {
                    path: 0,
                    path2: 1,
                    ..s(Rename)
                },
            ),
        ),
        (
            "link",
            (
                libc::SYS_link,
                FileSpec {
                    path: 1,
                    path2: 0,
                    ..s(Link)
                },
            ),
        ),
        (
            "symlink",
            (
                libc::SYS_symlink,
                FileSpec {
                    path: 1,
                    path2: 0,
                    path2_raw: 1,
                    ..s(Symlink)
                },
            ),
        ),
        (
            "chmod",
            (
                libc::SYS_chmod,
                FileSpec {
                    path: 0,
                    mode: 1,
                    ..s(Chmod)
                },
            ),
        ),
        (
            "chown",
            (
                libc::SYS_chown,
                FileSpec {
                    path: 0,
                    uid: 1,
                    gid: 2,
                    ..s(Chown)
                },
            ),
        ),
        (
            "lchown",
            (
                libc::SYS_lchown,
                FileSpec {
                    path: 0,
                    uid: 1,
                    gid: 2,
                    ..s(Chown)
                },
            ),
        ),
    ]);
    v
}

/// write*/close/read* are handled by the small fd program, not the path program.
pub fn is_fd_op(name: &str) -> bool {
    syscalls().iter().any(|(n, (_, s))| {
        *n == name
            && [
                FileOp::Write,
                FileOp::CloseWrite,
                FileOp::Read,
                FileOp::MapWrite,
            ]
            .iter()
            .any(|op| s.op == *op as u8)
    })
}

/// read* are only attached when read accesses are reported (file_accesses): otherwise the
/// busiest syscalls on the machine would pay for a lookup nobody asked for.
pub fn is_read_op(name: &str) -> bool {
    syscalls()
        .iter()
        .any(|(n, (_, s))| *n == name && s.op == FileOp::Read as u8)
}

/// The entry program for a syscall: two resolved paths (rename, link) have their own.
pub fn enter_program(name: &str) -> &'static str {
    let two = syscalls()
        .iter()
        .any(|(n, (_, s))| *n == name && s.path2 >= 0 && s.path2_raw == 0);
    if two {
        "sys_enter_file2"
    } else {
        "sys_enter_file"
    }
}

pub fn fill_specs(ebpf: &mut Ebpf) -> Result<()> {
    let mut arr: Array<&mut MapData, FileSpec> = Array::try_from(
        ebpf.map_mut(maps::FILE_SPECS)
            .ok_or_else(|| anyhow!("no {} map", maps::FILE_SPECS))?,
    )?;
    for (name, (nr, spec)) in syscalls() {
        let nr = u32::try_from(nr)
            .ok()
            .filter(|n| *n < MAX_SYSCALL_NR)
            .with_context(|| {
                format!("syscall {name} has number {nr}, beyond the spec table ({MAX_SYSCALL_NR})")
            })?;
        arr.set(nr, spec, 0)
            .with_context(|| format!("writing the spec of {name}"))?;
    }
    Ok(())
}

/// The trie key for a prefix (cut at the filter's key size).
pub fn prefix_key(prefix: &str) -> Key<PathKey> {
    let bytes = prefix.as_bytes();
    let n = bytes.len().min(FILTER_KEY_MAX);
    let mut data = [0u8; FILTER_KEY_MAX];
    data[..n].copy_from_slice(&bytes[..n]);
    Key::new((n * 8) as u32, PathKey { data })
}

/// Makes `prefixes` the watched set: adds the new ones first, then removes the old ones, so
/// no path that stays watched is ever uncovered.
pub fn set_watched(ebpf: &mut Ebpf, prefixes: &[String]) -> Result<()> {
    let mut trie: LpmTrie<&mut MapData, PathKey, u8> = LpmTrie::try_from(
        ebpf.map_mut(maps::WATCHED_PATHS)
            .ok_or_else(|| anyhow!("no {} map", maps::WATCHED_PATHS))?,
    )?;
    let wanted: Vec<Key<PathKey>> = prefixes.iter().map(|p| prefix_key(p)).collect();
    for k in &wanted {
        trie.insert(k, 1, 0).context("adding a watched prefix")?;
    }
    let old: Vec<Key<PathKey>> = trie.keys().filter_map(|k| k.ok()).collect();
    for k in old {
        let keep = wanted
            .iter()
            .any(|w| w.prefix_len() == k.prefix_len() && w.data().data == k.data().data);
        if !keep {
            let _ = trie.remove(&k);
        }
    }
    Ok(())
}

/// Removes the tracked open files whose opener is not `alive` (it exited without closing
/// them): their address may be reused by another file. Returns how many went.
pub fn sweep_fd_state(ebpf: &mut Ebpf, alive: impl Fn(u32) -> bool) -> Result<u64> {
    let mut map: HashMap<&mut MapData, u64, agent_common::file::FdState> = HashMap::try_from(
        ebpf.map_mut(maps::FD_STATE)
            .ok_or_else(|| anyhow!("no {} map", maps::FD_STATE))?,
    )?;
    let dead: Vec<u64> = map
        .iter()
        .filter_map(|e| e.ok())
        .filter(|(_, v)| !alive(v.tgid))
        .map(|(k, _)| k)
        .collect();
    let mut n = 0;
    for k in dead {
        if map.remove(&k).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// Makes `dirs` the watched folders: adds the new ones first, then removes the old ones.
pub fn set_watched_dirs(ebpf: &mut Ebpf, dirs: &[(DirKey, u32)]) -> Result<()> {
    let mut map: HashMap<&mut MapData, DirKey, u32> = HashMap::try_from(
        ebpf.map_mut(maps::WATCHED_DIRS)
            .ok_or_else(|| anyhow!("no {} map", maps::WATCHED_DIRS))?,
    )?;
    for (key, id) in dirs {
        map.insert(key, id, 0)
            .with_context(|| format!("adding watched folder {id} ({key:?})"))?;
    }
    let old: Vec<DirKey> = map.keys().filter_map(|k| k.ok()).collect();
    for k in old {
        if !dirs.iter().any(|(d, _)| *d == k) {
            let _ = map.remove(&k);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_syscall_number_fits_the_spec_table() {
        for (name, (nr, spec)) in syscalls() {
            assert!(
                (0..i64::from(MAX_SYSCALL_NR)).contains(&nr),
                "{name} = {nr}"
            );
            assert_ne!(spec.op, 0, "{name}");
        }
    }

    #[test]
    fn two_path_syscalls_use_their_own_program() {
        assert_eq!(enter_program("renameat2"), "sys_enter_file2");
        assert_eq!(enter_program("linkat"), "sys_enter_file2");
        assert_eq!(enter_program("symlinkat"), "sys_enter_file");
        assert_eq!(enter_program("openat"), "sys_enter_file");
    }

    #[test]
    fn fd_ops() {
        assert!(is_fd_op("write"));
        assert!(is_fd_op("close"));
        assert!(!is_fd_op("openat"));
    }

    #[test]
    fn prefix_keys_are_cut_at_the_key_size() {
        let k = prefix_key("/tmp/x");
        assert_eq!(k.prefix_len(), 48);
        assert_eq!(&k.data().data[..6], b"/tmp/x");
        let long = "/a".repeat(200);
        assert_eq!(prefix_key(&long).prefix_len(), (FILTER_KEY_MAX * 8) as u32);
    }
}
