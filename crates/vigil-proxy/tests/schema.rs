//! The schema check against a real PostgreSQL: right types, aliases, wrong
//! types, missing columns and tables, and failures that keep the password
//! out of the events.

#![allow(clippy::unwrap_used, clippy::type_complexity)] // helpers outside #[test] fns, as in tests

use vigil_event::{Event, Value, catalog};
use vigil_proxy::schema::{MonitoredColumn, SchemaConnect, check};
use vigil_testkit::postgres::{Auth, PgServer};

const PASSWORD: &str = "schema-check-s3cret";

/// A server requiring SCRAM, with the user `vigil_check` and the tables
/// `public.accounts` and `billing.invoices`.
fn server() -> PgServer {
    let pg = PgServer::builder().auth(Auth::ScramSha256).start().unwrap();
    pg.create_user("vigil_check", PASSWORD).unwrap();
    pg.psql(
        "CREATE TABLE accounts (
             id integer PRIMARY KEY,
             email varchar(64),
             balance numeric(12,2),
             created timestamptz,
             active boolean,
             tags text[],
             old_name text
         );
         ALTER TABLE accounts DROP COLUMN old_name;
         CREATE SCHEMA billing;
         CREATE TABLE billing.invoices (id bigint, amount numeric(10,2));",
    )
    .unwrap();
    pg
}

fn connect(pg: &PgServer, password: Option<&str>) -> SchemaConnect {
    SchemaConnect {
        host: "127.0.0.1".into(),
        port: pg.port(),
        user: "vigil_check".into(),
        password: password.map(str::to_owned),
        database: "postgres".into(),
    }
}

/// What the tests compare: everything but the time.
fn essence(events: &[Event]) -> Vec<(u16, String, Vec<(String, Value)>)> {
    events
        .iter()
        .map(|e| {
            (
                e.kind.code(),
                e.message.to_string(),
                e.fields
                    .iter()
                    .map(|f| (f.key.to_string(), f.value.clone()))
                    .collect(),
            )
        })
        .collect()
}

fn col(table: &str, column: &str, expected: &str) -> MonitoredColumn {
    MonitoredColumn::new(table, column, expected)
}

#[tokio::test]
async fn reports_wrong_types_and_missing_columns() {
    let pg = server();
    let columns = [
        col("accounts", "id", "integer"),
        col("accounts", "id", "int4"),
        col("public.accounts", "email", "varchar(64)"),
        col("accounts", "balance", "numeric(12, 2)"),
        col("accounts", "created", "timestamptz"),
        col("accounts", "tags", "text[]"),
        col("billing.invoices", "amount", "numeric(12,2)"),
        col("accounts", "active", "int"),
        col("accounts", "nickname", "text"),
        col("accounts", "old_name", "text"),
        col("ghost", "id", "integer"),
        col("billing.accounts", "id", "integer"),
        col("billing.invoices", "id", "int8"),
    ];
    let events = check(&connect(&pg, Some(PASSWORD)), &columns).await;

    let expected = vec![
        Event::new(
            catalog::SCHEMA_WRONG_COLUMN_TYPE,
            "Column billing.invoices.amount has type numeric(10,2), but the configuration \
             expects numeric(12,2).",
        )
        .field("table", "billing.invoices")
        .field("column", "amount")
        .field("expected", "numeric(12,2)")
        .field("actual", "numeric(10,2)"),
        Event::new(
            catalog::SCHEMA_WRONG_COLUMN_TYPE,
            "Column accounts.active has type boolean, but the configuration expects int.",
        )
        .field("table", "accounts")
        .field("column", "active")
        .field("expected", "int")
        .field("actual", "boolean"),
        Event::new(
            catalog::SCHEMA_COLUMN_MISSING,
            "Column accounts.nickname does not exist; the configuration expects it with type \
             text.",
        )
        .field("table", "accounts")
        .field("column", "nickname")
        .field("expected", "text"),
        Event::new(
            catalog::SCHEMA_COLUMN_MISSING,
            "Column accounts.old_name does not exist; the configuration expects it with type \
             text.",
        )
        .field("table", "accounts")
        .field("column", "old_name")
        .field("expected", "text"),
        Event::new(
            catalog::SCHEMA_COLUMN_MISSING,
            "Table ghost does not exist, so its monitored column id (expected type integer) is \
             missing.",
        )
        .field("table", "ghost")
        .field("column", "id")
        .field("expected", "integer"),
        Event::new(
            catalog::SCHEMA_COLUMN_MISSING,
            "Table billing.accounts does not exist, so its monitored column id (expected type \
             integer) is missing.",
        )
        .field("table", "billing.accounts")
        .field("column", "id")
        .field("expected", "integer"),
        Event::new(
            catalog::SCHEMA_CHECKED,
            "Checked 13 monitored columns against the catalog: 2 with a wrong type, 4 missing.",
        )
        .field("columns", 13usize)
        .field("mismatches", 2usize)
        .field("missing", 4usize),
    ];
    assert_eq!(essence(&events), essence(&expected));
    for (got, want) in events.iter().zip(&expected) {
        assert_eq!(got.severity, want.severity);
        assert_eq!(got.outcome, want.outcome);
    }
    let log = pg.log();
    assert!(!log.contains(PASSWORD));
}

#[tokio::test]
async fn all_right_is_one_summary() {
    let pg = server();
    let columns = [
        col("accounts", "id", "INTEGER"),
        col("accounts", "email", "character varying(64)"),
        col("billing.invoices", "id", "bigint"),
    ];
    let events = check(&connect(&pg, Some(PASSWORD)), &columns).await;
    let expected = [Event::new(
        catalog::SCHEMA_CHECKED,
        "Checked 3 monitored columns against the catalog: 0 with a wrong type, 0 missing.",
    )
    .field("columns", 3usize)
    .field("mismatches", 0usize)
    .field("missing", 0usize)];
    assert_eq!(essence(&events), essence(&expected));

    // Nothing to check: no connection, just the summary.
    let nowhere = SchemaConnect {
        port: vigil_testkit::free_port(),
        ..connect(&pg, None)
    };
    let events = check(&nowhere, &[]).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, catalog::SCHEMA_CHECKED);
    assert_eq!(events[0].field_value("columns"), Some(&Value::Int(0)));
}

/// Asserts `events` is one `schema.check_failed` without the password and
/// returns its `error` field.
fn failure(events: &[Event], password: &str) -> String {
    assert_eq!(events.len(), 1, "{events:?}");
    let ev = &events[0];
    assert_eq!(ev.kind, catalog::SCHEMA_CHECK_FAILED);
    assert_eq!(ev.kind.code(), 1403);
    assert!(!ev.message.contains(password), "{}", ev.message);
    assert!(
        ev.message.contains("Check that the database is reachable"),
        "{}",
        ev.message
    );
    for f in &ev.fields {
        assert!(!f.value.to_string().contains(password), "{f:?}");
    }
    assert!(!format!("{ev:?}").contains(password));
    match ev.field_value("error") {
        Some(Value::Str(error)) => {
            assert!(ev.message.contains(error.as_ref()), "{}", ev.message);
            error.to_string()
        }
        other => panic!("no error field: {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_database_fails_without_the_password() {
    let connect = SchemaConnect {
        host: "127.0.0.1".into(),
        port: vigil_testkit::free_port(),
        user: "vigil_check".into(),
        password: Some(PASSWORD.into()),
        database: "app".into(),
    };
    let events = check(&connect, &[col("accounts", "id", "integer")]).await;
    let error = failure(&events, PASSWORD);
    assert!(error.contains("error connecting to server"), "{error}");
    assert!(
        events[0].message.starts_with(&format!(
            "The monitored columns could not be checked against database app on 127.0.0.1:{} \
             as user vigil_check: ",
            connect.port
        )),
        "{}",
        events[0].message
    );
}

#[tokio::test]
async fn wrong_password_fails_without_the_password() {
    let pg = server();
    let wrong = "not-the-schema-check-password";
    let events = check(
        &connect(&pg, Some(wrong)),
        &[col("accounts", "id", "integer")],
    )
    .await;
    let error = failure(&events, wrong);
    assert!(
        error.contains("password authentication failed for user \"vigil_check\""),
        "{error}"
    );

    let events = check(&connect(&pg, None), &[col("accounts", "id", "integer")]).await;
    let error = failure(&events, PASSWORD);
    assert!(error.contains("password missing"), "{error}");
}
