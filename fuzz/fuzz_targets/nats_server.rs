#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_ship::transport::nats::fuzz_server_bytes(data));
