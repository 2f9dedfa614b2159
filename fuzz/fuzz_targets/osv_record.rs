//! Fuzz target: `agent::fuzzing::osv_record` (see there); its seeds are written into the corpus
//! at start-up when `cargo xtask fuzz` asks for them.
#![no_main]

libfuzzer_sys::fuzz_target!(init: agent::fuzzing::write_seeds("osv_record"), |data: &[u8]| {
    let _ = agent::fuzzing::osv_record(data);
});
