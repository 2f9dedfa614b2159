//! Fuzz target: `agent::fuzzing::config_json` (see there); its seeds are written into the corpus
//! at start-up when `cargo xtask fuzz` asks for them.
#![no_main]

libfuzzer_sys::fuzz_target!(init: agent::fuzzing::write_seeds("config_json"), |data: &[u8]| {
    let _ = agent::fuzzing::config_json(data);
});
