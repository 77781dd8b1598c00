//! Decoding every fixture, re-encoding it, and the encoders the proxy uses
//! to write messages of its own.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

mod fixtures;

use bytes::BytesMut;
use vigil_pg::{
    Authentication, BackendMessage, Bind, CommandComplete, DataRow, Diagnostic, Error, FieldCode,
    FieldDescription, FrameRef, Framer, FrontendMessage, MessageTag, ProtocolVersion,
    RowDescription, Severity, SslResponse, Startup, Target, TransactionStatus,
};

/// Frames a one-message fixture and checks the frame is all of it.
fn frame_fe(name: &str) -> FrameRef<'static> {
    let bytes = fixtures::frontend(name);
    let mut framer = Framer::frontend();
    if !fixtures::is_startup(name) {
        framer.skip_startup();
    }
    let frame = framer.next_ref(bytes).unwrap().expect("a whole message");
    assert_eq!(
        frame.len(),
        bytes.len(),
        "{name}: one message, nothing after"
    );
    frame
}

fn frame_be(name: &str) -> FrameRef<'static> {
    let bytes = fixtures::backend(name);
    let frame = Framer::backend()
        .next_ref(bytes)
        .unwrap()
        .expect("a whole message");
    assert_eq!(
        frame.len(),
        bytes.len(),
        "{name}: one message, nothing after"
    );
    frame
}

fn fe(name: &str) -> FrontendMessage<'static> {
    frame_fe(name)
        .frontend()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn be(name: &str) -> BackendMessage<'static> {
    frame_be(name)
        .backend()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn values(v: vigil_pg::Values<'_>) -> Vec<Option<&[u8]>> {
    v.iter().collect()
}

/// What gen_fixtures.py put in each frontend fixture.
fn expect_frontend(name: &str, msg: FrontendMessage<'_>) {
    use FrontendMessage as F;
    match (name, msg) {
        ("startup-v3.0", F::Startup(s)) => {
            assert_eq!(s.version, ProtocolVersion::V3_0);
            let params: Vec<_> = s.params.iter().collect();
            assert_eq!(
                params,
                [
                    ("user", "alice"),
                    ("database", "shop"),
                    ("application_name", "orders-api"),
                    ("options", "-c search_path=app"),
                    ("client_encoding", "UTF8"),
                ]
            );
            assert_eq!(s.user(), Some("alice"));
            assert_eq!(s.database(), Some("shop"));
            assert_eq!(s.application_name(), Some("orders-api"));
        }
        ("startup-v3.2", F::Startup(s)) => {
            assert_eq!(s.version, ProtocolVersion::V3_2);
            assert_eq!(s.version.code(), 0x0003_0002);
            assert_eq!(s.param("_pq_.test_protocol_negotiation"), Some("on"));
            // No database: PostgreSQL uses the user name.
            assert_eq!(s.database(), Some("bob"));
        }
        ("ssl-request", F::SslRequest) | ("gssenc-request", F::GssEncRequest) => {}
        ("cancel-request-v3.0", F::CancelRequest(c)) => {
            assert_eq!(c.process_id, 4242);
            assert_eq!(c.secret_key.as_bytes(), [0xde, 0xad, 0xbe, 0xef]);
        }
        ("cancel-request-v3.2", F::CancelRequest(c)) => {
            assert_eq!(c.process_id, 4242);
            assert_eq!(c.secret_key.len(), 32);
            assert_eq!(c.secret_key.as_bytes()[31], 32);
        }
        ("query", F::Query(q)) => {
            assert_eq!(
                q.sql,
                "SELECT 1; UPDATE accounts SET owner = 'mallory' WHERE id = 7"
            );
        }
        ("parse", F::Parse(p)) => {
            assert_eq!(p.name, "stmt_1");
            assert_eq!(p.sql, "SELECT * FROM accounts WHERE id = $1 AND owner = $2");
            assert_eq!(p.param_types.iter().collect::<Vec<_>>(), [23, 25]);
            assert_eq!(p.param_types.get(1), Some(25));
            assert_eq!(p.param_types.get(2), None);
        }
        ("parse-unnamed", F::Parse(p)) => {
            assert_eq!((p.name, p.sql), ("", "SELECT now()"));
            assert!(p.param_types.is_empty());
        }
        ("bind", F::Bind(b)) => {
            assert_eq!((b.portal, b.statement), ("", "stmt_1"));
            assert_eq!(b.param_formats.iter().collect::<Vec<_>>(), [0, 1, 0]);
            assert_eq!(
                values(b.params),
                [Some(&b"42"[..]), Some(&[0, 0, 0, 7][..]), None]
            );
            assert_eq!(b.result_formats.iter().collect::<Vec<_>>(), [1]);
            assert_eq!(b.result_formats.resolve(5, 6), Some(1));
        }
        ("describe-statement", F::Describe(d)) => {
            assert_eq!((d.target, d.name), (Target::Statement, "stmt_1"));
        }
        ("describe-portal", F::Describe(d)) => {
            assert_eq!((d.target, d.name), (Target::Portal, ""));
        }
        ("execute", F::Execute(e)) => assert_eq!((e.portal, e.max_rows), ("", 0)),
        ("execute-limit", F::Execute(e)) => assert_eq!((e.portal, e.max_rows), ("cursor_1", 100)),
        ("close-statement", F::Close(c)) => {
            assert_eq!((c.target, c.name), (Target::Statement, "stmt_1"));
        }
        ("close-portal", F::Close(c)) => {
            assert_eq!((c.target, c.name), (Target::Portal, "cursor_1"));
        }
        ("sync", F::Sync) | ("flush", F::Flush) | ("terminate", F::Terminate) => {}
        ("copy-data", F::CopyData(d)) => assert_eq!(d.as_bytes(), b"3\tcarol\t7.25\t\\N\n"),
        ("copy-done", F::CopyDone) => {}
        ("copy-fail", F::CopyFail(f)) => assert_eq!(f.message, "aborted by user"),
        ("password", F::AuthResponse(a)) => {
            assert_eq!(a.0.as_bytes(), b"hunter2\0");
            // Not a SASLInitialResponse: no length after the string.
            assert_eq!(a.sasl_initial(), Err(Error::ShortBody));
        }
        ("sasl-initial-response", F::AuthResponse(a)) => {
            let s = a.sasl_initial().unwrap();
            assert_eq!(s.mechanism, "SCRAM-SHA-256");
            assert_eq!(
                s.data.map(|d| d.as_bytes()),
                Some(&b"n,,n=,r=rOprNGfwEbeRWgbNEkqO"[..])
            );
        }
        ("sasl-response", F::AuthResponse(a)) => {
            assert!(a.0.as_bytes().starts_with(b"c=biws,r="));
        }
        ("function-call", F::FunctionCall(f)) => {
            assert_eq!(f.function_oid, 1598);
            assert_eq!(f.arg_formats.iter().collect::<Vec<_>>(), [1]);
            assert_eq!(values(f.args), [Some(&[0, 0, 0, 9][..])]);
            assert_eq!(f.result_format, 1);
        }
        (name, msg) => panic!("{name}: unexpected {msg:?}"),
    }
}

/// What gen_fixtures.py put in each backend fixture.
fn expect_backend(name: &str, msg: BackendMessage<'_>) {
    use Authentication as A;
    use BackendMessage as B;
    match (name, msg) {
        ("auth-ok", B::Authentication(A::Ok))
        | ("auth-kerberos", B::Authentication(A::KerberosV5))
        | ("auth-cleartext", B::Authentication(A::CleartextPassword))
        | ("auth-gss", B::Authentication(A::Gss))
        | ("auth-sspi", B::Authentication(A::Sspi)) => {}
        ("auth-md5", B::Authentication(A::Md5Password { salt })) => {
            assert_eq!(salt, [1, 2, 0xfe, 0xff]);
        }
        ("auth-gss-continue", B::Authentication(A::GssContinue(d))) => {
            assert_eq!(d.as_bytes(), b"\x60\x82\x01\x00token");
        }
        ("auth-sasl", B::Authentication(A::Sasl(m))) => {
            assert_eq!(
                m.iter().collect::<Vec<_>>(),
                ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
            );
            assert!(m.contains("SCRAM-SHA-256-PLUS"));
            assert_eq!(
                m.without_channel_binding().collect::<Vec<_>>(),
                ["SCRAM-SHA-256"]
            );
        }
        ("auth-sasl-continue", B::Authentication(A::SaslContinue(d))) => {
            assert!(d.as_bytes().ends_with(b",i=4096"));
        }
        ("auth-sasl-final", B::Authentication(A::SaslFinal(d))) => {
            assert!(d.as_bytes().starts_with(b"v="));
        }
        ("parameter-status", B::ParameterStatus(p)) => {
            assert_eq!((p.name, p.value), ("server_version", "18.1"));
        }
        ("backend-key-data-v3.0", B::BackendKeyData(k)) => {
            assert_eq!(k.process_id, 4242);
            assert_eq!(k.secret_key.as_bytes(), [0xde, 0xad, 0xbe, 0xef]);
        }
        ("backend-key-data-v3.2", B::BackendKeyData(k)) => {
            assert_eq!(k.secret_key.as_bytes(), (1..=32).collect::<Vec<u8>>());
        }
        ("negotiate-protocol-version", B::NegotiateProtocolVersion(n)) => {
            assert_eq!(n.newest_minor, 0);
            assert_eq!(
                n.unrecognized.iter().collect::<Vec<_>>(),
                ["_pq_.test_protocol_negotiation"]
            );
        }
        ("ready-for-query-idle", B::ReadyForQuery(TransactionStatus::Idle))
        | ("ready-for-query-transaction", B::ReadyForQuery(TransactionStatus::InTransaction))
        | ("ready-for-query-failed", B::ReadyForQuery(TransactionStatus::Failed)) => {}
        ("row-description", B::RowDescription(r)) => {
            assert_eq!(r.len(), 3);
            let fields: Vec<_> = r.fields().collect();
            assert_eq!(
                fields[0],
                FieldDescription {
                    name: "id",
                    table_oid: 16384,
                    column_id: 1,
                    type_oid: 23,
                    type_size: 4,
                    type_modifier: -1,
                    format: 0,
                }
            );
            assert_eq!((fields[1].name, fields[1].type_oid), ("owner", 25));
            assert_eq!(
                (fields[2].name, fields[2].type_oid, fields[2].type_modifier),
                ("balance", 1700, 655_366)
            );
            assert_eq!(fields[2].format, 1);
        }
        ("data-row", B::DataRow(d)) => {
            assert_eq!(values(d.columns), [Some(&b"1"[..]), None, Some(&b""[..])]);
        }
        (
            "command-complete-insert"
            | "command-complete-select"
            | "command-complete-update"
            | "command-complete-delete"
            | "command-complete-merge"
            | "command-complete-fetch"
            | "command-complete-copy"
            | "command-complete-create-table",
            B::CommandComplete(c),
        ) => {
            let expected = match name {
                "command-complete-insert" => ("INSERT 0 5", "INSERT", Some(5)),
                "command-complete-select" => ("SELECT 3", "SELECT", Some(3)),
                "command-complete-update" => ("UPDATE 2", "UPDATE", Some(2)),
                "command-complete-delete" => ("DELETE 0", "DELETE", Some(0)),
                "command-complete-merge" => ("MERGE 4", "MERGE", Some(4)),
                "command-complete-fetch" => ("FETCH 100", "FETCH", Some(100)),
                "command-complete-copy" => ("COPY 10", "COPY", Some(10)),
                _ => ("CREATE TABLE", "CREATE TABLE", None),
            };
            assert_eq!((c.tag, c.command(), c.rows()), expected);
        }
        ("empty-query-response", B::EmptyQueryResponse)
        | ("parse-complete", B::ParseComplete)
        | ("bind-complete", B::BindComplete)
        | ("close-complete", B::CloseComplete)
        | ("no-data", B::NoData)
        | ("portal-suspended", B::PortalSuspended)
        | ("copy-done", B::CopyDone) => {}
        ("error-response", B::ErrorResponse(e)) => {
            assert_eq!(e.severity(), Some("ERROR"));
            assert_eq!(e.sqlstate(), Some("23505"));
            assert_eq!(
                e.message(),
                Some("duplicate key value violates unique constraint \"accounts_pkey\"")
            );
            assert_eq!(e.detail(), Some("Key (id)=(1) already exists."));
            assert_eq!(e.get(FieldCode::SCHEMA), Some("public"));
            assert_eq!(e.get(FieldCode::TABLE), Some("accounts"));
            assert_eq!(e.get(FieldCode::CONSTRAINT), Some("accounts_pkey"));
            assert_eq!(e.get(FieldCode::FILE), Some("nbtinsert.c"));
            assert_eq!(e.get(FieldCode::LINE), Some("666"));
            assert_eq!(e.get(FieldCode::ROUTINE), Some("_bt_check_unique"));
            assert_eq!(e.hint(), None);
            assert_eq!(e.position(), None);
            assert_eq!(e.iter().count(), 11);
        }
        ("error-response-syntax", B::ErrorResponse(e)) => {
            // Localized S, non-localized V: severity() prefers V.
            assert_eq!(e.get(FieldCode::SEVERITY), Some("ERREUR"));
            assert_eq!(e.severity(), Some("ERROR"));
            assert_eq!(e.sqlstate(), Some("42601"));
            assert_eq!(
                e.message(),
                Some("erreur de syntaxe sur ou près de « SELEC »")
            );
            assert_eq!(e.hint(), Some("Check the spelling."));
            assert_eq!(e.position(), Some(15));
        }
        ("notice-response", B::NoticeResponse(n)) => {
            assert_eq!(n.severity(), Some("NOTICE"));
            assert_eq!(n.sqlstate(), Some("00000"));
            assert_eq!(n.message(), Some("notice from vigil"));
            assert!(n.get(FieldCode::WHERE).unwrap().starts_with("PL/pgSQL"));
        }
        ("parameter-description", B::ParameterDescription(p)) => {
            assert_eq!(p.types.iter().collect::<Vec<_>>(), [23, 25, 1043]);
        }
        ("copy-in-response", B::CopyInResponse(c)) => {
            assert_eq!(c.format, 0);
            assert_eq!(c.column_formats.len(), 4);
        }
        ("copy-out-response", B::CopyOutResponse(c)) => {
            assert_eq!(c.format, 1);
            assert_eq!(c.column_formats.iter().collect::<Vec<_>>(), [1, 1]);
        }
        ("copy-both-response", B::CopyBothResponse(c)) => {
            assert_eq!(c.format, 1);
            assert!(c.column_formats.is_empty());
        }
        ("copy-data", B::CopyData(d)) => assert_eq!(d.as_bytes(), b"1\talice\t101.50\t\\N\n"),
        ("notification-response", B::NotificationResponse(n)) => {
            assert_eq!(
                (n.process_id, n.channel, n.payload),
                (4242, "vigil_chan", "payload-42")
            );
        }
        ("function-call-response", B::FunctionCallResponse(f)) => {
            assert_eq!(f.result.map(|r| r.as_bytes()), Some(&[0, 0, 0, 81][..]));
        }
        ("function-call-response-null", B::FunctionCallResponse(f)) => {
            assert_eq!(f.result, None);
        }
        (name, msg) => panic!("{name}: unexpected {msg:?}"),
    }
}

#[test]
fn every_frontend_fixture_decodes() {
    for (name, _) in fixtures::FRONTEND {
        expect_frontend(name, fe(name));
    }
}

#[test]
fn every_backend_fixture_decodes() {
    for (name, _) in fixtures::BACKEND {
        expect_backend(name, be(name));
    }
}

#[test]
fn every_message_type_has_a_fixture() {
    for tag in MessageTag::FRONTEND {
        assert!(
            fixtures::FRONTEND
                .iter()
                .any(|(n, _)| frame_fe(n).tag() == Some(tag)),
            "no frontend fixture for {tag:?}"
        );
    }
    for tag in MessageTag::BACKEND {
        assert!(
            fixtures::BACKEND
                .iter()
                .any(|(n, _)| frame_be(n).tag() == Some(tag)),
            "no backend fixture for {tag:?}"
        );
    }
}

#[test]
fn every_fixture_round_trips() {
    for (name, bytes) in fixtures::FRONTEND {
        let msg = fe(name);
        let mut out = BytesMut::new();
        msg.encode(&mut out).unwrap();
        assert_eq!(&out[..], *bytes, "{name}: re-encoded bytes differ");
        let mut framer = Framer::frontend();
        if msg.tag().is_some() {
            framer.skip_startup();
        }
        let again = framer.next_ref(&out).unwrap().unwrap().frontend().unwrap();
        assert_eq!(again, msg, "{name}");
        assert_eq!(frame_fe(name).tag(), msg.tag(), "{name}");
    }
    for (name, bytes) in fixtures::BACKEND {
        let msg = be(name);
        let mut out = BytesMut::new();
        msg.encode(&mut out).unwrap();
        assert_eq!(&out[..], *bytes, "{name}: re-encoded bytes differ");
        let again = Framer::backend()
            .next_ref(&out)
            .unwrap()
            .unwrap()
            .backend()
            .unwrap();
        assert_eq!(again, msg, "{name}");
        assert_eq!(Some(msg.tag()), frame_be(name).tag(), "{name}");
    }
}

/// Every message of a recorded session, decoded.
fn session(name: &str) -> (Vec<FrontendMessage<'static>>, Vec<BackendMessage<'static>>) {
    let (_, fe_bytes, be_bytes) = fixtures::SESSIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .unwrap();
    let mut framer = Framer::frontend();
    let fe = framer
        .frames(fe_bytes)
        .map(|f| f.and_then(|f| f.frontend()).unwrap())
        .collect();
    let be = Framer::backend()
        .frames(be_bytes)
        .map(|f| f.and_then(|f| f.backend()).unwrap())
        .collect();
    (fe, be)
}

#[test]
fn sessions_re_encode_byte_for_byte() {
    for (name, fe_bytes, be_bytes) in fixtures::SESSIONS {
        let (fe, be) = session(name);
        let mut out = BytesMut::new();
        for m in &fe {
            m.encode(&mut out).unwrap();
        }
        assert_eq!(&out[..], *fe_bytes, "{name}: client stream");
        out.clear();
        for m in &be {
            m.encode(&mut out).unwrap();
        }
        assert_eq!(&out[..], *be_bytes, "{name}: server stream");
    }
}

#[test]
fn simple_session() {
    let (fe, be) = session("simple");
    let FrontendMessage::Startup(s) = fe[0] else {
        panic!("{:?}", fe[0])
    };
    assert_eq!(s.user(), Some("postgres"));
    assert_eq!(s.application_name(), Some("vigil-capture"));
    let queries = fe
        .iter()
        .filter(|m| matches!(m, FrontendMessage::Query(_)))
        .count();
    assert_eq!(queries, 19);
    assert!(fe.contains(&FrontendMessage::Query(vigil_pg::Query {
        sql: "SELECT 1 AS one ; SELECT 'two' AS two, NULL AS nothing;"
    })));
    assert_eq!(fe.last(), Some(&FrontendMessage::Terminate));

    let tags: Vec<_> = be
        .iter()
        .filter_map(|m| match m {
            BackendMessage::CommandComplete(c) => Some((c.tag, c.rows())),
            _ => None,
        })
        .collect();
    assert_eq!(
        tags,
        [
            ("CREATE TABLE", None),
            ("INSERT 0 2", Some(2)),
            ("SELECT 2", Some(2)),
            ("UPDATE 2", Some(2)),
            ("DELETE 1", Some(1)),
            ("SELECT 1", Some(1)),
            ("SELECT 1", Some(1)),
            ("BEGIN", None),
            ("ROLLBACK", None),
            ("BEGIN", None),
            ("SELECT 1", Some(1)),
            ("COMMIT", None),
            ("DO", None),
            ("LISTEN", None),
            ("NOTIFY", None),
            ("COPY 1", Some(1)),
            ("COPY 2", Some(2)),
            ("SELECT 1", Some(1)),
        ]
    );
    let errors: Vec<_> = be
        .iter()
        .filter_map(|m| match m {
            BackendMessage::ErrorResponse(e) => Some((e.sqlstate(), e.detail())),
            _ => None,
        })
        .collect();
    assert_eq!(
        errors,
        [
            (Some("23505"), Some("Key (id)=(1) already exists.")),
            (Some("22012"), None),
        ]
    );
    let statuses: String = be
        .iter()
        .filter_map(|m| match m {
            BackendMessage::ReadyForQuery(s) => Some(char::from(s.to_byte())),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, "IIIIIIIITEITTIIIIIII");
    assert!(be.iter().any(|m| matches!(
        m,
        BackendMessage::NotificationResponse(n) if n.payload == "payload-42"
    )));
    assert!(be.iter().any(|m| matches!(
        m,
        BackendMessage::NoticeResponse(n) if n.message() == Some("notice from vigil")
    )));
    // The canary in the second row arrives as a column of a DataRow.
    let rows: Vec<_> = be
        .iter()
        .filter_map(|m| match m {
            BackendMessage::DataRow(d) => Some(d.columns.iter().collect::<Vec<_>>()),
            _ => None,
        })
        .collect();
    assert_eq!(
        rows[1],
        [
            Some(&b"2"[..]),
            Some(&b"bob"[..]),
            Some(&b"-4749"[..]),
            Some(&b"canary-7f3a9c"[..])
        ]
    );
    assert_eq!(rows[0][3], None);
}

#[test]
fn extended_sessions() {
    for (name, statement) in [("extended", ""), ("prepared", "P_0")] {
        let (fe, be) = session(name);
        let parses: Vec<_> = fe
            .iter()
            .filter_map(|m| match m {
                FrontendMessage::Parse(p) => Some(*p),
                _ => None,
            })
            .collect();
        assert_eq!(parses.len(), if statement.is_empty() { 3 } else { 1 });
        assert_eq!(parses[0].name, statement);
        assert_eq!(
            parses[0].sql,
            "SELECT $1::int AS aid, 'row-' || $2 AS label, NULL::text AS nothing;"
        );
        let binds: Vec<Bind<'_>> = fe
            .iter()
            .filter_map(|m| match m {
                FrontendMessage::Bind(b) => Some(*b),
                _ => None,
            })
            .collect();
        assert_eq!(binds.len(), 3);
        for b in &binds {
            assert_eq!(b.statement, statement);
            assert_eq!(b.params.len(), 2);
            // pgbench sends the same value as $1 and $2, in text.
            let v: Vec<_> = b.params.iter().collect();
            assert_eq!(v[0], v[1]);
            assert!(v[0].unwrap().iter().all(u8::is_ascii_digit));
        }
        let executes = fe
            .iter()
            .filter(|m| matches!(m, FrontendMessage::Execute(e) if e.max_rows == 0))
            .count();
        assert_eq!(executes, 3);
        // The aid a Bind sent comes back in the DataRow.
        let rows: Vec<_> = be
            .iter()
            .filter_map(|m| match m {
                BackendMessage::DataRow(d) => Some(d.columns.get(0).unwrap()),
                _ => None,
            })
            .collect();
        let sent: Vec<_> = binds.iter().map(|b| b.params.get(0).unwrap()).collect();
        assert_eq!(rows, sent);
        assert_eq!(
            be.iter()
                .filter(|m| matches!(m, BackendMessage::BindComplete))
                .count(),
            3
        );
    }
}

#[test]
fn command_complete_rows() {
    let cases = [
        ("INSERT 0 5", Some(5)),
        ("INSERT 16385 1", Some(1)),
        ("SELECT 3", Some(3)),
        ("SELECT 0", Some(0)),
        ("UPDATE 2", Some(2)),
        ("DELETE 7", Some(7)),
        ("MERGE 4", Some(4)),
        ("MOVE 9", Some(9)),
        ("FETCH 100", Some(100)),
        ("COPY 10", Some(10)),
        ("SELECT 18446744073709551615", Some(u64::MAX)),
        ("SELECT 18446744073709551616", None),
        ("CREATE TABLE", None),
        ("BEGIN", None),
        ("SELECT", None),
        ("INSERT 5", None),
        ("SELECT 3 4", None),
        ("SELECT x", None),
        ("SELECT -1", None),
        ("SELECT +1", None),
        ("UPDATE  2", None),
        ("UPDATE 2 ", None),
        ("INSERT 0 5 6", None),
        ("INSERT x 5", None),
        ("INSERT 0  5", None),
        ("INSERT  0 5", None),
        ("", None),
    ];
    for (tag, rows) in cases {
        let c = CommandComplete { tag };
        assert_eq!(c.rows(), rows, "{tag:?}");
        // The command is the first word exactly when there is a count.
        let command = match rows {
            Some(_) => tag.split(' ').next().unwrap_or(tag),
            None => tag,
        };
        assert_eq!(c.parts(), (command, rows), "{tag:?}");
    }
    assert_eq!(CommandComplete { tag: "INSERT 0 5" }.command(), "INSERT");
    assert_eq!(
        CommandComplete { tag: "ALTER TABLE" }.command(),
        "ALTER TABLE"
    );
}

#[test]
fn proxy_writes_an_error_response() {
    let mut out = BytesMut::new();
    Diagnostic::write_error(&mut out, Severity::Fatal, "08P01", "invalid message length").unwrap();
    let frame = Framer::backend().next_ref(&out).unwrap().unwrap();
    assert_eq!(frame.len(), out.len());
    let BackendMessage::ErrorResponse(e) = frame.backend().unwrap() else {
        panic!()
    };
    assert_eq!(
        e.iter().collect::<Vec<_>>(),
        [
            (FieldCode::SEVERITY, "FATAL"),
            (FieldCode::SEVERITY_NONLOCALIZED, "FATAL"),
            (FieldCode::SQLSTATE, "08P01"),
            (FieldCode::MESSAGE, "invalid message length"),
        ]
    );
    // Exactly the bytes PostgreSQL would send.
    let mut expected = b"E\0\0\0\x38SFATAL\0VFATAL\0C08P01\0Minvalid message length\0\0".to_vec();
    expected[4] = (expected.len() - 1) as u8;
    assert_eq!(&out[..], &expected[..]);
}

#[test]
fn bad_values_for_the_encoders_leave_the_buffer_alone() {
    let mut out = BytesMut::from(&b"keep"[..]);
    for bad in ["08P0", "08p01", "08P01X", "08P0\u{e9}"] {
        assert!(matches!(
            Diagnostic::write_error(&mut out, Severity::Error, bad, "m"),
            Err(Error::Unencodable { .. })
        ));
    }
    assert!(matches!(
        Diagnostic::write_error(&mut out, Severity::Error, "XX000", "nul\0inside"),
        Err(Error::Unencodable { .. })
    ));
    assert!(matches!(
        Diagnostic::write(&mut out, MessageTag::QUERY, &[]),
        Err(Error::Misuse { .. })
    ));
    assert!(matches!(
        Diagnostic::write(
            &mut out,
            MessageTag::NOTICE_RESPONSE,
            &[(FieldCode(0), "x")]
        ),
        Err(Error::Unencodable { .. })
    ));
    assert!(matches!(
        Authentication::write_sasl(&mut out, ["SCRAM-SHA-256", ""]),
        Err(Error::Unencodable { .. })
    ));
    assert!(matches!(
        Startup::write(&mut out, ProtocolVersion::V3_0, [("user", "a"), ("", "b")]),
        Err(Error::Unencodable { .. })
    ));
    let many = vec![None; 70_000];
    assert!(matches!(
        DataRow::write(&mut out, many.into_iter()),
        Err(Error::Unencodable { .. })
    ));
    assert_eq!(&out[..], b"keep");
    let key = vigil_pg::Opaque::new(b"abc");
    let cancel = FrontendMessage::CancelRequest(vigil_pg::CancelRequest {
        process_id: 1,
        secret_key: key,
    });
    assert!(cancel.encode(&mut out).is_err());
    assert_eq!(&out[..], b"keep");
}

#[test]
fn proxy_filters_sasl_mechanisms() {
    let BackendMessage::Authentication(Authentication::Sasl(offered)) = be("auth-sasl") else {
        panic!()
    };
    let mut out = BytesMut::new();
    Authentication::write_sasl(&mut out, offered.without_channel_binding()).unwrap();
    assert_eq!(&out[..], b"R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0");
    let BackendMessage::Authentication(Authentication::Sasl(m)) = Framer::backend()
        .next_ref(&out)
        .unwrap()
        .unwrap()
        .backend()
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(m.iter().collect::<Vec<_>>(), ["SCRAM-SHA-256"]);
}

#[test]
fn ssl_response_byte() {
    let mut out = BytesMut::new();
    SslResponse::Accept.encode(&mut out);
    SslResponse::Reject.encode(&mut out);
    assert_eq!(&out[..], b"SN");
    assert_eq!(SslResponse::from_byte(b'S'), Ok(SslResponse::Accept));
    assert_eq!(SslResponse::from_byte(b'N'), Ok(SslResponse::Reject));
    assert_eq!(
        SslResponse::from_byte(b'E'),
        Err(Error::BadValue {
            field: "SSLRequest response",
            value: i64::from(b'E'),
        })
    );
    assert!(vigil_pg::is_direct_tls(&[0x16, 0x03, 0x01]));
    assert!(!vigil_pg::is_direct_tls(fixtures::frontend("ssl-request")));
}

#[test]
fn ready_for_query_encodes() {
    let mut out = BytesMut::new();
    for status in [
        TransactionStatus::Idle,
        TransactionStatus::InTransaction,
        TransactionStatus::Failed,
    ] {
        BackendMessage::ReadyForQuery(status)
            .encode(&mut out)
            .unwrap();
    }
    assert_eq!(&out[..], b"Z\0\0\0\x05IZ\0\0\0\x05TZ\0\0\0\x05E");
    assert_eq!(&out[..6], fixtures::backend("ready-for-query-idle"));
}

#[test]
fn builders_match_the_fixtures() {
    let mut out = BytesMut::new();
    Startup::write(
        &mut out,
        ProtocolVersion::V3_0,
        [
            ("user", "alice"),
            ("database", "shop"),
            ("application_name", "orders-api"),
            ("options", "-c search_path=app"),
            ("client_encoding", "UTF8"),
        ],
    )
    .unwrap();
    assert_eq!(&out[..], fixtures::frontend("startup-v3.0"));

    out.clear();
    let seven = 7i32.to_be_bytes();
    Bind::write(
        &mut out,
        "",
        "stmt_1",
        &[0, 1, 0],
        [Some(&b"42"[..]), Some(&seven[..]), None].into_iter(),
        &[1],
    )
    .unwrap();
    assert_eq!(&out[..], fixtures::frontend("bind"));

    out.clear();
    DataRow::write(
        &mut out,
        [Some(&b"1"[..]), None, Some(&b""[..])].into_iter(),
    )
    .unwrap();
    assert_eq!(&out[..], fixtures::backend("data-row"));

    out.clear();
    let BackendMessage::RowDescription(r) = be("row-description") else {
        panic!()
    };
    let fields: Vec<_> = r.fields().collect();
    RowDescription::write(&mut out, &fields).unwrap();
    assert_eq!(&out[..], fixtures::backend("row-description"));

    out.clear();
    let BackendMessage::ErrorResponse(e) = be("error-response") else {
        panic!()
    };
    let fields: Vec<_> = e.iter().collect();
    Diagnostic::write(&mut out, MessageTag::ERROR_RESPONSE, &fields).unwrap();
    assert_eq!(&out[..], fixtures::backend("error-response"));
}

#[test]
fn debug_never_shows_secrets() {
    let secrets: [(&str, &[u8]); 4] = [
        ("password", b"hunter2"),
        ("sasl-response", b"dHzbZapWIk4"),
        ("bind", b"42"),
        ("cancel-request-v3.0", &[0xde, 0xad]),
    ];
    for (name, secret) in secrets {
        let shown = format!("{:?} {:#?}", fe(name), frame_fe(name));
        let secret = String::from_utf8_lossy(secret);
        assert!(!shown.contains(&*secret), "{name}: {shown}");
        assert!(!shown.contains("222, 173"), "{name}: {shown}");
    }
    let (_, be) = session("simple");
    let shown = format!("{be:?}");
    assert!(!shown.contains("canary-7f3a9c"), "DataRow contents printed");
    assert!(shown.contains("<13 bytes>"));
}
