//! Fuzz target: `osprey_sdk::fuzzing::context` (see there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = osprey_sdk::fuzzing::context(data);
});
