//! Kernel struct and tracepoint field offsets, resolved at load time.
//!
//! Rust eBPF emits no CO-RE relocations, so no offset is compiled in: the agent reads them from
//! `/sys/kernel/btf/vmlinux` (structs) and tracefs `format` files (tracepoint fields) and hands
//! them to the programs as the read-only global [`crate::globals::OFFSETS`].

/// Byte offsets the programs need. A field that the running kernel lacks is `u32::MAX`;
/// the programs then leave the matching record field at its "unknown" value.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `task_struct.real_parent` (pointer).
    pub task_real_parent: u32,
    /// `task_struct.tgid` (pid_t).
    pub task_tgid: u32,
    /// `task_struct.mm` (pointer).
    pub task_mm: u32,
    /// `task_struct.cred` (pointer, `const struct cred *`).
    pub task_cred: u32,
    /// `task_struct.loginuid` (kuid_t); absent without CONFIG_AUDIT.
    pub task_loginuid: u32,
    /// `task_struct.exit_code` (int).
    pub task_exit_code: u32,
    /// `task_struct.start_time` (u64, CLOCK_MONOTONIC ns).
    pub task_start_time: u32,
    /// `task_struct.nsproxy` (pointer).
    pub task_nsproxy: u32,
    /// `nsproxy.mnt_ns` (pointer).
    pub nsproxy_mnt_ns: u32,
    /// `mnt_namespace.ns.inum` (unsigned int), summed through the embedded `ns_common`.
    pub mnt_ns_inum: u32,
    /// `mm_struct.arg_start` (unsigned long).
    pub mm_arg_start: u32,
    /// `mm_struct.arg_end` (unsigned long).
    pub mm_arg_end: u32,
    /// `mm_struct.env_start` (unsigned long).
    pub mm_env_start: u32,
    /// `mm_struct.env_end` (unsigned long).
    pub mm_env_end: u32,
    /// `task_struct.flags` (unsigned int; PF_IO_WORKER = 0x10).
    pub task_flags: u32,
    /// `file.f_flags` (unsigned int: the open flags).
    pub file_f_flags: u32,
    /// `cred.uid` (kuid_t).
    pub cred_uid: u32,
    /// `cred.gid` (kgid_t).
    pub cred_gid: u32,
    /// `cred.euid` (kuid_t).
    pub cred_euid: u32,
    /// `cred.egid` (kgid_t).
    pub cred_egid: u32,
    /// Offset of the `__data_loc char[] filename` field in the `sched_process_exec` record.
    pub tp_exec_filename: u32,
    /// Offset of the first argument in a `syscalls/sys_enter_*` record (args are 8 bytes each).
    pub tp_syscall_args: u32,
    /// Offset of `ret` in a `syscalls/sys_exit_*` record.
    pub tp_syscall_ret: u32,
    /// Offset of `__syscall_nr` in `syscalls/sys_{enter,exit}_*` records.
    pub tp_syscall_nr: u32,
    /// `task_struct.fs` (pointer).
    pub task_fs: u32,
    /// `task_struct.files` (pointer).
    pub task_files: u32,
    /// `fs_struct.pwd` (embedded `struct path`).
    pub fs_pwd: u32,
    /// `path.mnt` (pointer to `struct vfsmount`).
    pub path_mnt: u32,
    /// `path.dentry` (pointer).
    pub path_dentry: u32,
    /// `dentry.d_parent` (pointer).
    pub dentry_parent: u32,
    /// `dentry.d_name.name` (pointer), summed through `d_name`.
    pub dentry_name: u32,
    /// `dentry.d_name.len` (u32), summed through `d_name`.
    pub dentry_name_len: u32,
    /// `vfsmount.mnt_root` (pointer).
    pub vfsmount_root: u32,
    /// `mount.mnt` (the embedded `struct vfsmount`).
    pub mount_mnt: u32,
    /// `mount.mnt_parent` (pointer).
    pub mount_parent: u32,
    /// `mount.mnt_mountpoint` (pointer to dentry).
    pub mount_mountpoint: u32,
    /// `files_struct.fdt` (pointer).
    pub files_fdt: u32,
    /// `files_struct.count` (atomic_t): the tasks sharing this fd table.
    pub files_count: u32,
    /// `fdtable.fd` (pointer to an array of `struct file *`).
    pub fdtable_fd: u32,
    /// `fdtable.max_fds` (unsigned int).
    pub fdtable_max_fds: u32,
    /// `file.f_path` (embedded `struct path`).
    pub file_path: u32,
    /// `file.f_inode` (pointer).
    pub file_inode: u32,
    /// `inode.i_ino` (unsigned long).
    pub inode_ino: u32,
    /// `file.f_mode` (fmode_t, u32).
    pub file_mode: u32,
    /// `file.private_data` (pointer; a `struct socket *` for sockets).
    pub file_private: u32,
    /// `socket.sk` (pointer).
    pub socket_sk: u32,
    /// `sock.__sk_common.skc_family` (u16).
    pub sk_family: u32,
    /// `sock.__sk_common.skc_num` (u16, host order local port).
    pub sk_num: u32,
    /// `sock.__sk_common.skc_dport` (be16).
    pub sk_dport: u32,
    /// `sock.__sk_common.skc_rcv_saddr` (be32).
    pub sk_rcv_saddr: u32,
    /// `sock.__sk_common.skc_daddr` (be32).
    pub sk_daddr: u32,
    /// `sock.__sk_common.skc_v6_rcv_saddr` (16 bytes); absent without IPv6.
    pub sk_v6_rcv_saddr: u32,
    /// `sock.__sk_common.skc_v6_daddr` (16 bytes).
    pub sk_v6_daddr: u32,
    /// `sock.sk_protocol` (u16).
    pub sk_protocol: u32,
    /// `sock.sk_type` (u16).
    pub sk_type: u32,
    /// `task_struct.pid` (pid_t, the thread id).
    pub task_pid: u32,
    /// The reference count of `struct file`: `f_ref` (6.13+, a `file_ref_t` that counts from
    /// 0 for one reference) or `f_count` (an `atomic_long_t` that counts from 1).
    pub file_refcnt: u32,
    /// What to add to the raw count to get the number of references (1 for `f_ref`, else 0).
    pub file_refcnt_bias: u32,
    /// `dentry.d_inode` (pointer).
    pub dentry_inode: u32,
    /// `inode.i_sb` (pointer).
    pub inode_sb: u32,
    /// `super_block.s_dev` (dev_t, u32).
    pub sb_dev: u32,
    /// `mm_struct.exe_file` (pointer).
    pub mm_exe_file: u32,
    /// `inode.__i_nlink` (unsigned int, in an anonymous union with `i_nlink`).
    pub inode_nlink: u32,
}
const _: () = assert!(size_of::<KernelOffsets>() == 252);

impl KernelOffsets {
    /// The marker for "this kernel has no such field".
    pub const MISSING: u32 = u32::MAX;

    /// All offsets unknown. Programs compiled with this value report nothing that needs one.
    pub const fn unresolved() -> Self {
        Self {
            task_real_parent: Self::MISSING,
            task_tgid: Self::MISSING,
            task_mm: Self::MISSING,
            task_cred: Self::MISSING,
            task_loginuid: Self::MISSING,
            task_exit_code: Self::MISSING,
            task_start_time: Self::MISSING,
            task_nsproxy: Self::MISSING,
            nsproxy_mnt_ns: Self::MISSING,
            mnt_ns_inum: Self::MISSING,
            mm_arg_start: Self::MISSING,
            mm_arg_end: Self::MISSING,
            mm_env_start: Self::MISSING,
            mm_env_end: Self::MISSING,
            task_flags: Self::MISSING,
            file_f_flags: Self::MISSING,
            cred_uid: Self::MISSING,
            cred_gid: Self::MISSING,
            cred_euid: Self::MISSING,
            cred_egid: Self::MISSING,
            tp_exec_filename: Self::MISSING,
            tp_syscall_args: Self::MISSING,
            tp_syscall_ret: Self::MISSING,
            tp_syscall_nr: Self::MISSING,
            task_fs: Self::MISSING,
            task_files: Self::MISSING,
            fs_pwd: Self::MISSING,
            path_mnt: Self::MISSING,
            path_dentry: Self::MISSING,
            dentry_parent: Self::MISSING,
            dentry_name: Self::MISSING,
            dentry_name_len: Self::MISSING,
            vfsmount_root: Self::MISSING,
            mount_mnt: Self::MISSING,
            mount_parent: Self::MISSING,
            mount_mountpoint: Self::MISSING,
            files_fdt: Self::MISSING,
            files_count: Self::MISSING,
            fdtable_fd: Self::MISSING,
            fdtable_max_fds: Self::MISSING,
            file_path: Self::MISSING,
            file_inode: Self::MISSING,
            inode_ino: Self::MISSING,
            file_mode: Self::MISSING,
            file_private: Self::MISSING,
            socket_sk: Self::MISSING,
            sk_family: Self::MISSING,
            sk_num: Self::MISSING,
            sk_dport: Self::MISSING,
            sk_rcv_saddr: Self::MISSING,
            sk_daddr: Self::MISSING,
            sk_v6_rcv_saddr: Self::MISSING,
            sk_v6_daddr: Self::MISSING,
            sk_protocol: Self::MISSING,
            sk_type: Self::MISSING,
            task_pid: Self::MISSING,
            file_refcnt: Self::MISSING,
            file_refcnt_bias: 0,
            dentry_inode: Self::MISSING,
            inode_sb: Self::MISSING,
            sb_dev: Self::MISSING,
            mm_exe_file: Self::MISSING,
            inode_nlink: Self::MISSING,
        }
    }
}
