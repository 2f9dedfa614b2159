//! The processor's CPUID instruction: (eax, ebx, ecx, edx) for a leaf and sub-leaf. x86_64
//! only (every x86_64 processor has it); None on other architectures.

#[cfg(target_arch = "x86_64")]
pub fn cpuid(leaf: u32, sub_leaf: u32) -> Option<[u32; 4]> {
    let r = core::arch::x86_64::__cpuid_count(leaf, sub_leaf);
    Some([r.eax, r.ebx, r.ecx, r.edx])
}

#[cfg(not(target_arch = "x86_64"))]
pub fn cpuid(_leaf: u32, _sub_leaf: u32) -> Option<[u32; 4]> {
    None
}
