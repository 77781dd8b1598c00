#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_ship::ingest::fuzz_syslog(data));
