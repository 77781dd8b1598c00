//! The lexer against PostgreSQL's rules (`scan.l`), one form at a time.

#![allow(clippy::unwrap_used, clippy::string_slice)]

use super::*;

/// The tokens of `sql` as (kind, text), whitespace left out; panics on an
/// error.
fn toks(sql: &str) -> Vec<(TokenKind, &str)> {
    Lexer::new(sql)
        .map(|t| t.unwrap_or_else(|e| panic!("{sql:?}: {e}")))
        .filter(|t| t.kind != TokenKind::Whitespace)
        .map(|t| (t.kind, t.text(sql)))
        .collect()
}

/// The one token `sql` is.
fn one(sql: &str) -> TokenKind {
    let t = toks(sql);
    assert_eq!(t.len(), 1, "{sql:?} is {t:?}");
    assert_eq!(t[0].1, sql, "{sql:?} is {t:?}");
    t[0].0
}

/// The error lexing `sql` stops at.
fn error(sql: &str) -> LexError {
    Lexer::new(sql)
        .find_map(Result::err)
        .unwrap_or_else(|| panic!("{sql:?} lexed without error"))
}

fn error_std_off(sql: &str) -> Option<LexError> {
    Lexer::new(sql)
        .standard_conforming_strings(false)
        .find_map(Result::err)
}

use TokenKind::*;

#[test]
fn tokens_cover_the_input() {
    let sql = "SELECT a, \"b\"\t-- c\n/* d */ FROM t WHERE x = $1;";
    let mut end = 0;
    for t in Lexer::new(sql) {
        let t = t.unwrap();
        assert_eq!(t.start, end);
        end = t.end;
    }
    assert_eq!(end, sql.len());
}

#[test]
fn words_are_identifiers_and_keywords() {
    assert_eq!(one("SELECT"), Word);
    assert_eq!(one("_a1$b"), Word);
    assert_eq!(one("café"), Word);
    assert_eq!(one("日本"), Word);
    // Non-ASCII is an identifier character to PostgreSQL, even a no-break
    // space: `\u{a0}1` is one identifier.
    assert_eq!(one("\u{a0}1"), Word);
    // `$` continues a word but does not start one.
    assert_eq!(toks("a$$b$$"), [(Word, "a$$b$$")]);
}

#[test]
fn quoted_identifiers() {
    assert_eq!(one(r#""a""b""#), QuotedIdentifier);
    assert_eq!(one("\"multi\nline\""), QuotedIdentifier);
    assert_eq!(one(r#"U&"d\0061t""#), QuotedIdentifier);
    assert_eq!(one(r#"u&"d!0061t" UESCAPE '!'"#), QuotedIdentifier);
    assert_eq!(one(r#"U&"\+01F600""#), QuotedIdentifier);
    // `U&` not followed by a quote is a word and an operator.
    assert_eq!(
        toks("U& 'x'"),
        [(Word, "U"), (Operator, "&"), (String, "'x'")]
    );
}

#[test]
fn standard_strings() {
    assert_eq!(one("'it''s'"), String);
    assert_eq!(one("''"), String);
    assert_eq!(one("'a\\'"), String); // a backslash is just a character
    assert_eq!(one("'multi\nline'"), String);
}

#[test]
fn string_continuation_needs_a_newline() {
    assert_eq!(one("'a'\n'b'"), String);
    assert_eq!(one("'a' \t\r\n  \n 'b'"), String);
    assert_eq!(one("'a' -- c\n'b'"), String);
    assert_eq!(one("'a'\n-- c\n'b'"), String);
    assert_eq!(one("E'a'\n'\\''"), EscapeString);
    assert_eq!(one("B'01'\n'10'"), BitString);
    assert_eq!(one("U&'a'\n'b'"), UnicodeString);
    // Without a newline: two strings.
    assert_eq!(toks("'a' 'b'"), [(String, "'a'"), (String, "'b'")]);
    assert_eq!(
        toks("'a'/* c\n */'b'"),
        [
            (String, "'a'"),
            (BlockComment, "/* c\n */"),
            (String, "'b'")
        ]
    );
    // A comment at the end, after the newline, must itself end in one.
    assert_eq!(toks("'a'\n-- c"), [(String, "'a'"), (LineComment, "-- c")]);
}

#[test]
fn escape_strings() {
    assert_eq!(one(r"E'it\'s'"), EscapeString);
    assert_eq!(one(r"e'\\'"), EscapeString);
    assert_eq!(one(r"E'\x41\101\n\t\u00e9\U0001F600'"), EscapeString);
    assert_eq!(one(r"E'\uD83D\uDE00'"), EscapeString); // a surrogate pair
    assert_eq!(one("E'it''s'"), EscapeString);
    assert_eq!(one(r"E'\é'"), EscapeString);
}

#[test]
fn escape_string_errors() {
    assert!(matches!(
        error(r"E'\u12'"),
        LexError::BadEscape { offset: 2 }
    ));
    assert!(matches!(error(r"E'\U0001F6'"), LexError::BadEscape { .. }));
    assert!(matches!(error(r"E'\uD83D'"), LexError::BadEscape { .. }));
    assert!(matches!(error(r"E'\uD83Dx'"), LexError::BadEscape { .. }));
    assert!(matches!(error(r"E'\uDE00'"), LexError::BadEscape { .. }));
    assert!(matches!(error(r"E'\u0000'"), LexError::BadEscape { .. }));
    assert!(matches!(
        error(r"E'\U00110000'"),
        LexError::BadEscape { .. }
    ));
    assert!(matches!(
        error(r"E'abc\'"),
        LexError::UnterminatedString { offset: 0 }
    ));
    assert!(matches!(
        error(r"E'abc\"),
        LexError::UnterminatedString { .. }
    ));
}

#[test]
fn other_string_forms() {
    assert_eq!(one("N'x'"), NationalString);
    assert_eq!(one("n'it''s'"), NationalString);
    assert_eq!(one("B'0101'"), BitString);
    assert_eq!(one("X'1F'"), HexString);
    assert_eq!(one("x'ab'"), HexString);
    assert_eq!(one(r"U&'d\0061t\+000061'"), UnicodeString);
    assert_eq!(one(r"U&'d!0061t' UESCAPE '!'"), UnicodeString);
    assert_eq!(one("U&'x'/* c */uescape\n'#'"), UnicodeString);
    // Bit strings have no `''`: this is a bit string, then a string.
    assert_eq!(toks("B'01''10'"), [(BitString, "B'01'"), (String, "'10'")]);
    // A longer word before a quote is a word, then a string.
    assert_eq!(toks("ex'1'"), [(Word, "ex"), (String, "'1'")]);
}

#[test]
fn unicode_escape_errors() {
    assert!(matches!(error(r"U&'\00'"), LexError::BadEscape { .. }));
    assert!(matches!(error(r"U&'\D83D'"), LexError::BadEscape { .. }));
    assert!(matches!(error(r"U&'\DE00'"), LexError::BadEscape { .. }));
    assert!(matches!(error(r"U&'\+110000'"), LexError::BadEscape { .. }));
    assert!(matches!(error(r#"U&"\zz""#), LexError::BadEscape { .. }));
    // UESCAPE must be followed by a one-character string, not a hex digit,
    // `+`, a quote or whitespace.
    assert!(matches!(error("U&'x' UESCAPE"), LexError::BadEscape { .. }));
    assert!(matches!(
        error("U&'x' UESCAPE 'ab'"),
        LexError::BadEscape { .. }
    ));
    assert!(matches!(
        error("U&'x' UESCAPE 'a'"),
        LexError::BadEscape { .. }
    ));
    assert!(matches!(
        error("U&'x' UESCAPE '+'"),
        LexError::BadEscape { .. }
    ));
    assert!(matches!(
        error("U&'x' UESCAPE ' '"),
        LexError::BadEscape { .. }
    ));
    assert!(matches!(
        error("U&'x' UESCAPE ''''"),
        LexError::BadEscape { .. }
    ));
    assert!(matches!(
        error("U&'x' UESCAPE x"),
        LexError::BadEscape { .. }
    ));
    assert!(matches!(
        error("U&'x' UESCAPE '!"),
        LexError::UnterminatedString { .. }
    ));
    // With a custom escape character, a backslash is plain.
    assert_eq!(one(r"U&'\zz' UESCAPE '!'"), UnicodeString);
    // `uescapes` is another word.
    assert_eq!(
        toks("U&'x' uescapes"),
        [(UnicodeString, "U&'x'"), (Word, "uescapes")]
    );
}

#[test]
fn dollar_quotes() {
    assert_eq!(one("$$it's$$"), DollarString);
    assert_eq!(one("$fn$ SELECT $$x$$; $fn$"), DollarString);
    assert_eq!(one("$a$ $ab$ $a $A$ $a$"), DollarString);
    assert_eq!(one("$é$x$é$"), DollarString);
    assert_eq!(one("$$\n-- not a comment\n$$"), DollarString);
    assert!(matches!(
        error("$tag$ never ends $ta$"),
        LexError::UnterminatedDollarString { offset: 0 }
    ));
    assert!(matches!(
        error("$$"),
        LexError::UnterminatedDollarString { .. }
    ));
    // `$` then a word without a closing `$` is a lone `$`.
    assert_eq!(toks("$abc"), [(Other, "$"), (Word, "abc")]);
    assert_eq!(toks("$ $"), [(Other, "$"), (Other, "$")]);
}

#[test]
fn parameters() {
    assert_eq!(one("$1"), Param);
    assert_eq!(one("$12_3"), Param);
    assert_eq!(toks("$1$2"), [(Param, "$1"), (Param, "$2")]);
    assert!(matches!(
        error("$1abc"),
        LexError::BadParameter { offset: 0 }
    ));
}

#[test]
fn numbers() {
    for n in [
        "0", "42", "1_000", "3.14", "3.", ".5", "6.02e23", "1E-5", "1.e+5", ".5e-3", "0x1F",
        "0XfF", "0o17", "0b101", "0x_1f", "0b1_0",
    ] {
        assert_eq!(one(n), Number, "{n}");
    }
    assert_eq!(
        toks("1..10"),
        [(Number, "1"), (Punctuation, ".."), (Number, "10")]
    );
    assert_eq!(toks("1.2.3"), [(Number, "1.2"), (Number, ".3")]);
    assert_eq!(toks("0b102"), [(Number, "0b10"), (Number, "2")]);
    assert_eq!(toks("-1"), [(Operator, "-"), (Number, "1")]);
}

#[test]
fn number_errors() {
    for bad in [
        "1abc", "1e", "1e+", "1_", "1__0", "0x", "0xZ", "0b", "0o8", "1.5x", "1._5", "0x1g",
    ] {
        assert!(
            matches!(error(bad), LexError::BadNumber { offset: 0 }),
            "{bad}"
        );
    }
}

#[test]
fn operators_are_cut_as_postgresql_cuts_them() {
    let ops = |sql| {
        toks(sql)
            .into_iter()
            .filter(|(k, _)| *k == Operator)
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
    };
    assert_eq!(ops("a<>b"), ["<>"]);
    assert_eq!(ops("a!=b"), ["!="]);
    assert_eq!(ops("a::int"), ["::"]);
    assert_eq!(ops("j->>'k'"), ["->>"]);
    assert_eq!(ops("a@>b"), ["@>"]);
    assert_eq!(ops("a||b"), ["||"]);
    assert_eq!(ops("x:=1"), [":="]);
    // A trailing + or - is split off unless the operator holds ~!@#%^&|`?
    assert_eq!(ops("a=-1"), ["=", "-"]);
    assert_eq!(ops("a<-1"), ["<", "-"]);
    assert_eq!(ops("a*--1"), ["*"]); // `--1` is a comment
    assert_eq!(ops("a?-b"), ["?-"]);
    assert_eq!(ops("a@-1"), ["@-"]);
    // `/*` and `--` end an operator: a comment starts there.
    assert_eq!(
        toks("a+/*c*/b"),
        [
            (Word, "a"),
            (Operator, "+"),
            (BlockComment, "/*c*/"),
            (Word, "b")
        ]
    );
    assert_eq!(
        toks("a<--c"),
        [(Word, "a"), (Operator, "<"), (LineComment, "--c")]
    );
}

#[test]
fn punctuation_and_others() {
    assert_eq!(
        toks("f(a[1], b.c);"),
        [
            (Word, "f"),
            (Punctuation, "("),
            (Word, "a"),
            (Punctuation, "["),
            (Number, "1"),
            (Punctuation, "]"),
            (Punctuation, ","),
            (Word, "b"),
            (Punctuation, "."),
            (Word, "c"),
            (Punctuation, ")"),
            (Punctuation, ";"),
        ]
    );
    assert_eq!(toks(r"\ { }"), [(Other, "\\"), (Other, "{"), (Other, "}")]);
    assert_eq!(toks(":a"), [(Punctuation, ":"), (Word, "a")]);
}

#[test]
fn comments() {
    assert_eq!(one("-- to the end"), LineComment);
    assert_eq!(toks("--a\rb"), [(LineComment, "--a"), (Word, "b")]);
    assert_eq!(one("/* a /* nested */ b */"), BlockComment);
    assert_eq!(one("/**/"), BlockComment);
    assert_eq!(one("/* ** */"), BlockComment);
    assert!(matches!(
        error("/* a /* b */"),
        LexError::UnterminatedComment { offset: 0 }
    ));
    assert!(matches!(
        error("x /*/"),
        LexError::UnterminatedComment { offset: 2 }
    ));
}

#[test]
fn unterminated_quotes() {
    assert!(matches!(
        error("SELECT 'abc"),
        LexError::UnterminatedString { offset: 7 }
    ));
    assert!(matches!(
        error("'it''s"),
        LexError::UnterminatedString { .. }
    ));
    assert!(matches!(
        error("'a'\n'b"),
        LexError::UnterminatedString { offset: 0 }
    ));
    assert!(matches!(error("B'01"), LexError::UnterminatedString { .. }));
    assert!(matches!(error("X'1F"), LexError::UnterminatedString { .. }));
    assert!(matches!(error("N'x"), LexError::UnterminatedString { .. }));
    assert!(matches!(error("U&'x"), LexError::UnterminatedString { .. }));
    assert!(matches!(
        error("\"abc"),
        LexError::UnterminatedIdentifier { offset: 0 }
    ));
    assert!(matches!(
        error("U&\"abc"),
        LexError::UnterminatedIdentifier { .. }
    ));
    assert!(matches!(
        error("\"\""),
        LexError::EmptyIdentifier { offset: 0 }
    ));
    assert!(matches!(error("U&\"\""), LexError::EmptyIdentifier { .. }));
}

#[test]
fn control_characters() {
    assert!(matches!(
        error("SELECT \u{1b}[31m"),
        LexError::ControlCharacter { offset: 7 }
    ));
    assert!(matches!(
        error("a\0b"),
        LexError::ControlCharacter { offset: 1 }
    ));
    assert!(matches!(error("\u{7f}"), LexError::ControlCharacter { .. }));
    // NUL cannot be in an identifier, even quoted.
    assert!(matches!(
        error("\"a\0b\""),
        LexError::ControlCharacter { offset: 2 }
    ));
    assert!(matches!(
        error("U&\"a\0b\""),
        LexError::ControlCharacter { offset: 4 }
    ));
    // Inside constants and comments they are content.
    assert_eq!(one("'\u{1b}\0'"), String);
    assert_eq!(one("/* \u{7f} */"), BlockComment);
    // \v and \f are whitespace.
    assert_eq!(toks("a\u{b}\u{c}b"), [(Word, "a"), (Word, "b")]);
}

#[test]
fn standard_conforming_strings_off() {
    let lex = |sql| {
        Lexer::new(sql)
            .standard_conforming_strings(false)
            .map(|t| t.unwrap().kind)
            .filter(|k| *k != Whitespace)
            .collect::<Vec<_>>()
    };
    // With it off, `\'` does not end the string.
    assert_eq!(lex(r"'it\'s' x"), [String, Word]);
    assert_eq!(lex(r"N'it\'s'"), [NationalString]);
    assert_eq!(lex(r"'abc\' , 'x"), [String, Word]);
    assert!(matches!(
        error_std_off(r"'abc\'"),
        Some(LexError::UnterminatedString { .. })
    ));
    assert!(matches!(
        error_std_off(r"'\u12'"),
        Some(LexError::BadEscape { .. })
    ));
    assert!(matches!(
        error_std_off("U&'x'"),
        Some(LexError::UnicodeStringNotAllowed { offset: 0 })
    ));
    // With it on, the same input is two strings.
    assert_eq!(
        toks(r"'abc\' , 'x'"),
        [(String, r"'abc\'"), (Punctuation, ","), (String, "'x'")]
    );
}

#[test]
fn the_lexer_stops_after_an_error() {
    let mut lexer = Lexer::new("a 'b");
    assert!(lexer.next().unwrap().is_ok());
    assert!(lexer.next().unwrap().is_ok());
    assert!(lexer.next().unwrap().is_err());
    assert_eq!(lexer.offset(), 2);
    assert!(lexer.next().is_none());
}

#[test]
fn errors_display_without_input() {
    let e = error("SELECT 'secret");
    assert_eq!(e.to_string(), "unterminated quoted string at byte 7");
    assert_eq!(e.name(), "unterminated_string");
    assert_eq!(e.offset(), 7);
}
