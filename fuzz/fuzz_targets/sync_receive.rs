#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| saksi_shared::fuzzing::sync_receive(data));
