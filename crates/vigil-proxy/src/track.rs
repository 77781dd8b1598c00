//! Statement tracking: follows one session's messages in both directions,
//! attributes every result to the statement that produced it, and reports
//! each statement as a redacted event.
//!
//! The client's messages queue what the server will answer (a simple query,
//! Parse, Bind, Describe, Execute, Close, Sync); the server's messages
//! consume the queue in order. After an error in an extended-query batch the
//! server skips to the next Sync, and so does the queue.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use vigil_detect::anomaly::StatementSeen;
use vigil_detect::firewall::{self, TableRef, Verdict, Who};
use vigil_detect::sqli::{self, Finding};
use vigil_event::{Event, Field, Outcome, Session, Value, catalog};
use vigil_pg::{BackendMessage, Diagnostic, FrontendMessage, Severity, Target};
use vigil_sql::{Redacted, Redactor, StatementClass, StatementInfo};

use crate::config::Coverage;
use crate::detect::Detection;
use crate::report::Reporter;

/// What the session does with a client message after the tracker saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relay {
    /// Pass it on.
    Forward,
    /// Drop it: the rest of a denied extended-query batch.
    Drop,
    /// Send a Sync instead: a denied simple query, answered by vigil's
    /// error and the server's ReadyForQuery.
    Sync,
}

/// A statement as it is logged: redacted text, fingerprint, class.
#[derive(Clone, Debug)]
struct Stmt {
    text: Box<str>,
    fingerprint: u64,
    class: StatementClass,
    /// A lexer error masked part of it.
    masked: bool,
    /// The prepared statement's name, for named statements.
    name: Option<Box<str>>,
}

impl Stmt {
    fn unknown(name: &str) -> Stmt {
        Stmt {
            text: vigil_sql::MASK.into(),
            fingerprint: 0,
            class: StatementClass::Misc,
            masked: true,
            name: (!name.is_empty()).then(|| name.into()),
        }
    }

    fn redacted(info: &StatementInfo) -> Stmt {
        Stmt {
            text: info.text.as_str().into(),
            fingerprint: info.fingerprint,
            class: info.class,
            masked: info.masked,
            name: None,
        }
    }
}

/// A simple query's statements not yet answered. Most queries hold one:
/// it has a slot of its own, so that queueing it does not allocate.
#[derive(Debug, Default)]
struct Queue {
    first: Option<Stmt>,
    rest: VecDeque<Stmt>,
}

impl Queue {
    fn push(&mut self, stmt: Stmt) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(stmt);
        } else {
            self.rest.push_back(stmt);
        }
    }

    fn pop(&mut self) -> Option<Stmt> {
        self.first.take().or_else(|| self.rest.pop_front())
    }

    fn clear(&mut self) {
        self.first = None;
        self.rest.clear();
    }
}

/// Prepared statements or portals by name. Most clients use the unnamed
/// ones for every statement (and drivers that prepare name only the
/// statement), so the unnamed one has a slot of its own: binding or
/// executing it neither hashes nor allocates.
#[derive(Debug, Default)]
struct Names {
    unnamed: Option<Arc<Stmt>>,
    named: HashMap<Box<str>, Arc<Stmt>>,
}

impl Names {
    fn get(&self, name: &str) -> Option<&Arc<Stmt>> {
        if name.is_empty() {
            self.unnamed.as_ref()
        } else {
            self.named.get(name)
        }
    }

    fn set(&mut self, name: &str, stmt: Arc<Stmt>) {
        if name.is_empty() {
            self.unnamed = Some(stmt);
        } else if let Some(slot) = self.named.get_mut(name) {
            *slot = stmt;
        } else {
            self.named.insert(name.into(), stmt);
        }
    }

    fn remove(&mut self, name: &str) {
        if name.is_empty() {
            self.unnamed = None;
        } else {
            self.named.remove(name);
        }
    }
}

/// The Parse query string redacted last, kept so that the same text is not
/// redacted and inspected again: drivers send the same Parse for every
/// execution of a statement. (Simple queries seldom repeat the one before:
/// they are redacted every time, and forget what was kept.) What redaction and the injection detectors
/// make of a text depends only on the text and the session's
/// `standard_conforming_strings`, and the tracker forgets it when that
/// changes; the firewall still sees every statement.
#[derive(Debug, Default)]
struct Last {
    /// The text; empty when none is kept.
    sql: String,
    /// Its statements, as logged.
    statements: Vec<Arc<Stmt>>,
    /// The context the tracker's `findings` were found in, when they are
    /// this text's.
    inspected: Option<sqli::Context>,
}

/// Query strings longer than this are redacted every time rather than kept.
const LAST_MAX: usize = 4096;

/// How a statement reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Simple,
    Extended,
    Copy,
    Function,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Simple => "simple",
            Protocol::Extended => "extended",
            Protocol::Copy => "copy",
            Protocol::Function => "function",
        }
    }
}

/// What the server will answer, in order.
#[derive(Debug)]
enum Pending {
    /// A simple query: its statements not yet answered.
    Query {
        statements: Queue,
        started: Instant,
        copy: bool,
    },
    Parse(Arc<Stmt>),
    Bind(Arc<Stmt>),
    Describe,
    Execute {
        stmt: Arc<Stmt>,
        started: Instant,
        copy: bool,
    },
    Close,
    Sync,
    /// A statement vigil refused: its ErrorResponse goes to the client in
    /// this place of the answers.
    Denied(BytesMut),
    FunctionCall {
        oid: u32,
        started: Instant,
    },
}

/// The statement state of one session.
#[derive(Debug)]
pub(crate) struct Tracker {
    session: Arc<Session>,
    reporter: Reporter,
    coverage: Coverage,
    redactor: Redactor,
    scratch: Redacted,
    last: Last,
    statements: Names,
    portals: Names,
    pending: VecDeque<Pending>,
    /// Statements that completed or failed.
    pub(crate) count: u64,
    /// Rows returned since the current statement started.
    rows: u64,
    detection: Detection,
    application_role: bool,
    standard_conforming_strings: bool,
    findings: Vec<Finding>,
    tables: Vec<TableRef>,
    /// Dropping client messages up to the next Sync (a denied Parse).
    skipping: bool,
}

impl Tracker {
    pub(crate) fn new(
        session: Arc<Session>,
        reporter: Reporter,
        coverage: Coverage,
        detection: Detection,
    ) -> Self {
        let application_role =
            detection.is_application_role(session.db_user.as_deref().unwrap_or(""));
        Tracker {
            session,
            reporter,
            coverage,
            redactor: Redactor::new(),
            scratch: Redacted::default(),
            last: Last::default(),
            statements: Names::default(),
            portals: Names::default(),
            pending: VecDeque::new(),
            count: 0,
            rows: 0,
            detection,
            application_role,
            standard_conforming_strings: true,
            findings: Vec::new(),
            tables: Vec::new(),
            skipping: false,
        }
    }

    /// Runs the detectors and the firewall on a query string just
    /// redacted into `self.scratch`; returns whether it is denied.
    fn inspect(&mut self, sql: &str, simple_query: bool, protocol: Protocol) -> bool {
        if self.detection.sql_injection {
            let cx = sqli::Context {
                simple_query,
                application_role: self.application_role,
                standard_conforming_strings: self.standard_conforming_strings,
            };
            // `sql` is the text just redacted: when it is the one kept and
            // was inspected in this context, the findings are still its.
            // Either way the redactor's tokens are its tokens, lexed once
            // for both.
            if self.last.inspected != Some(cx) {
                self.findings.clear();
                let (tokens, error) = (self.redactor.tokens(), self.scratch.error);
                sqli::inspect_tokens(sql, tokens, error, &cx, &mut self.findings);
                if !self.last.sql.is_empty() {
                    self.last.inspected = Some(cx);
                }
            }
            let mut reported: Vec<sqli::Rule> = Vec::new();
            for i in 0..self.findings.len() {
                let f = self.findings[i];
                if reported.contains(&f.rule) {
                    continue;
                }
                reported.push(f.rule);
                let what = match f.kind {
                    sqli::Kind::Injection => "possible SQL injection",
                    sqli::Kind::Capability => "dangerous capability",
                    sqli::Kind::CatalogRead => "catalog read by an application role",
                };
                self.reporter.emit(
                    Event::new(
                        f.kind.event(),
                        format!("{what} ({}): {}", f.rule.as_str(), self.scratch.text),
                    )
                    .session(Arc::clone(&self.session))
                    .fingerprint(self.scratch.fingerprint)
                    .field("rule", f.rule.as_str())
                    .field("protocol", protocol.as_str()),
                );
            }
        }
        let Some(fw) = self.detection.firewall.clone() else {
            return false;
        };
        let who = Who {
            user: self.session.db_user.as_deref().unwrap_or(""),
            application: self.session.application.as_deref().unwrap_or(""),
            database: self.session.database.as_deref().unwrap_or(""),
        };
        let mut denied = false;
        for info in &self.scratch.statements {
            self.tables.clear();
            if fw.needs_tables() {
                firewall::tables_into(&info.text, &mut self.tables);
            }
            let stmt = firewall::Statement::new(info, &self.tables);
            let decision = fw.check(&who, &stmt);
            if decision.learn && matches!(fw.learn(&who, &stmt), Ok(true)) {
                self.reporter
                    .emit(firewall::learned_event(&who, &stmt, Some(&self.session)));
            }
            if fw.captures() {
                // A failing capture file (disk full) never stops the
                // firewall; its decisions are still events.
                let _ = fw.capture(&who, &stmt, &decision);
            }
            match decision.verdict {
                Verdict::Allow if fw.log_allowed() => self.reporter.emit(firewall::decision_event(
                    &decision,
                    &who,
                    &stmt,
                    Some(&self.session),
                )),
                Verdict::Allow => {}
                Verdict::Report => self.reporter.emit(firewall::decision_event(
                    &decision,
                    &who,
                    &stmt,
                    Some(&self.session),
                )),
                Verdict::Deny => {
                    denied = true;
                    self.reporter.emit(firewall::decision_event(
                        &decision,
                        &who,
                        &stmt,
                        Some(&self.session),
                    ));
                }
            }
        }
        denied
    }

    /// The ErrorResponse a denied statement gets.
    fn denial() -> BytesMut {
        let mut out = BytesMut::new();
        let _ = Diagnostic::write_error(
            &mut out,
            Severity::Error,
            firewall::DENIED_SQLSTATE,
            firewall::DENIED_MESSAGE,
        );
        out
    }

    /// Dropping the client's messages up to its next Sync.
    pub(crate) fn skipping(&self) -> bool {
        self.skipping
    }

    /// Whether a statement can be denied (a firewall in enforce mode): if
    /// not, a simple query is forwarded before it is tracked.
    pub(crate) fn can_deny(&self) -> bool {
        self.detection
            .firewall
            .as_ref()
            .is_some_and(|fw| fw.mode() == firewall::Mode::Enforce)
    }

    /// The ErrorResponse to send the client now, in its place among the
    /// server's answers.
    pub(crate) fn injection(&mut self) -> Option<BytesMut> {
        if !matches!(self.pending.front(), Some(Pending::Denied(_))) {
            return None;
        }
        match self.pending.pop_front() {
            Some(Pending::Denied(bytes)) => Some(bytes),
            _ => None,
        }
    }

    /// Redacts `sql` into `self.scratch` (unless it is the text redacted
    /// last, which is there already); returns its statements.
    fn redact(&mut self, sql: &str) -> &[Arc<Stmt>] {
        if sql.is_empty() || self.last.sql != sql {
            self.redactor.redact_into(sql, &mut self.scratch);
            let last = &mut self.last;
            last.inspected = None;
            last.sql.clear();
            if sql.len() <= LAST_MAX {
                last.sql.push_str(sql);
            }
            last.statements.clear();
            last.statements.extend(
                self.scratch
                    .statements
                    .iter()
                    .map(|s| Arc::new(Stmt::redacted(s))),
            );
        }
        &self.last.statements
    }

    /// A message from the client, before it is relayed.
    pub(crate) fn frontend(&mut self, msg: &FrontendMessage<'_>) -> Relay {
        if self.skipping {
            if matches!(msg, FrontendMessage::Sync) {
                self.skipping = false;
                self.pending.push_back(Pending::Sync);
                return Relay::Forward;
            }
            return Relay::Drop;
        }
        match msg {
            FrontendMessage::Query(q) => {
                self.last = Last::default();
                self.redactor.redact_into(q.sql, &mut self.scratch);
                self.rows = 0;
                if self.inspect(q.sql, true, Protocol::Simple) {
                    self.pending.push_back(Pending::Denied(Self::denial()));
                    self.pending.push_back(Pending::Sync);
                    return Relay::Sync;
                }
                let mut statements = Queue::default();
                for info in &self.scratch.statements {
                    statements.push(Stmt::redacted(info));
                }
                self.pending.push_back(Pending::Query {
                    statements,
                    started: Instant::now(),
                    copy: false,
                });
            }
            FrontendMessage::Parse(p) => {
                // Parse takes one statement; anything else is an error the
                // server reports, logged under the masked text.
                let stmt = match self.redact(p.sql) {
                    [one] => Arc::clone(one),
                    _ => Arc::new(Stmt::unknown("")),
                };
                if self.inspect(p.sql, false, Protocol::Extended) {
                    self.pending.push_back(Pending::Denied(Self::denial()));
                    self.skipping = true;
                    return Relay::Drop;
                }
                let stmt = if p.name.is_empty() {
                    stmt
                } else {
                    Arc::new(Stmt {
                        text: stmt.text.clone(),
                        fingerprint: stmt.fingerprint,
                        class: stmt.class,
                        masked: stmt.masked,
                        name: Some(p.name.into()),
                    })
                };
                self.statements.set(p.name, Arc::clone(&stmt));
                self.pending.push_back(Pending::Parse(stmt));
            }
            FrontendMessage::Bind(b) => {
                let stmt = self
                    .statements
                    .get(b.statement)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Stmt::unknown(b.statement)));
                self.portals.set(b.portal, Arc::clone(&stmt));
                self.pending.push_back(Pending::Bind(stmt));
            }
            FrontendMessage::Describe(_) => self.pending.push_back(Pending::Describe),
            FrontendMessage::Execute(e) => {
                let stmt = self
                    .portals
                    .get(e.portal)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Stmt::unknown("")));
                self.pending.push_back(Pending::Execute {
                    stmt,
                    started: Instant::now(),
                    copy: false,
                });
            }
            FrontendMessage::Close(c) => {
                match c.target {
                    Target::Statement => self.statements.remove(c.name),
                    Target::Portal => self.portals.remove(c.name),
                }
                self.pending.push_back(Pending::Close);
            }
            FrontendMessage::Sync => self.pending.push_back(Pending::Sync),
            FrontendMessage::FunctionCall(f) => self.pending.push_back(Pending::FunctionCall {
                oid: f.function_oid,
                started: Instant::now(),
            }),
            _ => {}
        }
        Relay::Forward
    }

    /// A DataRow passed to the client.
    pub(crate) fn row(&mut self) {
        self.rows += 1;
    }

    /// A message from the server, before it is relayed.
    pub(crate) fn backend(&mut self, msg: &BackendMessage<'_>) {
        match msg {
            BackendMessage::ParseComplete => self.pop_if(|p| matches!(p, Pending::Parse(_))),
            BackendMessage::BindComplete => self.pop_if(|p| matches!(p, Pending::Bind(_))),
            BackendMessage::CloseComplete => self.pop_if(|p| matches!(p, Pending::Close)),
            BackendMessage::RowDescription(_) | BackendMessage::NoData => {
                self.pop_if(|p| matches!(p, Pending::Describe));
            }
            BackendMessage::CopyInResponse(_)
            | BackendMessage::CopyOutResponse(_)
            | BackendMessage::CopyBothResponse(_) => {
                if let Some(Pending::Query { copy, .. } | Pending::Execute { copy, .. }) =
                    self.pending.front_mut()
                {
                    *copy = true;
                }
            }
            BackendMessage::CommandComplete(c) => {
                let (command, rows) = c.parts();
                self.completed(command, rows, false);
            }
            BackendMessage::EmptyQueryResponse => {
                self.pop_if(|p| matches!(p, Pending::Execute { .. }));
            }
            BackendMessage::PortalSuspended => {
                let rows = Some(self.rows);
                self.completed("SELECT", rows, true);
            }
            BackendMessage::FunctionCallResponse(_) => {
                if let Some(Pending::FunctionCall { oid, started }) = self.pending.front() {
                    let (oid, started) = (*oid, *started);
                    self.pending.pop_front();
                    self.pending.push_front(Pending::Sync);
                    let stmt = Stmt {
                        text: format!("fast-path call of function {oid}").into(),
                        fingerprint: u64::from(oid),
                        class: StatementClass::Function,
                        masked: false,
                        name: None,
                    };
                    let now = Instant::now();
                    let result = Ok(("CALL", None));
                    self.report(stmt, Protocol::Function, (started, now), result);
                }
            }
            BackendMessage::ErrorResponse(d) => self.failed(d),
            BackendMessage::ReadyForQuery(_) => {
                while let Some(p) = self.pending.pop_front() {
                    if matches!(
                        p,
                        Pending::Sync | Pending::Query { .. } | Pending::FunctionCall { .. }
                    ) {
                        break;
                    }
                }
            }
            BackendMessage::ParameterStatus(p) if p.name == "standard_conforming_strings" => {
                let on = p.value.eq_ignore_ascii_case("on");
                self.standard_conforming_strings = on;
                self.redactor.set_standard_conforming_strings(on);
                // What was kept was redacted and inspected under the old value.
                self.last = Last::default();
            }
            _ => {}
        }
    }

    fn pop_if(&mut self, pred: impl Fn(&Pending) -> bool) {
        if self.pending.front().is_some_and(pred) {
            self.pending.pop_front();
        }
    }

    /// A statement completed (CommandComplete or PortalSuspended).
    fn completed(&mut self, command: &str, rows: Option<u64>, suspended: bool) {
        let now = Instant::now();
        match self.pending.front_mut() {
            Some(Pending::Query {
                statements,
                started,
                copy,
            }) => {
                let stmt = statements.pop().unwrap_or_else(|| Stmt::unknown(""));
                let protocol = if *copy {
                    Protocol::Copy
                } else {
                    Protocol::Simple
                };
                let began = *started;
                *started = now;
                *copy = false;
                self.report(stmt, protocol, (began, now), Ok((command, rows)));
            }
            Some(Pending::Execute { .. }) => {
                if let Some(Pending::Execute {
                    stmt,
                    started,
                    copy,
                }) = self.pending.pop_front()
                {
                    let protocol = if copy {
                        Protocol::Copy
                    } else {
                        Protocol::Extended
                    };
                    let _ = suspended;
                    let stmt = Arc::unwrap_or_clone(stmt);
                    self.report(stmt, protocol, (started, now), Ok((command, rows)));
                }
            }
            _ => {}
        }
        self.rows = 0;
    }

    /// An ErrorResponse.
    fn failed(&mut self, d: &Diagnostic<'_>) {
        let now = Instant::now();
        let sqlstate = d.sqlstate().unwrap_or("");
        let message = d.message().unwrap_or("");
        let detail = d.detail();
        let err = Failure {
            sqlstate,
            message,
            detail,
        };
        match self.pending.front_mut() {
            Some(Pending::Query {
                statements,
                started,
                copy,
            }) => {
                let stmt = statements.pop().unwrap_or_else(|| Stmt::unknown(""));
                statements.clear();
                let protocol = if *copy {
                    Protocol::Copy
                } else {
                    Protocol::Simple
                };
                let began = *started;
                self.report(stmt, protocol, (began, now), Err(err));
            }
            Some(_) => {
                let front = self.pending.pop_front();
                let (stmt, protocol, started) = match front {
                    Some(Pending::Parse(s) | Pending::Bind(s)) => {
                        (Some(s), Protocol::Extended, now)
                    }
                    Some(Pending::Execute {
                        stmt,
                        started,
                        copy,
                    }) => (
                        Some(stmt),
                        if copy {
                            Protocol::Copy
                        } else {
                            Protocol::Extended
                        },
                        started,
                    ),
                    Some(Pending::FunctionCall { started, .. }) => {
                        self.pending.push_front(Pending::Sync);
                        (None, Protocol::Function, started)
                    }
                    _ => (None, Protocol::Extended, now),
                };
                // The server skips to the next Sync.
                while self
                    .pending
                    .front()
                    .is_some_and(|p| !matches!(p, Pending::Sync))
                {
                    self.pending.pop_front();
                }
                let stmt = stmt.map_or_else(|| Stmt::unknown(""), Arc::unwrap_or_clone);
                self.report(stmt, protocol, (started, now), Err(err));
            }
            None => {}
        }
        self.rows = 0;
    }

    /// Counts and logs a statement that ran from `started` to `ended`
    /// (both read once by the caller, so that a statement costs two clock
    /// reads). Its text and name move into the event.
    fn report(
        &mut self,
        stmt: Stmt,
        protocol: Protocol,
        (started, ended): (Instant, Instant),
        result: Result<(&str, Option<u64>), Failure<'_>>,
    ) {
        self.count += 1;
        let failed = result.is_err();
        self.reporter.metrics().statement(stmt.class, failed);
        if let Some(anomalies) = self.detection.anomalies.clone() {
            let (rows, sqlstate) = match &result {
                Ok((_, rows)) => (*rows, None),
                Err(f) => (None, Some(f.sqlstate)),
            };
            let seen = StatementSeen {
                session: Some(&self.session),
                user: self.session.db_user.as_deref().unwrap_or(""),
                application: self.session.application.as_deref().unwrap_or(""),
                fingerprint: stmt.fingerprint,
                class: stmt.class,
                text: &stmt.text,
                rows,
                sqlstate,
                copy: None,
                tables: &[],
            };
            for event in anomalies.on_statement(&seen, ended) {
                self.reporter.emit(event);
            }
        }
        if !failed && !self.coverage.covers(stmt.class) {
            return;
        }
        let elapsed = ended.saturating_duration_since(started);
        let duration = i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX);
        let kind = match (&result, stmt.masked) {
            (Err(_), _) => catalog::STATEMENT_FAILED,
            (Ok(_), true) => catalog::STATEMENT_UNPARSED,
            (Ok(_), false) => catalog::STATEMENT_EXECUTED,
        };
        // Filled in place: the builder's calls each move the whole event.
        let mut ev = Event::new(kind, String::from(stmt.text));
        ev.session = Some(Arc::clone(&self.session));
        ev.fingerprint = Some(stmt.fingerprint);
        ev.fields = Vec::with_capacity(8);
        let fields = &mut ev.fields;
        let mut field = |key: &'static str, value: Value| {
            fields.push(Field {
                key: Cow::Borrowed(key),
                value,
            });
        };
        field("class", stmt.class.as_str().into());
        field("protocol", protocol.as_str().into());
        field("duration_us", duration.into());
        if let Some(name) = stmt.name {
            field("statement", String::from(name).into());
        }
        match result {
            Ok((command, rows)) => {
                field("command", command_name(command).into());
                if let Some(rows) = rows {
                    field("rows", i64::try_from(rows).unwrap_or(i64::MAX).into());
                }
            }
            Err(f) => {
                field("sqlstate", f.sqlstate.to_owned().into());
                let error = vigil_sql::redact_message(f.message).into_owned();
                field("error", error.into());
                if let Some(detail) = f.detail {
                    let detail = vigil_sql::redact_message(detail).into_owned();
                    field("detail", detail.into());
                }
            }
        }
        if stmt.masked {
            field("masked", true.into());
        }
        if failed {
            ev.outcome = Outcome::Failure;
        }
        self.reporter.emit(ev);
    }
}

/// What an ErrorResponse said, unredacted until it is reported.
#[derive(Debug)]
struct Failure<'a> {
    sqlstate: &'a str,
    message: &'a str,
    detail: Option<&'a str>,
}

/// The command tag's words as an event value, without allocating for the
/// common ones.
fn command_name(command: &str) -> Cow<'static, str> {
    const COMMON: [&str; 14] = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "FETCH", "MOVE", "BEGIN",
        "COMMIT", "ROLLBACK", "SET", "CALL", "DO",
    ];
    match COMMON.iter().find(|c| **c == command) {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(command.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use vigil_event::{Emitter, Overflow};
    use vigil_pg::MessageTag;

    use super::*;
    use crate::metrics::Metrics;

    fn parse(name: &str, sql: &str) -> Vec<u8> {
        let mut body = Vec::new();
        for s in [name, sql] {
            body.extend_from_slice(s.as_bytes());
            body.push(0);
        }
        body.extend_from_slice(&0i16.to_be_bytes());
        body
    }

    /// The same Parse again and again (as drivers send it) is redacted
    /// once, but every time logged, inspected and reported.
    #[test]
    fn a_repeated_parse_is_reported_every_time() {
        let (emitter, rx) = Emitter::channel(64, Overflow::Block);
        let reporter = Reporter::new(emitter, Arc::new(Metrics::new()));
        let mut detection = Detection::new();
        detection.sql_injection = true;
        let session = Arc::new(Session::default());
        let mut t = Tracker::new(session, reporter, Coverage::all(), detection);
        let body = parse("", "SELECT * FROM t WHERE a = $1 OR 1=1");
        let other = parse("s1", "SELECT pg_sleep($1)");
        let messages = [&body, &body, &other, &body, &body];
        for body in messages {
            let msg = FrontendMessage::decode(MessageTag::PARSE, body).unwrap();
            assert_eq!(t.frontend(&msg), Relay::Forward);
            t.backend(&BackendMessage::ParseComplete);
        }
        let mut rules = Vec::new();
        while let Some(q) = rx.try_recv() {
            assert_eq!(q.event.kind, catalog::ANOMALY_SQL_INJECTION);
            rules.push(q.event.field_value("rule").unwrap().to_string());
        }
        let want = [
            "tautology",
            "tautology",
            "time_function",
            "tautology",
            "tautology",
        ];
        assert_eq!(rules, want);
        let kept = t.statements.get("").unwrap();
        let fresh = Redactor::new().redact("SELECT * FROM t WHERE a = $1 OR 1=1");
        assert_eq!(*kept.text, *fresh.statements[0].text);
        assert_eq!(kept.fingerprint, fresh.statements[0].fingerprint);
        assert_eq!(
            &*t.statements.get("s1").unwrap().text,
            "SELECT pg_sleep($1)"
        );
        // A new standard_conforming_strings forgets what was kept.
        let off = BackendMessage::decode(
            MessageTag::PARAMETER_STATUS,
            b"standard_conforming_strings\0off\0",
        )
        .unwrap();
        t.backend(&off);
        assert!(t.last.sql.is_empty() && t.last.inspected.is_none());
    }

    /// A text kept from a simple Query and parsed next is not lexed again:
    /// it is inspected again, in the Parse's context, from the tokens the
    /// redactor kept, and finds what a fresh inspection finds.
    #[test]
    fn a_kept_text_is_inspected_again_in_another_context() {
        let (emitter, rx) = Emitter::channel(64, Overflow::Block);
        let reporter = Reporter::new(emitter, Arc::new(Metrics::new()));
        let mut detection = Detection::new();
        detection.application_roles = vec!["*".to_owned()];
        let session = Arc::new(Session::default());
        let mut t = Tracker::new(session, reporter, Coverage::all(), detection);
        let sql = "SELECT a FROM t WHERE b = 1 OR 1=1; DROP TABLE t -- x";
        let mut query = sql.as_bytes().to_vec();
        query.push(0);
        let msg = FrontendMessage::decode(MessageTag::QUERY, &query).unwrap();
        assert_eq!(t.frontend(&msg), Relay::Forward);
        let body = parse("", sql);
        let msg = FrontendMessage::decode(MessageTag::PARSE, &body).unwrap();
        assert_eq!(t.frontend(&msg), Relay::Forward);
        let mut rules = Vec::new();
        while let Some(q) = rx.try_recv() {
            rules.push(q.event.field_value("rule").unwrap().to_string());
        }
        let mut want = Vec::new();
        for simple_query in [true, false] {
            let cx = sqli::Context {
                simple_query,
                application_role: true,
                standard_conforming_strings: true,
            };
            let mut found = Vec::new();
            sqli::inspect(sql, &cx, &mut found);
            want.extend(found.iter().map(|f| f.rule.as_str().to_owned()));
        }
        assert!(want.iter().any(|r| r == "stacked_queries"));
        assert_eq!(rules, want);
    }

    /// A simple query's statements are reported in order, each with its
    /// own text, command and rows; an error reports the statement that
    /// failed and forgets the rest.
    #[test]
    fn a_simple_query_reports_its_statements_in_order() {
        let (emitter, rx) = Emitter::channel(64, Overflow::Block);
        let reporter = Reporter::new(emitter, Arc::new(Metrics::new()));
        let session = Arc::new(Session::default());
        let mut t = Tracker::new(session, reporter, Coverage::all(), Detection::default());
        let query = |t: &mut Tracker, sql: &str| {
            let mut body = sql.as_bytes().to_vec();
            body.push(0);
            let msg = FrontendMessage::decode(MessageTag::QUERY, &body).unwrap();
            assert_eq!(t.frontend(&msg), Relay::Forward);
        };
        let complete = |t: &mut Tracker, tag: &[u8]| {
            let msg = BackendMessage::decode(MessageTag::COMMAND_COMPLETE, tag).unwrap();
            t.backend(&msg);
        };
        let ready = BackendMessage::decode(MessageTag::READY_FOR_QUERY, b"I").unwrap();
        query(&mut t, "SELECT 1; UPDATE t SET a = 'x'; DELETE FROM u");
        complete(&mut t, b"SELECT 1\0");
        complete(&mut t, b"UPDATE 2\0");
        complete(&mut t, b"DELETE 3\0");
        t.backend(&ready);
        query(&mut t, "SELECT 2; SELECT 3; SELECT 4");
        complete(&mut t, b"SELECT 1\0");
        let error = BackendMessage::decode(
            MessageTag::ERROR_RESPONSE,
            b"SERROR\0C42P01\0Mrelation does not exist\0\0",
        )
        .unwrap();
        t.backend(&error);
        t.backend(&ready);
        query(&mut t, "SELECT 5");
        complete(&mut t, b"SELECT 1\0");
        t.backend(&ready);
        let mut got = Vec::new();
        while let Some(q) = rx.try_recv() {
            let ev = q.event;
            let command = ev.field_value("command").map(ToString::to_string);
            let rows = ev.field_value("rows").map(ToString::to_string);
            got.push((ev.kind, ev.message.into_owned(), command, rows));
        }
        let ok = |text: &str, command: &str, rows: &str| {
            (
                catalog::STATEMENT_EXECUTED,
                text.to_owned(),
                Some(command.to_owned()),
                Some(rows.to_owned()),
            )
        };
        let want = [
            ok("SELECT $1", "SELECT", "1"),
            ok("UPDATE t SET a = $1", "UPDATE", "2"),
            ok("DELETE FROM u", "DELETE", "3"),
            ok("SELECT $1", "SELECT", "1"),
            (
                catalog::STATEMENT_FAILED,
                "SELECT $1".to_owned(),
                None,
                None,
            ),
            ok("SELECT $1", "SELECT", "1"),
        ];
        assert_eq!(got, want);
        assert_eq!(t.count, 6);
        assert!(t.pending.is_empty());
    }

    #[test]
    fn names_keep_the_unnamed_apart_from_the_named() {
        let mut names = Names::default();
        let a = Arc::new(Stmt::unknown(""));
        let b = Arc::new(Stmt::unknown("s1"));
        assert!(names.get("").is_none());
        names.set("", Arc::clone(&a));
        names.set("s1", Arc::clone(&b));
        assert!(Arc::ptr_eq(names.get("").unwrap(), &a));
        assert!(Arc::ptr_eq(names.get("s1").unwrap(), &b));
        // Redefining replaces; removing one leaves the other.
        names.set("s1", Arc::clone(&a));
        assert!(Arc::ptr_eq(names.get("s1").unwrap(), &a));
        names.remove("");
        assert!(names.get("").is_none());
        assert!(names.get("s1").is_some());
        names.remove("s1");
        assert!(names.get("s1").is_none());
        assert!(names.named.is_empty());
    }
}
