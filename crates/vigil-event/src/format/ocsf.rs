//! The `ocsf` format: one OCSF 1.3.0 event as JSON.
//!
//! The class and activity come from the catalog (`Def::ocsf`). Every record
//! has the base attributes (`class_uid`, `class_name`, `category_uid`,
//! `category_name`, `activity_id`, `activity_name`, `type_uid`, `type_name`,
//! `severity_id`, `severity`, `time`, `status_id`, `status`, `message`,
//! `metadata`); session facts go to the attributes the class defines and
//! everything else to `unmapped`. `docs/formats.md` has the full mapping.

use std::net::SocketAddr;

use super::json::{write_str, write_str_body, write_value};
use super::util::{push_hex16, push_i64, push_ip, push_u64, unmap_ip};
use crate::event::{Event, Field, Outcome, Session, Value};

/// Where a class puts session facts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// 1008 Event Log Activity: nowhere.
    Plain,
    /// 6002 Application Lifecycle: nowhere; `app` is vigil itself.
    Lifecycle,
    /// 2004 Detection Finding: `evidences[0]`.
    Finding,
    /// 3002 Authentication: endpoints, `user`, `actor.app_name`.
    Authentication,
    /// 3004 Entity Management: `entity`, `src_endpoint`, `actor`.
    Entity,
    /// 4001 Network Activity: endpoints, `app_name`, `tls`.
    Network,
    /// 6005 Datastore Activity: endpoints, `actor`, `database`, `query_info`.
    Datastore,
}

/// Class name, category name, activity names (index = activity id), shape.
fn class(uid: u32) -> (&'static str, &'static [&'static str], Shape) {
    match uid {
        1008 => (
            "Event Log Activity",
            &[
                "Unknown", "Clear", "Delete", "Export", "Archive", "Rotate", "Start", "Stop",
                "Restart", "Enable", "Disable",
            ],
            Shape::Plain,
        ),
        2004 => (
            "Detection Finding",
            &["Unknown", "Create", "Update", "Close"],
            Shape::Finding,
        ),
        3002 => (
            "Authentication",
            &[
                "Unknown",
                "Logon",
                "Logoff",
                "Authentication Ticket",
                "Service Ticket Request",
                "Service Ticket Renew",
                "Preauth",
            ],
            Shape::Authentication,
        ),
        3004 => (
            "Entity Management",
            &[
                "Unknown",
                "Create",
                "Read",
                "Update",
                "Delete",
                "Move",
                "Enroll",
                "Unenroll",
                "Enable",
                "Disable",
                "Activate",
                "Deactivate",
                "Suspend",
                "Resume",
            ],
            Shape::Entity,
        ),
        4001 => (
            "Network Activity",
            &[
                "Unknown", "Open", "Close", "Reset", "Fail", "Refuse", "Traffic", "Listen",
            ],
            Shape::Network,
        ),
        6002 => (
            "Application Lifecycle",
            &[
                "Unknown", "Install", "Remove", "Start", "Stop", "Restart", "Enable", "Disable",
                "Update",
            ],
            Shape::Lifecycle,
        ),
        6005 => (
            "Datastore Activity",
            &[
                "Unknown", "Read", "Update", "Connect", "Query", "Write", "Create", "Delete",
                "List", "Encrypt", "Decrypt",
            ],
            Shape::Datastore,
        ),
        _ => ("Base Event", &["Unknown"], Shape::Plain),
    }
}

fn category_name(uid: u32) -> &'static str {
    match uid {
        1 => "System Activity",
        2 => "Findings",
        3 => "Identity & Access Management",
        4 => "Network Activity",
        5 => "Discovery",
        6 => "Application Activity",
        7 => "Remediation",
        _ => "Uncategorized",
    }
}

/// `metadata.product`, and `app` of Application Lifecycle: vigil itself.
const PRODUCT: &str = concat!(
    "{\"name\":\"vigil\",\"vendor_name\":\"vigil\",\"version\":\"",
    env!("CARGO_PKG_VERSION"),
    "\"}"
);

const SEVERITY: [&str; 7] = [
    "Unknown",
    "Informational",
    "Low",
    "Medium",
    "High",
    "Critical",
    "Fatal",
];

pub(super) fn write(ev: &Event, out: &mut Vec<u8>) {
    out.reserve(512 + ev.message.len());
    let ocsf = ev.kind.def().ocsf;
    let (class_name, activities, shape) = class(ocsf.class_uid);
    let activity = usize::try_from(ocsf.activity_id)
        .ok()
        .and_then(|a| activities.get(a))
        .copied();
    let activity = activity.unwrap_or(if ocsf.activity_id == 99 {
        "Other"
    } else {
        "Unknown"
    });
    let category_uid = ocsf.class_uid / 1000;

    out.extend_from_slice(b"{\"class_uid\":");
    push_u64(out, u64::from(ocsf.class_uid));
    out.extend_from_slice(b",\"class_name\":\"");
    out.extend_from_slice(class_name.as_bytes());
    out.extend_from_slice(b"\",\"category_uid\":");
    push_u64(out, u64::from(category_uid));
    out.extend_from_slice(b",\"category_name\":\"");
    out.extend_from_slice(category_name(category_uid).as_bytes());
    out.extend_from_slice(b"\",\"activity_id\":");
    push_u64(out, u64::from(ocsf.activity_id));
    out.extend_from_slice(b",\"activity_name\":\"");
    out.extend_from_slice(activity.as_bytes());
    out.extend_from_slice(b"\",\"type_uid\":");
    push_u64(
        out,
        u64::from(ocsf.class_uid) * 100 + u64::from(ocsf.activity_id),
    );
    out.extend_from_slice(b",\"type_name\":\"");
    out.extend_from_slice(class_name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(activity.as_bytes());
    let sev = ev.severity.ocsf();
    out.extend_from_slice(b"\",\"severity_id\":");
    push_u64(out, u64::from(sev));
    out.extend_from_slice(b",\"severity\":\"");
    out.extend_from_slice(SEVERITY[usize::from(sev).min(6)].as_bytes());
    out.extend_from_slice(b"\",\"time\":");
    push_i64(out, ev.time.as_millis());
    // Findings redefine status: 1 New, 2 In Progress, ...; a vigil detection
    // is a new finding and its outcome goes to `unmapped`.
    out.extend_from_slice(match (shape, ev.outcome) {
        (Shape::Finding, _) => b",\"status_id\":1,\"status\":\"New\"",
        (_, Outcome::Success) => b",\"status_id\":1,\"status\":\"Success\"",
        (_, Outcome::Failure) => b",\"status_id\":2,\"status\":\"Failure\"",
        (_, Outcome::Unknown) => b",\"status_id\":0,\"status\":\"Unknown\"",
    });
    out.extend_from_slice(b",\"message\":");
    write_str(out, &ev.message);

    // Free fields with a home in the schema; the rest go to unmapped.fields.
    let sqlstate = str_field(ev, "sqlstate");
    let reason = str_field(ev, "reason");
    let query = if shape == Shape::Datastore {
        str_field(ev, "query")
    } else {
        None
    };
    if let Some((_, v)) = sqlstate {
        out.extend_from_slice(b",\"status_code\":");
        write_str(out, v);
    }
    if let Some((_, v)) = reason {
        out.extend_from_slice(b",\"status_detail\":");
        write_str(out, v);
    }

    out.extend_from_slice(b",\"metadata\":{\"version\":\"1.3.0\",\"product\":");
    out.extend_from_slice(PRODUCT.as_bytes());
    out.extend_from_slice(b",\"uid\":");
    write_uid(out, ev);
    out.extend_from_slice(b",\"sequence\":");
    push_u64(out, ev.seq);
    out.extend_from_slice(b",\"event_code\":\"");
    push_u64(out, u64::from(ev.kind.code()));
    out.extend_from_slice(b"\",\"log_name\":\"");
    out.extend_from_slice(ev.kind.name().as_bytes());
    out.extend_from_slice(b"\"}");

    let s = ev.session.as_deref();
    let mut placed = Placed::default();
    match shape {
        Shape::Plain => {}
        Shape::Lifecycle => {
            out.extend_from_slice(b",\"app\":");
            out.extend_from_slice(PRODUCT.as_bytes());
        }
        Shape::Finding => {
            out.extend_from_slice(b",\"finding_info\":{\"title\":");
            write_str(out, &ev.message);
            out.extend_from_slice(b",\"uid\":");
            write_uid(out, ev);
            out.extend_from_slice(b",\"types\":[\"");
            out.extend_from_slice(ev.kind.name().as_bytes());
            out.extend_from_slice(b"\"]}");
            if let Some(s) = s.filter(|s| has_evidence(s)) {
                out.extend_from_slice(b",\"evidences\":[{");
                let mut first = true;
                endpoints(out, s, &mut first, &mut placed);
                actor(out, s, &mut first, &mut placed);
                database(out, s, &mut first, &mut placed);
                out.extend_from_slice(b"}]");
            }
        }
        Shape::Authentication => {
            if let Some(s) = s {
                let mut first = false;
                endpoints(out, s, &mut first, &mut placed);
                if s.db_user.is_some() || s.client_identity.is_some() {
                    out.extend_from_slice(b",\"user\":");
                    user(out, s, &mut placed);
                }
                if let Some(app) = &s.application {
                    out.extend_from_slice(b",\"actor\":{\"app_name\":");
                    write_str(out, app);
                    out.push(b'}');
                    placed.application = true;
                }
            }
        }
        Shape::Entity => {
            out.extend_from_slice(b",\"entity\":{\"type\":\"Key\",\"name\":");
            match str_field(ev, "key") {
                Some((_, k)) => write_str(out, k),
                None => out.extend_from_slice(b"\"-\""),
            }
            out.push(b'}');
            if let Some(s) = s {
                // IAM classes have `src_endpoint` but no `dst_endpoint`.
                let mut first = false;
                if let Some(a) = s.client {
                    member(out, &mut first, b"src_endpoint");
                    endpoint(out, a);
                    placed.client = true;
                }
                actor(out, s, &mut first, &mut placed);
            }
        }
        Shape::Network => {
            if let Some(s) = s {
                let mut first = false;
                endpoints(out, s, &mut first, &mut placed);
                if let Some(app) = &s.application {
                    out.extend_from_slice(b",\"app_name\":");
                    write_str(out, app);
                    placed.application = true;
                }
                if let Some(v) = &s.tls_version {
                    out.extend_from_slice(b",\"tls\":{\"version\":");
                    write_str(out, v);
                    if let Some(c) = &s.tls_cipher {
                        out.extend_from_slice(b",\"cipher\":");
                        write_str(out, c);
                        placed.tls_cipher = true;
                    }
                    out.push(b'}');
                    placed.tls_version = true;
                }
            }
        }
        Shape::Datastore => {
            if let Some(s) = s {
                let mut first = false;
                endpoints(out, s, &mut first, &mut placed);
                actor(out, s, &mut first, &mut placed);
                database(out, s, &mut first, &mut placed);
            }
            if let Some((_, q)) = query {
                out.extend_from_slice(b",\"query_info\":{\"query_string\":");
                write_str(out, q);
                out.push(b'}');
            }
        }
    }

    // unmapped: what the class has no attribute for.
    let consumed = |i: usize| {
        [sqlstate, reason, query]
            .iter()
            .any(|c| c.is_some_and(|(j, _)| j == i))
            || (shape == Shape::Entity && str_field(ev, "key").is_some_and(|(j, _)| j == i))
    };
    let mut first = true;
    let mut open = |out: &mut Vec<u8>, key: &[u8]| {
        out.extend_from_slice(if first { b",\"unmapped\":{\"" } else { b",\"" });
        first = false;
        out.extend_from_slice(key);
        out.extend_from_slice(b"\":");
    };
    if shape == Shape::Finding {
        open(out, b"outcome");
        out.push(b'"');
        out.extend_from_slice(ev.outcome.as_str().as_bytes());
        out.push(b'"');
    }
    if let Some(s) = s {
        open(out, b"session_id");
        push_u64(out, s.id);
        for (key, port_key, a, done) in [
            (
                &b"client_addr"[..],
                &b"client_port"[..],
                s.client,
                placed.client,
            ),
            (b"server_addr", b"server_port", s.server, placed.server),
        ] {
            if let (Some(a), false) = (a, done) {
                open(out, key);
                out.push(b'"');
                push_ip(out, unmap_ip(a.ip()));
                out.push(b'"');
                open(out, port_key);
                push_u64(out, u64::from(a.port()));
            }
        }
        for (key, v, done) in [
            (&b"client_identity"[..], &s.client_identity, placed.user),
            (b"db_user", &s.db_user, placed.user),
            (b"database", &s.database, placed.database),
            (b"application", &s.application, placed.application),
            (b"tls_version", &s.tls_version, placed.tls_version),
            (b"tls_cipher", &s.tls_cipher, placed.tls_cipher),
        ] {
            if let (Some(v), false) = (v, done) {
                open(out, key);
                write_str(out, v);
            }
        }
    }
    if let Some(fp) = ev.fingerprint {
        open(out, b"fingerprint");
        out.push(b'"');
        push_hex16(out, fp);
        out.push(b'"');
    }
    let mut rest = ev
        .fields
        .iter()
        .enumerate()
        .filter(|(i, _)| !consumed(*i))
        .peekable();
    if rest.peek().is_some() {
        open(out, b"fields");
        out.push(b'{');
        for (n, (_, f)) in rest.enumerate() {
            if n > 0 {
                out.push(b',');
            }
            write_str(out, &f.key);
            out.push(b':');
            write_value::<false>(out, &f.value);
        }
        out.push(b'}');
    }
    if !first {
        out.push(b'}');
    }
    out.push(b'}');
}

/// Which session facts went to class attributes.
#[derive(Default)]
struct Placed {
    client: bool,
    server: bool,
    user: bool,
    database: bool,
    application: bool,
    tls_version: bool,
    tls_cipher: bool,
}

/// Appends `"<origin>:<seq>"`, the event's unique id, as a JSON string.
fn write_uid(out: &mut Vec<u8>, ev: &Event) {
    out.push(b'"');
    write_str_body(out, &ev.origin);
    out.push(b':');
    push_u64(out, ev.seq);
    out.push(b'"');
}

/// The first free field named `key` with a string value, and its index.
fn str_field<'a>(ev: &'a Event, key: &str) -> Option<(usize, &'a str)> {
    let (i, f): (usize, &Field) = ev.fields.iter().enumerate().find(|(_, f)| f.key == key)?;
    match &f.value {
        Value::Str(s) => Some((i, s)),
        _ => None,
    }
}

fn has_evidence(s: &Session) -> bool {
    s.client.is_some()
        || s.server.is_some()
        || s.db_user.is_some()
        || s.client_identity.is_some()
        || s.application.is_some()
        || s.database.is_some()
}

/// Writes `,"key":` or, for the first member of an object, `"key":`.
fn member(out: &mut Vec<u8>, first: &mut bool, key: &[u8]) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.push(b'"');
    out.extend_from_slice(key);
    out.extend_from_slice(b"\":");
}

fn endpoint(out: &mut Vec<u8>, a: SocketAddr) {
    out.extend_from_slice(b"{\"ip\":\"");
    push_ip(out, unmap_ip(a.ip()));
    out.extend_from_slice(b"\",\"port\":");
    push_u64(out, u64::from(a.port()));
    out.push(b'}');
}

fn endpoints(out: &mut Vec<u8>, s: &Session, first: &mut bool, placed: &mut Placed) {
    if let Some(a) = s.client {
        member(out, first, b"src_endpoint");
        endpoint(out, a);
        placed.client = true;
    }
    if let Some(a) = s.server {
        member(out, first, b"dst_endpoint");
        endpoint(out, a);
        placed.server = true;
    }
}

/// `{"name": db user, "credential_uid": client identity}`.
fn user(out: &mut Vec<u8>, s: &Session, placed: &mut Placed) {
    let mut first = true;
    out.push(b'{');
    if let Some(u) = &s.db_user {
        member(out, &mut first, b"name");
        write_str(out, u);
    }
    if let Some(id) = &s.client_identity {
        member(out, &mut first, b"credential_uid");
        write_str(out, id);
    }
    out.push(b'}');
    placed.user = true;
}

/// `"actor":{"user":{..},"app_name":..}` when either is known.
fn actor(out: &mut Vec<u8>, s: &Session, first: &mut bool, placed: &mut Placed) {
    let has_user = s.db_user.is_some() || s.client_identity.is_some();
    if !has_user && s.application.is_none() {
        return;
    }
    member(out, first, b"actor");
    out.push(b'{');
    let mut inner = true;
    if has_user {
        member(out, &mut inner, b"user");
        user(out, s, placed);
    }
    if let Some(app) = &s.application {
        member(out, &mut inner, b"app_name");
        write_str(out, app);
        placed.application = true;
    }
    out.push(b'}');
}

/// `"database":{"name":..,"type":"Relational","type_id":1}`.
fn database(out: &mut Vec<u8>, s: &Session, first: &mut bool, placed: &mut Placed) {
    if let Some(db) = &s.database {
        member(out, first, b"database");
        out.extend_from_slice(b"{\"name\":");
        write_str(out, db);
        out.extend_from_slice(b",\"type\":\"Relational\",\"type_id\":1}");
        placed.database = true;
    }
}
