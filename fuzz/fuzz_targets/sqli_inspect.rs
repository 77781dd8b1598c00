#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        let mut out = Vec::new();
        for simple_query in [true, false] {
            let cx = vigil_detect::sqli::Context {
                simple_query,
                application_role: true,
                standard_conforming_strings: simple_query,
            };
            vigil_detect::sqli::inspect(sql, &cx, &mut out);
        }
        let _ = vigil_detect::firewall::tables(sql);
    }
});
