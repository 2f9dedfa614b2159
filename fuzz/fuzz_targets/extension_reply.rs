//! Fuzz target: `osprey_sdk::fuzzing::extension_reply` (see there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = osprey_sdk::fuzzing::extension_reply(data);
});
