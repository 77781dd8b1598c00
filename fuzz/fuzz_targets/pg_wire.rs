#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_pg::fuzz_wire(data));
