//! Fuzz target: `agent::fuzzing::tls_reply` (see there); its seeds are written into the corpus
//! at start-up when `cargo xtask fuzz` asks for them.
#![no_main]

libfuzzer_sys::fuzz_target!(init: agent::fuzzing::write_seeds("tls_reply"), |data: &[u8]| {
    let _ = agent::fuzzing::tls_reply(data);
});
