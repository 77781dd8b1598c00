#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        let mut redactor = vigil_sql::Redactor::new();
        let mut redacted = vigil_sql::Redacted::default();
        for simple_query in [true, false] {
            let cx = vigil_detect::sqli::Context {
                simple_query,
                application_role: true,
                standard_conforming_strings: simple_query,
            };
            // The proxy inspects the tokens its redactor lexed: the same
            // findings as lexing again.
            let mut lexed = Vec::new();
            vigil_detect::sqli::inspect(sql, &cx, &mut lexed);
            redactor.set_standard_conforming_strings(simple_query);
            redactor.redact_into(sql, &mut redacted);
            let mut shared = Vec::new();
            let tokens = redactor.tokens();
            vigil_detect::sqli::inspect_tokens(sql, tokens, redacted.error, &cx, &mut shared);
            assert_eq!(lexed, shared, "the token path found otherwise: {sql:?}");
        }
        let _ = vigil_detect::firewall::tables(sql);
    }
});
