//! Property tests: redaction never leaks a literal, fails closed, never
//! panics, never writes a newline, and is stable.
//!
//! - Secrets: arbitrary strings rich in what breaks lexers (quotes,
//!   backslashes, `$`, `--`, `/*`, `*/`, newlines, NUL, non-ASCII, bidi
//!   controls) are encoded as a literal of every form, correctly escaped,
//!   and spliced into statement templates. We know exactly what is secret:
//!   neither the secret, nor any word of it, nor the literal's text may
//!   show.
//! - Unterminated: a template, an opening quote, dollar quote or comment,
//!   and a secret that never closes it: nothing of the secret may show.
//! - Random input, and secrets spliced raw (as a vulnerable application
//!   does): `check_redaction`, which checks that nothing after a lexer error
//!   shows, that the text has no newline and that redacting it again
//!   changes nothing.
//! - Stability: a template gives the same text and fingerprint whatever
//!   literal fills it.

#![allow(clippy::unwrap_used, clippy::string_slice)]

use proptest::prelude::*;
use proptest::sample::select;
use vigil_sql::{check_redaction, redact};

// ---------------------------------------------------------------------------
// Strategies

/// Characters that matter to a SQL lexer, and some that matter to logs.
const NASTY: &str = r#"['"\\$;:,.()\[\]{}\-*/+=<>!|&%^~@#?`_ \t\n\r\x00\x0b\x0ca-zA-Z0-9éß€😀\u{85}\u{2028}\u{202e}\u{feff}]"#;

/// A secret: at least four bytes, mixing dangerous characters and, often,
/// comment and quote sequences.
fn secret() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::string::string_regex(&format!("{NASTY}{{1,6}}")).unwrap(),
        1 => select(vec![
            "'", "''", "\\'", "\\", "$$", "$a$", "$1", "--", "/*", "*/", "\n", "'\n'", "E'",
            "U&'", "\\u12", "\\0041", "UESCAPE", ";", "\"", "\0",
        ])
        .prop_map(str::to_owned),
        2 => "[a-zA-Z][a-zA-Z0-9]{3,9}",
    ];
    proptest::collection::vec(piece, 1..8)
        .prop_map(|p| p.concat())
        .prop_filter("four bytes or more", |s| s.len() >= 4)
}

/// A literal holding a secret, as SQL text, with the secret it holds (the
/// value once decoded).
#[derive(Clone, Debug)]
struct Literal {
    sql: String,
    secret: String,
    /// The same form holding a harmless value.
    benign: String,
}

fn standard(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn escape(s: &str) -> String {
    let mut out = String::from("E'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str(if s.len().is_multiple_of(2) {
                "\\'"
            } else {
                "''"
            }),
            '\n' if s.len().is_multiple_of(3) => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `U&'…'`, some characters as escapes, with `UESCAPE '!'` now and then.
fn unicode(s: &str, escape_every: usize, bang: bool) -> String {
    let esc = if bang { '!' } else { '\\' };
    let mut out = String::from("U&'");
    for (i, c) in s.chars().enumerate() {
        if c == esc {
            out.push(esc);
            out.push(esc);
        } else if c == '\'' {
            out.push_str("''");
        } else if c != '\0' && i % escape_every == 0 {
            let cp = u32::from(c);
            if cp > 0xffff {
                out.push_str(&format!("{esc}+{cp:06X}"));
            } else {
                out.push_str(&format!("{esc}{cp:04X}"));
            }
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    if bang {
        out.push_str(" UESCAPE '!'");
    }
    out
}

/// `$tag$…$tag$` with a tag the secret cannot end early.
fn dollar(s: &str) -> String {
    for tag in ["", "q", "tag", "x1", "vigil_test_tag"] {
        let delim = format!("${tag}$");
        let body = format!("{s}{delim}");
        if body.find(&delim) == Some(s.len()) {
            return format!("{delim}{body}");
        }
    }
    unreachable!("no tag fits {s:?}")
}

/// Split across lines: `'sec'\n'ret'`, one constant to PostgreSQL.
fn continued(s: &str, at: usize) -> String {
    let mut cut = at % s.len();
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{} -- between\n  {}",
        standard(&s[..cut]),
        standard(&s[cut..])
    )
}

fn literal() -> impl Strategy<Value = Literal> {
    let text = (secret(), 0..9u8, 1..4usize, any::<bool>()).prop_map(|(s, form, every, bang)| {
        let encode = |s: &str| match form {
            0 => standard(s),
            1 => escape(s),
            2 => unicode(s, every, bang),
            3 => format!("N{}", standard(s)),
            4 => dollar(s),
            5 => continued(s, every * 7),
            6 => format!("E{}", continued(s, every * 3).replace("\\", "\\\\")),
            7 => format!("DATE {}", standard(s)),
            _ => format!("{}::text", standard(s)),
        };
        Literal {
            sql: encode(&s),
            benign: encode("0"),
            secret: s,
        }
    });
    let digits = "[1-9][0-9]{3,12}";
    let number = prop_oneof![
        digits.prop_map(|d| (d.clone(), d)),
        (digits, "[0-9]{1,6}").prop_map(|(a, b)| (format!("{a}.{b}"), a)),
        (digits, "[0-9]{1,3}").prop_map(|(a, e)| (format!("{a}e{e}"), a)),
        "[0-9A-F]{4,16}".prop_map(|h| (format!("0x{h}"), h)),
        "[1-9][0-9]{2}_[0-9]{3}_[0-9]{3}".prop_map(|d| (d.clone(), d)),
    ]
    .prop_map(|(sql, secret)| Literal {
        sql,
        secret,
        benign: "0".into(),
    });
    let bits = prop_oneof![
        "[01]{4,32}".prop_map(|b| Literal {
            sql: format!("B'{b}'"),
            secret: b,
            benign: "B'0'".into()
        }),
        "[0-9a-fA-F]{4,32}".prop_map(|h| Literal {
            sql: format!("X'{h}'"),
            secret: h,
            benign: "X'0'".into()
        }),
    ];
    prop_oneof![6 => text, 2 => number, 1 => bits]
}

/// Statement templates; `{}` is where a literal goes.
const TEMPLATES: &[&str] = &[
    "SELECT * FROM users WHERE email = {} AND active",
    "SELECT {}",
    "select a, b from t where c = {}\n  and d = 1",
    "INSERT INTO audit (who, what) VALUES ({}, 42)",
    "UPDATE accounts SET note = {} WHERE id = $1",
    "SELECT * FROM t WHERE a IN (1, {}, 3)",
    "WITH x AS (SELECT {} AS v) SELECT v FROM x",
    "SELECT 1; SELECT {}; SELECT 2",
    "COMMENT ON TABLE t IS {}",
    "ALTER ROLE app PASSWORD {}",
    "CALL f({}, \"Quoted Id\")",
    "SELECT {} -- trailing comment",
    "SELECT /* before */ {} /* after */ FROM t",
    "SELECT {}::text || 'x' FROM \"T\"",
    "SET app.secret = {}",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT {}; END",
    "EXPLAIN ANALYZE SELECT * FROM t WHERE a = {}",
];

fn template() -> impl Strategy<Value = &'static str> {
    select(TEMPLATES)
}

fn splice(template: &str, literal: &str) -> String {
    template.replacen("{}", literal, 1)
}

/// Runs of letters, digits and `_` of four bytes or more: what a partial
/// leak would show.
fn words(s: &str) -> Vec<&str> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.len() >= 4)
        .collect()
}

/// Asserts that `needle` does not show in `out`, unless it shows in
/// `benign` too (the same template with a harmless literal): then it is
/// part of the statement, not of the secret.
fn assert_hidden(out: &str, benign: &str, needle: &str, sql: &str) -> Result<(), TestCaseError> {
    if needle.len() >= 4 && !benign.contains(needle) {
        prop_assert!(
            !out.contains(needle),
            "{needle:?} shows in {out:?}\n  from {sql:?}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No literal of four bytes or more, nor any word of it, shows.
    #[test]
    fn literals_never_show(t in template(), lit in literal()) {
        let sql = splice(t, &lit.sql);
        let r = redact(&sql);
        prop_assert!(r.error.is_none(), "{sql:?}: {:?}", r.error);
        let benign = redact(&splice(t, &lit.benign));
        let benign_text = &benign.text;
        assert_hidden(&r.text, benign_text, &lit.secret, &sql)?;
        assert_hidden(&r.text, benign_text, &lit.sql, &sql)?;
        for w in words(&lit.secret) {
            assert_hidden(&r.text, benign_text, w, &sql)?;
        }
        prop_assert!(!r.text.contains(['\n', '\r']));
        // Any value in the same place gives the same text and fingerprint.
        prop_assert_eq!(&r.text, benign_text);
        prop_assert_eq!(r.fingerprint, benign.fingerprint);
        // Redacting the text again keeps it, placeholders included.
        let again = redact(&r.text);
        prop_assert_eq!(&again.text, &r.text);
        prop_assert_eq!(again.fingerprint, r.fingerprint);
    }

    /// A literal, comment, identifier or dollar quote that never ends masks
    /// everything from its start.
    #[test]
    fn unterminated_never_shows(
        t in template(),
        s in secret(),
        opener in select(vec!["'", "E'", "U&'", "N'", "B'", "X'", "$tag$", "\"", "U&\"", "/*", "'ok'\n'"]),
    ) {
        // Take out of the secret whatever would close the opener.
        let closer = match opener {
            "$tag$" => "$tag$",
            "\"" | "U&\"" => "\"",
            "/*" => "*/",
            _ => "'",
        };
        let mut s = s;
        while s.contains(closer) {
            s = s.replace(closer, "");
        }
        if s.len() < 4 {
            s.push_str("zzzz");
        }
        let head = t.split("{}").next().unwrap();
        let sql = format!("{head}{opener}{s}");
        let r = redact(&sql);
        prop_assert!(r.error.is_some(), "{sql:?} gave {:?}", r.text);
        prop_assert!(r.text.ends_with(vigil_sql::MASK), "{:?}", r.text);
        let benign = redact(head).text;
        assert_hidden(&r.text, &benign, &s, &sql)?;
        for w in words(&s) {
            assert_hidden(&r.text, &benign, w, &sql)?;
        }
    }

    /// Secrets spliced raw, as a vulnerable application does: whatever the
    /// lexer makes of them, redaction keeps its promises.
    #[test]
    fn raw_splices_keep_the_promises(t in template(), s in secret(), quote in select(vec!["'", "E'", "$$", "\"", "", "U&'"])) {
        let closing = if quote.ends_with('\'') { "'" } else { quote };
        let sql = splice(t, &format!("{quote}{s}{closing}"));
        check_redaction(sql.as_bytes());
    }

    /// Arbitrary bytes: redaction never panics and keeps its promises.
    #[test]
    fn random_bytes_keep_the_promises(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_redaction(&data);
    }

    /// Arbitrary text drawn from SQL's alphabet, where lexing gets deep.
    #[test]
    fn random_sql_keeps_the_promises(s in proptest::string::string_regex(&format!("{NASTY}{{0,80}}")).unwrap()) {
        check_redaction(s.as_bytes());
    }

    /// Statements built from random tokens: more of them lex without error,
    /// so the text and fingerprint checks reach further.
    #[test]
    fn random_token_soup_keeps_the_promises(
        tokens in proptest::collection::vec(
            select(vec![
                "SELECT", "select", "FROM", "t", "\"T\"", "U&\"\\0041\"", "WHERE", "IN", "(", ")",
                ",", ";", "=", "-", "+", "1", "-2", "3.5", "'x'", "E'\\n'", "$1", "$$a$$", "B'1'",
                "--c\n", "/*c*/", "\n", " ", "VALUES", "ARRAY", "[", "]", "SET", "x", "TO", "a.b",
                "::", "<>", "CREATE", "FUNCTION", "BEGIN", "END", "CASE", "WITH", "AS", "INTO",
                "'a'\n'b'", "\"a\nb\"", "é", "$",
            ]),
            0..30,
        ),
        glue in proptest::collection::vec(select(vec!["", " ", "\n"]), 30),
    ) {
        let sql: String = tokens.iter().zip(&glue).map(|(t, g)| format!("{t}{g}")).collect();
        check_redaction(sql.as_bytes());
    }
}
