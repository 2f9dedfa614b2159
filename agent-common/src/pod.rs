//! The `aya::Pod` impls of the plain records (userspace only, `user` feature): the one place
//! in agent-common with `unsafe`. Each record is `repr(C)` with a size assertion beside its
//! definition.

// SAFETY: repr(C), only integer fields, no padding (size asserted beside it).
unsafe impl aya::Pod for crate::RecordHeader {}
// SAFETY: repr(C), only u32 fields, no padding (size asserted beside it).
unsafe impl aya::Pod for crate::offsets::KernelOffsets {}
// SAFETY: repr(C), integers and byte arrays only, no padding (sizes asserted beside them).
unsafe impl aya::Pod for crate::process::ExecRecord {}
// SAFETY: as above.
unsafe impl aya::Pod for crate::process::ExitRecord {}
// SAFETY: repr(C), integers only, explicit padding (size asserted beside it).
unsafe impl aya::Pod for crate::process::ForkRecord {}
// SAFETY: repr(C), integers only, no padding (size asserted beside it).
unsafe impl aya::Pod for crate::process::TaskRecord {}
// SAFETY: repr(C), integers only, no padding (size asserted beside it).
unsafe impl aya::Pod for crate::file::FileSpec {}
// SAFETY: repr(C), integers and byte arrays, explicit padding field (size asserted beside it).
unsafe impl aya::Pod for crate::file::FileRecord {}
// SAFETY: repr(C), integers only (size asserted beside it).
unsafe impl aya::Pod for crate::file::FdRecord {}
// SAFETY: a byte array.
unsafe impl aya::Pod for crate::file::PathKey {}
// SAFETY: repr(C), integers and byte arrays, explicit padding (size asserted beside it).
unsafe impl aya::Pod for crate::socket::SockRecord {}
// SAFETY: repr(C), integers only, explicit padding field (size asserted beside it).
unsafe impl aya::Pod for crate::file::DirKey {}
// SAFETY: repr(C), integers and a byte array, no implicit padding (size asserted beside it).
unsafe impl aya::Pod for crate::process::ExecFailRecord {}
// SAFETY: repr(C), two u32 (size asserted beside it).
unsafe impl aya::Pod for crate::file::FdState {}
