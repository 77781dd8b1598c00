//! Redaction of server message texts: PostgreSQL's own texts with what
//! they must become, secrets spliced into every value-echoing shape, and
//! arbitrary input.

use std::borrow::Cow;

use proptest::prelude::*;
use proptest::sample::select;
use vigil_sql::redact_message;

// ---------------------------------------------------------------------------
// PostgreSQL's texts

/// Field texts as PostgreSQL (16, English messages) sends them, and their
/// redaction.
const CASES: &[(&str, &str)] = &[
    // Unique violation: message and detail.
    (
        r#"duplicate key value violates unique constraint "users_email_key""#,
        r#"duplicate key value violates unique constraint "users_email_key""#,
    ),
    (
        "Key (email)=(alice@example.com) already exists.",
        "Key (email)=($?) already exists.",
    ),
    (
        "Key (tenant_id, email)=(7, o'brien@example.com) already exists.",
        "Key (tenant_id, email)=($?) already exists.",
    ),
    (
        "Key (lower(email::text))=(alice@example.com) already exists.",
        "Key (lower(email::text))=($?) already exists.",
    ),
    (
        r#"Key ("userId", "orgId")=(42, 7) already exists."#,
        r#"Key ("userId", "orgId")=($?) already exists."#,
    ),
    (
        "Key (COALESCE(tenant, 'none'::text), email)=(acme, ann@example.com) already exists.",
        "Key (COALESCE(tenant, '$?'::text), email)=($?) already exists.",
    ),
    // A value holding parentheses, commas, `)=(` and newlines.
    (
        "Key (note)=(first (line), x)=(y\nsecond \"line\") already exists.",
        "Key (note)=($?) already exists.",
    ),
    // Creating a unique index.
    (
        "Key (sku)=(AB-1234) is duplicated.",
        "Key (sku)=($?) is duplicated.",
    ),
    // Foreign key.
    (
        r#"insert or update on table "orders" violates foreign key constraint "orders_user_id_fkey""#,
        r#"insert or update on table "orders" violates foreign key constraint "orders_user_id_fkey""#,
    ),
    (
        r#"Key (a, b)=(1, x) is not present in table "t"."#,
        r#"Key (a, b)=($?) is not present in table "t"."#,
    ),
    (
        r#"update or delete on table "users" violates foreign key constraint "orders_user_id_fkey" on table "orders""#,
        r#"update or delete on table "users" violates foreign key constraint "orders_user_id_fkey" on table "orders""#,
    ),
    (
        r#"Key (id)=(1001) is still referenced from table "orders"."#,
        r#"Key (id)=($?) is still referenced from table "orders"."#,
    ),
    // Exclusion constraint: two value lists.
    (
        r#"conflicting key value violates exclusion constraint "bookings_room_during_excl""#,
        r#"conflicting key value violates exclusion constraint "bookings_room_during_excl""#,
    ),
    (
        r#"Key (room, during)=(101, ["2024-01-01 10:00:00","2024-01-01 11:00:00")) conflicts with existing key (room, during)=(101, ["2024-01-01 09:00:00","2024-01-01 10:30:00"))."#,
        "Key (room, during)=($?) conflicts with existing key (room, during)=($?).",
    ),
    // Check and not-null constraints.
    (
        r#"new row for relation "accounts" violates check constraint "accounts_balance_check""#,
        r#"new row for relation "accounts" violates check constraint "accounts_balance_check""#,
    ),
    (
        "Failing row contains (1, secret, null, (2,3)).",
        "Failing row contains ($?).",
    ),
    (
        r#"null value in column "email" of relation "users" violates not-null constraint"#,
        r#"null value in column "email" of relation "users" violates not-null constraint"#,
    ),
    (
        r#"value for domain positive_int violates check constraint "positive_int_check""#,
        r#"value for domain positive_int violates check constraint "positive_int_check""#,
    ),
    // Partitions.
    (
        r#"no partition of relation "events" found for row"#,
        r#"no partition of relation "events" found for row"#,
    ),
    (
        "Partition key of the failing row contains (region, day) = (eu-west, 2024-01-31).",
        "Partition key of the failing row contains (region, day) = ($?).",
    ),
    // Invalid input.
    (
        r#"invalid input syntax for type integer: "abc""#,
        r#"invalid input syntax for type integer: "$?""#,
    ),
    (
        r#"invalid input syntax for type uuid: "not-a-uuid""#,
        r#"invalid input syntax for type uuid: "$?""#,
    ),
    (
        r#"invalid input syntax for type boolean: "maybe""#,
        r#"invalid input syntax for type boolean: "$?""#,
    ),
    (
        r#"invalid input syntax for type timestamp: "2024-02-30 25:00""#,
        r#"invalid input syntax for type timestamp: "$?""#,
    ),
    (
        r#"invalid input syntax for type numeric: "12"34""#,
        r#"invalid input syntax for type numeric: "$?""#,
    ),
    (
        r#"date/time field value out of range: "2024-13-45""#,
        r#"date/time field value out of range: "$?""#,
    ),
    (
        r#"malformed array literal: "{1,2""#,
        r#"malformed array literal: "$?""#,
    ),
    (
        r#"value "123456789012" is out of range for type integer"#,
        r#"value "$?" is out of range for type integer"#,
    ),
    (
        r#"invalid input value for enum mood: "happy""#,
        r#"invalid input value for enum mood: "$?""#,
    ),
    (
        r#"invalid value for parameter "TimeZone": "Mars/Olympus""#,
        r#"invalid value for parameter "TimeZone": "$?""#,
    ),
    (
        r#"invalid byte sequence for encoding "UTF8": 0xc3 0x28"#,
        r#"invalid byte sequence for encoding "UTF8": $?"#,
    ),
    (
        r#"character with byte sequence 0xe2 0x82 0xac in encoding "UTF8" has no equivalent in encoding "LATIN1""#,
        r#"character with byte sequence $? in encoding "UTF8" has no equivalent in encoding "LATIN1""#,
    ),
    // Out of range with no value, division by zero, too long.
    ("integer out of range", "integer out of range"),
    ("division by zero", "division by zero"),
    (
        "value too long for type character varying(10)",
        "value too long for type character varying(10)",
    ),
    (
        "A field with precision 5, scale 2 must round to an absolute value less than 10^3.",
        "A field with precision 5, scale 2 must round to an absolute value less than 10^3.",
    ),
    // Objects that do not exist.
    (
        r#"relation "users" does not exist"#,
        r#"relation "users" does not exist"#,
    ),
    (
        r#"column "emial" does not exist"#,
        r#"column "emial" does not exist"#,
    ),
    (
        r#"column "x" of relation "y" does not exist"#,
        r#"column "x" of relation "y" does not exist"#,
    ),
    (
        r#"Perhaps you meant to reference the column "users.email"."#,
        r#"Perhaps you meant to reference the column "users.email"."#,
    ),
    (
        "function lower(integer) does not exist",
        "function lower(integer) does not exist",
    ),
    (
        "No function matches the given name and argument types. You might need to add explicit type casts.",
        "No function matches the given name and argument types. You might need to add explicit type casts.",
    ),
    (
        "operator does not exist: integer = text",
        "operator does not exist: integer = text",
    ),
    // Syntax errors: the token may be a literal from the query.
    (
        r#"syntax error at or near "SELEC""#,
        r#"syntax error at or near "$?""#,
    ),
    (
        r#"syntax error at or near "'hunter2'""#,
        r#"syntax error at or near "$?""#,
    ),
    (
        r#"unterminated quoted string at or near "'hunter2""#,
        r#"unterminated quoted string at or near "$?""#,
    ),
    // The last quote mark is followed by a letter: it closes nothing.
    (
        r#"unterminated quoted string at or near "'hunter2"#,
        r#"unterminated quoted string at or near "$?"#,
    ),
    (
        "Failing row contains (1, x)secret",
        "Failing row contains ($?",
    ),
    (
        r#"zero-length delimited identifier at or near """""#,
        r#"zero-length delimited identifier at or near "$?""#,
    ),
    (
        "syntax error at end of input",
        "syntax error at end of input",
    ),
    // Permissions and authentication.
    (
        "permission denied for table payroll",
        "permission denied for table payroll",
    ),
    (
        r#"new row violates row-level security policy for table "accounts""#,
        r#"new row violates row-level security policy for table "accounts""#,
    ),
    (
        r#"password authentication failed for user "bob""#,
        r#"password authentication failed for user "bob""#,
    ),
    (r#"role "x" does not exist"#, r#"role "x" does not exist"#),
    (
        r#"database "app" does not exist"#,
        r#"database "app" does not exist"#,
    ),
    (
        r#"no pg_hba.conf entry for host "10.1.2.3", user "bob", database "app", no encryption"#,
        r#"no pg_hba.conf entry for host "10.1.2.3", user "bob", database "app", no encryption"#,
    ),
    (
        r#"Column "id" is an identity column defined as GENERATED ALWAYS."#,
        r#"Column "id" is an identity column defined as GENERATED ALWAYS."#,
    ),
    // Multi-line details.
    (
        "Process 4242 waits for ShareLock on transaction 7001; blocked by process 4243.\n\
         Process 4243 waits for ShareLock on transaction 7000; blocked by process 4242.",
        "Process 4242 waits for ShareLock on transaction 7001; blocked by process 4243.\n\
         Process 4243 waits for ShareLock on transaction 7000; blocked by process 4242.",
    ),
    (
        "constraint orders_user_id_fkey on table orders depends on table users\n\
         view active_users depends on table users",
        "constraint orders_user_id_fkey on table orders depends on table users\n\
         view active_users depends on table users",
    ),
    (
        "line 1: Opening and ending tag mismatch: name line 1 and nam\n\
         <name>hunter2</nam>\n\
         \x20                  ^",
        "line 1: Opening and ending tag mismatch: name line 1 and nam\n\
         $?\n\
         \x20                  ^",
    ),
    // JSON.
    (
        "invalid input syntax for type json",
        "invalid input syntax for type json",
    ),
    (
        r#"Token "hunter2" is invalid."#,
        r#"Token "$?" is invalid."#,
    ),
    (
        r#"JSON data, line 1: {"password": hunter2..."#,
        "JSON data, line 1: $?",
    ),
    // Contexts: COPY, SQL in PL/pgSQL, parameters.
    (
        r#"COPY users, line 2, column email: "ann@example.com""#,
        r#"COPY users, line 2, column email: "$?""#,
    ),
    (
        r#"COPY users, line 3: "3,bob,bob@example.com""#,
        r#"COPY users, line 3: "$?""#,
    ),
    (
        "PL/pgSQL function f() line 3 at RAISE",
        "PL/pgSQL function f() line 3 at RAISE",
    ),
    (
        "SQL statement \"INSERT INTO t VALUES ('x', 42)\"\n\
         PL/pgSQL function f() line 3 at SQL statement",
        "SQL statement \"INSERT INTO t VALUES ($1, $2)\"\n\
         PL/pgSQL function f() line 3 at SQL statement",
    ),
    (
        "SQL statement \"UPDATE \"Accounts\" SET balance = balance - 100\n  WHERE owner = 'ann'\"\n\
         PL/pgSQL function transfer(integer) line 5 at SQL statement",
        "SQL statement \"UPDATE \"Accounts\" SET balance = balance - $1 WHERE owner = $2\"\n\
         PL/pgSQL function transfer(integer) line 5 at SQL statement",
    ),
    (
        "PL/pgSQL expression \"amount / 0\"\nPL/pgSQL function pay(numeric) line 4 at RETURN",
        "PL/pgSQL expression \"amount / $1\"\nPL/pgSQL function pay(numeric) line 4 at RETURN",
    ),
    // SQL whose end is in doubt: masked to the end.
    (
        "SQL statement \"SELECT 1 -- \"x\"\"\nPL/pgSQL function f() line 2 at PERFORM",
        "SQL statement \"$?",
    ),
    (
        "SQL statement \"SELECT 'it\\'s' || 'x'\"\nPL/pgSQL function f() line 2 at PERFORM",
        "SQL statement \"$?",
    ),
    // A line comment holds the closing `"`: where the SQL ends is in doubt
    // (taken further, the COPY line would be SQL, its value an identifier).
    (
        "SQL statement \"SELECT 1 -- x\"\n\
         PL/pgSQL function f() line 2 at PERFORM\n\
         COPY t, line 1: \"hunter2\"x\"",
        "SQL statement \"$?",
    ),
    // Lexed with standard_conforming_strings on, `'a\''` ends early and
    // `hunter2` is a word; off, it is a string. The two disagree: masked.
    (
        "SQL statement \"INSERT INTO t VALUES ('a\\'', 'hunter2', 'b\\'')\"\n\
         PL/pgSQL function f() line 2 at SQL statement",
        "SQL statement \"$?\"\nPL/pgSQL function f() line 2 at SQL statement",
    ),
    (
        r#"SQL function "get_user" statement 1"#,
        r#"SQL function "get_user" statement 1"#,
    ),
    (
        "while casting return value to function's return type",
        "while casting return value to function's return type",
    ),
    (
        "unnamed portal with parameters: $1 = 'ann@example.com', $2 = '42'",
        "unnamed portal with parameters: $1 = '$?'",
    ),
    (
        r#"portal "C_1" with parameters: $1 = 'o''brien'"#,
        r#"portal "C_1" with parameters: $1 = '$?'"#,
    ),
    (
        r#"while updating tuple (0,1) in relation "accounts""#,
        r#"while updating tuple (0,1) in relation "accounts""#,
    ),
    // Unterminated: masked to the end.
    (
        r#"invalid input syntax for type integer: "abc"#,
        r#"invalid input syntax for type integer: "$?"#,
    ),
    (
        "Failing row contains (1, secret",
        "Failing row contains ($?",
    ),
    (r#"relation "users does not exist"#, r#"relation "$?"#),
    // A message and its detail in one text, the value holding a quote
    // mark: the quoted value runs to the last quote mark, inside the row,
    // and so on to the row's end.
    (
        "invalid input syntax for type integer: \"ab\" hunter2\"\n\
         DETAIL: Failing row contains (1, ab\" hunter2).",
        "invalid input syntax for type integer: \"$?\".",
    ),
    // Localized messages: their quote marks are masked too.
    (
        "Schlüssel »(email)=(ann@example.com)« existiert bereits.",
        "Schlüssel »$?« existiert bereits.",
    ),
];

#[test]
fn postgres_messages() {
    assert!(CASES.len() >= 25);
    for &(text, expected) in CASES {
        let out = redact_message(text);
        assert_eq!(out, expected, "redacting {text:?}");
        // Unchanged text is borrowed; changed text is not.
        assert_eq!(
            matches!(out, Cow::Borrowed(_)),
            text == expected,
            "{text:?}"
        );
        // Redacting the redacted text changes nothing.
        assert!(
            matches!(redact_message(&out), Cow::Borrowed(_)),
            "redacting {out:?} again gives {:?}",
            redact_message(&out)
        );
    }
}

#[test]
fn secrets_do_not_show() {
    for (text, secret) in [
        ("Key (email)=(alice@example.com) already exists.", "alice"),
        ("Failing row contains (1, secret, null).", "secret"),
        (r#"invalid input syntax for type integer: "abc""#, "abc"),
        (r#"Token "hunter2" is invalid."#, "hunter2"),
        ("SQL statement \"SELECT 'hunter2'\"", "hunter2"),
        (
            "SQL statement \"SELECT 1 -- x\"\nCOPY t, line 1: \"hunter2\"x\"",
            "hunter2",
        ),
        (
            "SQL statement \"SELECT 'a\\'', 'hunter2', 'b\\''\"",
            "hunter2",
        ),
        (r#"syntax error at or near "'hunter2'""#, "hunter2"),
        (r#"invalid value "hunter2" for "YYYY""#, "hunter2"),
    ] {
        let out = redact_message(text);
        assert!(!out.contains(secret), "{secret:?} shows in {out:?}");
    }
}

// ---------------------------------------------------------------------------
// Properties

/// Shapes that echo a value, `{}` where it goes. SQL shapes hold it in a
/// string constant, quotes doubled.
const TEMPLATES: &[&str] = &[
    "Key (email)=({}) already exists.",
    r#"Key (a, b)=(1, {}) is not present in table "t"."#,
    r#"Key (id)=({}) is still referenced from table "orders"."#,
    "Key (c)=({}) conflicts with existing key (c)=({}).",
    "Key (lower(email::text))=({}) is duplicated.",
    r#"Key ("userId")=({}) already exists."#,
    "Failing row contains (1, {}, null).",
    "Partition key of the failing row contains (region) = ({}).",
    r#"invalid input syntax for type integer: "{}""#,
    r#"invalid input syntax for type uuid: "{}""#,
    r#"value "{}" is out of range for type integer"#,
    r#"invalid input value for enum mood: "{}""#,
    r#"date/time field value out of range: "{}""#,
    r#"malformed array literal: "{}""#,
    r#"syntax error at or near "{}""#,
    r#"unterminated quoted string at or near "'{}""#,
    r#"invalid value "{}" for "YYYY""#,
    r#"invalid value for parameter "TimeZone": "{}""#,
    r#"COPY t, line 2, column b: "{}""#,
    r#"COPY t, line 1: "{}""#,
    r#"Token "{}" is invalid."#,
    "JSON data, line 1: {}",
    r#"JSON object does not contain key "{}""#,
    "unnamed portal with parameters: $1 = '{}', $2 = NULL",
    "Entity '{}' not defined",
    "line 1: Premature end of data in tag a line 1\n<a>{}\n   ^",
    "SQL statement \"INSERT INTO t VALUES ('{}', 1)\"\nPL/pgSQL function f() line 3 at SQL statement",
    "PL/pgSQL expression \"x = '{}'\"",
    "COPY t, line 1, column a: \"{}\"\nSQL statement \"SELECT '{}'\"",
    // A message and its detail in one text.
    "invalid input syntax for type integer: \"{}\"\nDETAIL: Failing row contains (1, {}).",
];

/// A value to echo: letters, digits and punctuation, quotes and
/// parentheses included, and the phrases the rules look for.
fn value() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9 !#$%&()*+,./:;<=>?@^_`{|}~\\[\\]\\\\'\"-]{1,8}",
        1 => select(vec![
            "\"", "'", "(", ")", ")=(", ") = (", ") already exists.", "relation \"",
            "user \"", "SQL statement \"", "Key (", "row contains (", "conflicts with existing key (c)=(",
            "«", "»", "“", "’", "é", "--", "^", "$?", "\\'",
        ])
        .prop_map(str::to_owned),
        2 => "[a-zA-Z][a-zA-Z0-9]{3,9}",
    ];
    proptest::collection::vec(piece, 1..6)
        .prop_map(|p| p.concat())
        .prop_filter("four bytes or more", |s| s.len() >= 4)
}

/// `template` with `v` in place of each `{}`.
fn fill(template: &str, v: &str) -> String {
    let v = if template.contains("SQL statement") || template.contains("PL/pgSQL expression") {
        v.replace('\'', "''")
    } else {
        v.to_owned()
    };
    template.replace("{}", &v)
}

/// Runs of four letters or digits or more.
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() >= 4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The value, and each word of it, shows in no redacted template, but
    /// where the template redacted with a harmless value shows it too.
    #[test]
    fn echoed_values_do_not_show(v in value(), t in select(TEMPLATES)) {
        let (text, harmless) = (fill(t, &v), fill(t, "0"));
        let (out, benign) = (redact_message(&text), redact_message(&harmless));
        for needle in std::iter::once(v.as_str()).chain(words(&v)) {
            prop_assert!(
                !out.contains(needle) || benign.contains(needle),
                "{needle:?} shows in {out:?}"
            );
        }
    }

    /// SQL in a context line, its strings escaped as with
    /// `standard_conforming_strings` off (`\'`): no value shows.
    #[test]
    fn backslash_escaped_sql(v in value(), w in value()) {
        let escape = |s: &str| s.replace('\\', "\\\\").replace('\'', "\\'");
        let text = format!(
            "SQL statement \"INSERT INTO t VALUES ('{}', 1, '{}')\"\n\
             PL/pgSQL function f() line 3 at SQL statement",
            escape(&v),
            escape(&w),
        );
        let out = redact_message(&text);
        let benign = "SQL statement \"INSERT INTO t VALUES ($1, $2, $3)\"\n\
                      PL/pgSQL function f() line 3 at SQL statement";
        for needle in [v.as_str(), w.as_str()].into_iter().chain(words(&v)).chain(words(&w)) {
            prop_assert!(
                !out.contains(needle) || benign.contains(needle),
                "{needle:?} shows in {out:?}"
            );
        }
    }

    /// Arbitrary text never panics, and redacting the result again is
    /// stable.
    #[test]
    fn arbitrary_text(s in any::<String>()) {
        let out = redact_message(&s);
        let again = redact_message(&out);
        prop_assert_eq!(&again, &out);
    }

    /// Text made of the rules' own phrases never panics.
    #[test]
    fn phrase_soup(pieces in proptest::collection::vec(select(vec![
        "Key (", ")=(", ") = (", "row contains (", "Partition key of the failing row contains (",
        " conflicts with existing key (", "\"", "'", "(", ")", " relation ", "user ", "a's ",
        "SQL statement \"", "PL/pgSQL expression \"", "-- ", "$$", "/*", "E'\\'",
        "JSON data, line 1: ", "byte sequence ", "0x", "0xc3 ", "\n", "\n  ^\n", "^", "«", "»",
        "é", "x", "42", " ", "\r", "\0",
    ]), 0..40)) {
        let s = pieces.concat();
        let out = redact_message(&s);
        let _ = redact_message(&out);
    }
}
