//! Fuzz target: `agent::fuzzing::stored_value` (see there); its seeds are written into the corpus
//! at start-up when `cargo xtask fuzz` asks for them.
#![no_main]

libfuzzer_sys::fuzz_target!(init: agent::fuzzing::write_seeds("stored_value"), |data: &[u8]| {
    let _ = agent::fuzzing::stored_value(data);
});
