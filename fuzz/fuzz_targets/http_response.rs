#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_ship::transport::http::fuzz_http_response(data));
