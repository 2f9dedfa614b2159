//! The struct offsets the agent hands to its kernel programs, checked against an independent
//! reading of the same kernel's BTF: `bpftool btf dump -j` (installed by `cargo xtask setup`).
//! Needs root (tracefs); in CI it never skips.

#![allow(
    clippy::unwrap_used,
    reason = "a test: a malformed bpftool dump should stop it"
)]

use std::{collections::HashMap, process::Command};

use agent::sys::ebpf::{btf::Btf, resolve_offsets};
use agent_common::KernelOffsets;
use serde_json::Value;

struct Types(Vec<Value>);

impl Types {
    fn load() -> Self {
        let out = Command::new("bpftool")
            .args(["-j", "btf", "dump", "file", "/sys/kernel/btf/vmlinux"])
            .output()
            .expect("bpftool must be installed (cargo xtask setup installs it)");
        assert!(
            out.status.success(),
            "bpftool failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
        let types = v["types"].as_array().expect("types").clone();
        // Ids are 1-based and dense; keep index = id.
        let mut by_id = vec![Value::Null; types.len() + 1];
        for t in types {
            let id = t["id"].as_u64().unwrap() as usize;
            by_id[id] = t;
        }
        Self(by_id)
    }

    fn get(&self, id: u64) -> &Value {
        &self.0[id as usize]
    }

    /// Skips typedefs and qualifiers.
    fn resolve(&self, mut id: u64) -> &Value {
        loop {
            let t = self.get(id);
            match t["kind"].as_str() {
                Some("TYPEDEF" | "CONST" | "VOLATILE" | "RESTRICT" | "TYPE_TAG") => {
                    id = t["type_id"].as_u64().unwrap();
                }
                _ => return t,
            }
        }
    }

    fn strukt(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|t| {
            t["kind"] == "STRUCT" && t["name"] == name && t["vlen"].as_u64().unwrap_or(0) > 0
        })
    }

    /// Byte offset of `a.b.c` in `strukt`, looking through anonymous structs and unions.
    fn offset(&self, strukt: &str, path: &str) -> Option<u32> {
        let mut t = self.strukt(strukt)?;
        let mut total = 0u64;
        for part in path.split('.') {
            let (bits, ty) = self.find(t, part)?;
            total += bits;
            t = self.resolve(ty);
        }
        Some((total / 8) as u32)
    }

    fn find(&self, t: &Value, name: &str) -> Option<(u64, u64)> {
        for m in t["members"].as_array()? {
            let bits = m["bits_offset"].as_u64().unwrap();
            let ty = m["type_id"].as_u64().unwrap();
            if m["name"] == name {
                return Some((bits, ty));
            }
            if m["name"] == "(anon)"
                && let Some((inner, ity)) = self.find(self.resolve(ty), name)
            {
                return Some((bits + inner, ity));
            }
        }
        None
    }
}

#[test]
fn resolved_offsets_match_bpftool() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("CI").is_none()
                && std::env::var("OSPREY_SKIP_PRIVILEGED").as_deref() == Ok("1"),
            "this test reads tracefs and needs root (outside CI, OSPREY_SKIP_PRIVILEGED=1 skips it)"
        );
        return;
    }
    let btf = Btf::from_sys_fs()
        .expect("/sys/kernel/btf/vmlinux")
        .expect("parse BTF");
    let o = resolve_offsets(&btf).expect("resolve offsets");
    let t = Types::load();
    let sk = |f: &str| format!("__sk_common.{f}");
    let want: Vec<(&str, u32, &str, String)> = vec![
        (
            "task_real_parent",
            o.task_real_parent,
            "task_struct",
            "real_parent".into(),
        ),
        ("task_tgid", o.task_tgid, "task_struct", "tgid".into()),
        ("task_pid", o.task_pid, "task_struct", "pid".into()),
        ("task_mm", o.task_mm, "task_struct", "mm".into()),
        ("task_cred", o.task_cred, "task_struct", "cred".into()),
        (
            "task_loginuid",
            o.task_loginuid,
            "task_struct",
            "loginuid".into(),
        ),
        (
            "task_exit_code",
            o.task_exit_code,
            "task_struct",
            "exit_code".into(),
        ),
        (
            "task_start_time",
            o.task_start_time,
            "task_struct",
            "start_time".into(),
        ),
        (
            "task_nsproxy",
            o.task_nsproxy,
            "task_struct",
            "nsproxy".into(),
        ),
        ("task_fs", o.task_fs, "task_struct", "fs".into()),
        ("task_files", o.task_files, "task_struct", "files".into()),
        (
            "nsproxy_mnt_ns",
            o.nsproxy_mnt_ns,
            "nsproxy",
            "mnt_ns".into(),
        ),
        (
            "mnt_ns_inum",
            o.mnt_ns_inum,
            "mnt_namespace",
            "ns.inum".into(),
        ),
        (
            "mm_arg_start",
            o.mm_arg_start,
            "mm_struct",
            "arg_start".into(),
        ),
        ("mm_arg_end", o.mm_arg_end, "mm_struct", "arg_end".into()),
        (
            "mm_env_start",
            o.mm_env_start,
            "mm_struct",
            "env_start".into(),
        ),
        ("mm_env_end", o.mm_env_end, "mm_struct", "env_end".into()),
        ("task_flags", o.task_flags, "task_struct", "flags".into()),
        ("file_f_flags", o.file_f_flags, "file", "f_flags".into()),
        ("cred_uid", o.cred_uid, "cred", "uid".into()),
        ("cred_gid", o.cred_gid, "cred", "gid".into()),
        ("cred_euid", o.cred_euid, "cred", "euid".into()),
        ("cred_egid", o.cred_egid, "cred", "egid".into()),
        ("fs_pwd", o.fs_pwd, "fs_struct", "pwd".into()),
        ("path_mnt", o.path_mnt, "path", "mnt".into()),
        ("path_dentry", o.path_dentry, "path", "dentry".into()),
        (
            "dentry_parent",
            o.dentry_parent,
            "dentry",
            "d_parent".into(),
        ),
        ("dentry_name", o.dentry_name, "dentry", "d_name.name".into()),
        (
            "dentry_name_len",
            o.dentry_name_len,
            "dentry",
            "d_name.len".into(),
        ),
        (
            "vfsmount_root",
            o.vfsmount_root,
            "vfsmount",
            "mnt_root".into(),
        ),
        ("mount_mnt", o.mount_mnt, "mount", "mnt".into()),
        ("mount_parent", o.mount_parent, "mount", "mnt_parent".into()),
        (
            "mount_mountpoint",
            o.mount_mountpoint,
            "mount",
            "mnt_mountpoint".into(),
        ),
        ("files_fdt", o.files_fdt, "files_struct", "fdt".into()),
        ("fdtable_fd", o.fdtable_fd, "fdtable", "fd".into()),
        (
            "fdtable_max_fds",
            o.fdtable_max_fds,
            "fdtable",
            "max_fds".into(),
        ),
        ("file_path", o.file_path, "file", "f_path".into()),
        ("file_inode", o.file_inode, "file", "f_inode".into()),
        ("file_mode", o.file_mode, "file", "f_mode".into()),
        (
            "file_private",
            o.file_private,
            "file",
            "private_data".into(),
        ),
        ("inode_ino", o.inode_ino, "inode", "i_ino".into()),
        ("socket_sk", o.socket_sk, "socket", "sk".into()),
        ("sk_family", o.sk_family, "sock", sk("skc_family")),
        ("sk_num", o.sk_num, "sock", sk("skc_num")),
        ("sk_dport", o.sk_dport, "sock", sk("skc_dport")),
        ("sk_rcv_saddr", o.sk_rcv_saddr, "sock", sk("skc_rcv_saddr")),
        ("sk_daddr", o.sk_daddr, "sock", sk("skc_daddr")),
        (
            "sk_v6_rcv_saddr",
            o.sk_v6_rcv_saddr,
            "sock",
            sk("skc_v6_rcv_saddr"),
        ),
        ("sk_v6_daddr", o.sk_v6_daddr, "sock", sk("skc_v6_daddr")),
        ("sk_protocol", o.sk_protocol, "sock", "sk_protocol".into()),
        ("sk_type", o.sk_type, "sock", "sk_type".into()),
    ];
    let mut wrong = Vec::new();
    let mut checked = HashMap::new();
    for (field, got, strukt, path) in &want {
        let expected = t.offset(strukt, path).unwrap_or(KernelOffsets::MISSING);
        checked.insert(*field, expected);
        if expected != *got {
            wrong.push(format!(
                "{field}: agent {got}, bpftool {expected} ({strukt}.{path})"
            ));
        }
    }
    // The reference count moved from f_count to f_ref in 6.13.
    let refcnt = t
        .offset("file", "f_ref")
        .or_else(|| t.offset("file", "f_count"))
        .unwrap_or(KernelOffsets::MISSING);
    if refcnt != o.file_refcnt {
        wrong.push(format!(
            "file_refcnt: agent {}, bpftool {refcnt}",
            o.file_refcnt
        ));
    }
    assert!(wrong.is_empty(), "offsets differ:\n{}", wrong.join("\n"));
    // The fields every program needs exist on this kernel (not both "missing").
    for f in [
        "task_tgid",
        "task_mm",
        "file_path",
        "dentry_parent",
        "sk_family",
    ] {
        assert_ne!(checked[f], KernelOffsets::MISSING, "{f}");
    }
}
