#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| saksi_testkit::fuzzing::sync_receive(data));
