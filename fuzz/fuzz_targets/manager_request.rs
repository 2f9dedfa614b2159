//! Fuzz target: `osprey_sdk::fuzzing::manager_request` (see there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = osprey_sdk::fuzzing::manager_request(data);
});
