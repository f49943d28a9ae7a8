#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| saksi_shared::fuzzing::document_load(data));
