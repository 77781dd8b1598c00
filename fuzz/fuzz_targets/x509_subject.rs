#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_proxy::fuzz_subject(data));
