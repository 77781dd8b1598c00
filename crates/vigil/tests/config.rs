//! The configuration file: the example, the defaults, and the one-line
//! errors, each naming file, line and key.

#![allow(clippy::unwrap_used, clippy::string_slice)] // tests may panic

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use vigil::config::{self, Config, ConfigError, PipelineConfig, SinkKind};
use vigil_event::{Event, Format, Overflow, Severity, catalog};

const FILE: &str = "vigil.toml";

fn parse(text: &str) -> Result<Config, ConfigError> {
    config::parse(text, Path::new(FILE))
}

/// Asserts the invariants of every error's `Display`: one line, starting
/// with `<file>:<line>: `.
fn assert_one_line(e: &ConfigError, file: &str) -> String {
    let shown = e.to_string();
    assert!(
        !shown.contains(['\n', '\r']),
        "more than one line: {shown:?}"
    );
    let line = e
        .line()
        .unwrap_or_else(|| panic!("no line number: {shown}"));
    assert!(line >= 1, "{shown}");
    let prefix = format!("{file}:{line}: ");
    assert!(
        shown.starts_with(&prefix),
        "{shown:?} does not start with {prefix:?}"
    );
    assert_eq!(e.file(), Path::new(file));
    shown
}

#[test]
fn the_example_parses_into_the_sinks_it_describes() {
    let cfg = config::parse(config::example(), Path::new("/etc/vigil/vigil.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.service.origin, "db-proxy-1");
    assert_eq!(cfg.pipeline.queue_capacity, 65536);
    assert_eq!(cfg.pipeline.overflow, Overflow::Block);
    let names: Vec<&str> = cfg.sinks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["console", "siem", "archive"]);

    let ev = |k| Event::new(k, "m");
    let [console, siem, archive] = &cfg.sinks[..] else {
        unreachable!()
    };
    assert_eq!(console.kind, SinkKind::Stdout);
    assert_eq!(console.format, Format::Text);
    assert_eq!(console.filter.min_severity(), Severity::Info);
    assert!(console.filter.matches(&ev(catalog::CLIENT_CONNECTED)));
    assert!(
        !console.filter.matches(&ev(catalog::STATEMENT_EXECUTED)),
        "statements excluded"
    );

    assert_eq!(
        siem.kind,
        SinkKind::File {
            path: "/var/log/vigil/siem.cef".into()
        }
    );
    assert_eq!(siem.format, Format::Cef);
    for k in [
        catalog::POISON_ACCESSED,
        catalog::ANOMALY_SQL_INJECTION,
        catalog::STATEMENT_EXECUTED,
        catalog::TLS_CLIENT_CERT_EXPIRED,
        catalog::AUTH_FAILED,
        catalog::CLIENT_REJECTED,
        catalog::AUDIT_GAP,
    ] {
        assert!(siem.filter.matches(&ev(k)), "siem should receive {k}");
    }
    for k in [
        catalog::CLIENT_CONNECTED,
        catalog::FIREWALL_LEARNED,
        catalog::AUDIT_CHECKPOINT,
    ] {
        assert!(!siem.filter.matches(&ev(k)), "siem should not receive {k}");
    }

    assert_eq!(
        archive.kind,
        SinkKind::File {
            path: "/var/log/vigil/events.json".into()
        }
    );
    assert_eq!(archive.format, Format::Json);
    for &k in catalog::ALL {
        assert!(
            archive.filter.matches(&ev(k).severity(Severity::Debug)),
            "archive misses {k}"
        );
    }
}

#[test]
fn the_documented_example_parses() {
    let doc = include_str!("../../../docs/configuration.md");
    let block = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/configuration.md has a toml block");
    let cfg = parse(block).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.sinks.len(), 2);
    assert_eq!(cfg.sinks[1].format, Format::Cef);
}

#[test]
fn syslog_options_as_a_table_of_their_own() {
    let text = "[[sinks]]\ntype = \"stdout\"\nformat = \"syslog\"\n\
                [sinks.syslog]\nfacility = \"local4\"\nhostname = \"db1\"\n\
                [[sinks]]\ntype = \"stderr\"\n";
    let cfg = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let Format::Syslog(opts) = &cfg.sinks[0].format else {
        panic!("{:?}", cfg.sinks[0].format)
    };
    assert_eq!((opts.facility, opts.hostname.as_str()), (20, "db1"));
    let e = parse(&text.replace("local4", "local9")).expect_err("bad facility");
    assert_eq!(
        (e.line(), e.key()),
        (Some(5), Some("sinks[0].syslog.facility"))
    );
}

#[test]
fn defaults() {
    let expected_sink = |cfg: &Config| {
        assert_eq!(cfg.sinks.len(), 1);
        let s = &cfg.sinks[0];
        assert_eq!(
            (s.name.as_str(), &s.kind, &s.format),
            ("stdout-0", &SinkKind::Stdout, &Format::Text)
        );
        assert_eq!(s.filter.min_severity(), Severity::Info);
        assert!(catalog::ALL.iter().all(|&k| s.filter.matches_kind(k)));
    };
    let default = Config::default();
    expected_sink(&default);
    assert_eq!(
        default.pipeline.queue_capacity,
        PipelineConfig::DEFAULT_QUEUE_CAPACITY
    );
    assert_eq!(default.pipeline.overflow, Overflow::Block);
    assert!(!default.service.origin.is_empty());

    for text in ["", "# nothing\n", "[service]\n[pipeline]\n"] {
        let cfg = parse(text).unwrap_or_else(|e| panic!("{e}"));
        expected_sink(&cfg);
        assert_eq!(cfg, default, "{text:?}");
    }

    let cfg = parse("[[sinks]]\ntype = \"stderr\"\n[[sinks]]\ntype = \"file\"\npath = \"/x\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = cfg.sinks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["stderr-0", "file-1"]);
    assert_eq!(cfg.sinks[0].format, Format::Text);
    assert_eq!(cfg.sinks[1].format, Format::Json);
}

#[test]
fn limits_of_the_pipeline() {
    let cfg = parse("[pipeline]\nqueue_capacity = 16777216\noverflow = \"drop\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cfg.pipeline.queue_capacity,
        PipelineConfig::MAX_QUEUE_CAPACITY
    );
    assert_eq!(cfg.pipeline.overflow, Overflow::Drop);
    let e = parse("[pipeline]\nqueue_capacity = 16777217\n").expect_err("too large");
    assert_eq!(e.key(), Some("pipeline.queue_capacity"));
}

/// A valid file; each bad config below changes one line of it or adds one.
const GOOD: &str = r#"# vigil
[service]
origin = "db-proxy-1"

[pipeline]
queue_capacity = 1024
overflow = "block"

[[sinks]]
name = "console"
type = "stdout"
format = "text"

[[sinks]]
name = "siem"
type = "file"
path = "/var/log/vigil/siem.cef"
format = "cef"
min_severity = "info"
include = [
  "poison",
  "anomaly",
  "statement",
]
"#;

/// `GOOD` with line `line` (1-based) replaced by `with` (which may hold
/// several lines, or none).
fn edit(line: usize, with: &str) -> String {
    let mut lines: Vec<&str> = GOOD.lines().collect();
    assert!(line <= lines.len(), "line {line} is past the end");
    lines[line - 1] = with;
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

#[test]
fn good_is_good() {
    let cfg = parse(GOOD).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.sinks.len(), 2);
}

#[test]
fn every_error_names_file_line_and_key() {
    // (what, config, line, key, text the message holds)
    let cases: Vec<(&str, String, usize, &str, &str)> = vec![
        (
            "syntax error",
            edit(12, "format = \"text"),
            12,
            "sinks[0].format",
            "string",
        ),
        (
            "value missing",
            edit(12, "format ="),
            12,
            "sinks[0].format",
            "invalid TOML",
        ),
        (
            "bad table header",
            edit(14, "[[sinks]"),
            14,
            "sinks[1]",
            "invalid TOML",
        ),
        (
            "duplicate key",
            edit(12, "type = \"stderr\""),
            12,
            "sinks[0].type",
            "duplicate key",
        ),
        (
            "wrong type",
            edit(6, "queue_capacity = \"big\""),
            6,
            "pipeline.queue_capacity",
            "invalid type: string \"big\", expected an integer",
        ),
        (
            "wrong type in a list",
            edit(22, "  3.5,"),
            22,
            "sinks[1].include[1]",
            "expected a selector",
        ),
        (
            "list expected",
            edit(24, "]\nexclude = \"poison\""),
            25,
            "sinks[1].exclude",
            "expected a list",
        ),
        (
            "unknown key, top level",
            edit(1, "listen = \"0.0.0.0:5432\""),
            1,
            "listen",
            "unknown key; expected one of service, pipeline, sinks",
        ),
        ("unknown table", edit(4, "[tape]"), 4, "tape", "unknown key"),
        (
            "unknown key in a sink",
            edit(13, "colour = true"),
            13,
            "sinks[0].colour",
            "unknown key; expected one of name, type, path",
        ),
        (
            "unknown key in syslog",
            edit(
                18,
                "format = \"syslog\"\nsyslog = { facility = \"auth\", host = \"x\" }",
            ),
            19,
            "sinks[1].syslog.host",
            "unknown key",
        ),
        (
            "single brackets",
            "[service]\n\n[sinks]\ntype = \"stdout\"\n".into(),
            3,
            "sinks",
            "write [[sinks]], with two brackets",
        ),
        (
            "single then double brackets",
            edit(9, "[sinks]"),
            14,
            "sinks",
            "opened as [sinks] on line 9 and as [[sinks]] on line 14; write [[sinks]], with two brackets",
        ),
        (
            "double then single brackets",
            edit(14, "[sinks]"),
            14,
            "sinks",
            "opened as [sinks] on line 14 and as [[sinks]] on line 9; write [[sinks]]",
        ),
        (
            "unknown format",
            edit(18, "format = \"xml\""),
            18,
            "sinks[1].format",
            "unknown format \"xml\"; expected one of json, text, cef, syslog, ocsf",
        ),
        (
            "unknown severity",
            edit(19, "min_severity = \"loud\""),
            19,
            "sinks[1].min_severity",
            "unknown severity \"loud\"; expected one of debug, info, notice, warning, error, critical, alert",
        ),
        (
            "bad selector",
            edit(23, "  \"statment\","),
            23,
            "sinks[1].include[2]",
            "invalid selector: `statment` is not a category",
        ),
        (
            "unknown code",
            edit(21, "  9999,"),
            21,
            "sinks[1].include[0]",
            "no event has code 9999",
        ),
        (
            "bad exclude",
            edit(24, "]\nexclude = [\"tls.*\", \"zzz.*\"]"),
            25,
            "sinks[1].exclude[1]",
            "matches no event",
        ),
        (
            "duplicate name",
            edit(15, "name = \"console\""),
            15,
            "sinks[1].name",
            "duplicate sink name \"console\" (also sinks[0])",
        ),
        (
            "bad name",
            edit(15, "name = \"my siem\""),
            15,
            "sinks[1].name",
            "invalid sink name",
        ),
        (
            "missing path",
            edit(17, ""),
            14,
            "sinks[1].path",
            "missing path; a file sink needs one",
        ),
        (
            "empty path",
            edit(17, "path = \"\""),
            17,
            "sinks[1].path",
            "empty",
        ),
        (
            "path on stdout",
            edit(11, "type = \"stdout\"\npath = \"/tmp/x\""),
            12,
            "sinks[0].path",
            "not allowed on a stdout sink",
        ),
        (
            "syslog on json",
            edit(18, "format = \"json\"\nsyslog = { facility = \"auth\" }"),
            19,
            "sinks[1].syslog",
            "syslog options need format = \"syslog\"",
        ),
        (
            "unknown format and syslog options",
            edit(18, "format = \"xml\"\nsyslog = { facility = \"auth\" }"),
            18,
            "sinks[1].format",
            "unknown format \"xml\"",
        ),
        (
            "bad facility",
            edit(
                18,
                "format = \"syslog\"\nsyslog = { facility = \"kernel\" }",
            ),
            19,
            "sinks[1].syslog.facility",
            "unknown facility \"kernel\"",
        ),
        (
            "queue_capacity 0",
            edit(6, "queue_capacity = 0"),
            6,
            "pipeline.queue_capacity",
            "0 is out of range; use 1 to 16777216 events",
        ),
        (
            "negative queue_capacity",
            edit(6, "queue_capacity = -5"),
            6,
            "pipeline.queue_capacity",
            "out of range",
        ),
        (
            "unknown overflow",
            edit(7, "overflow = \"spill\""),
            7,
            "pipeline.overflow",
            "unknown overflow policy \"spill\"; expected block",
        ),
        (
            "unknown sink type",
            edit(16, "type = \"kafka\""),
            16,
            "sinks[1].type",
            "unknown sink type \"kafka\"; expected one of stdout, stderr, file",
        ),
        (
            "missing sink type",
            edit(11, ""),
            9,
            "sinks[0].type",
            "missing sink type",
        ),
        (
            "bad origin",
            edit(3, "origin = \"\""),
            3,
            "service.origin",
            "invalid origin",
        ),
    ];
    assert!(cases.len() >= 12);
    let mut failures = Vec::new();
    for (what, text, line, key, message) in &cases {
        let e = match parse(text) {
            Ok(_) => {
                failures.push(format!("{what}: accepted"));
                continue;
            }
            Err(e) => e,
        };
        let shown = assert_one_line(&e, FILE);
        let head = format!("{FILE}:{line}: {key}: ");
        if e.line() != Some(*line) || e.key() != Some(*key) || !shown.starts_with(&head) {
            failures.push(format!("{what}: expected {head:?}, got {shown:?}"));
        } else if !shown.contains(message) {
            failures.push(format!("{what}: {shown:?} does not say {message:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_documented_error_line() {
    let text = edit(18, "format = \"xml\"");
    let e = config::parse(&text, Path::new("/etc/vigil/vigil.toml")).expect_err("xml");
    assert_eq!(
        e.to_string(),
        "/etc/vigil/vigil.toml:18: sinks[1].format: unknown format \"xml\"; \
         expected one of json, text, cef, syslog, ocsf"
    );
    assert!(matches!(e, ConfigError::Invalid { .. }));
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

#[test]
fn load_reads_the_file_and_resolves_relative_paths() {
    let file = scratch("relative.toml");
    std::fs::write(
        &file,
        "[[sinks]]\ntype = \"file\"\npath = \"logs/events.json\"\n",
    )
    .expect("write");
    let cfg = config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let dir = file.parent().expect("parent");
    assert_eq!(
        cfg.sinks[0].kind,
        SinkKind::File {
            path: dir.join("logs/events.json")
        }
    );
}

#[test]
fn load_errors_name_the_file() {
    let missing = scratch("missing.toml");
    let e = config::load(&missing).expect_err("missing file");
    let shown = e.to_string();
    assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
    assert_eq!(
        (e.line(), e.key(), e.file()),
        (None, None, missing.as_path())
    );
    assert!(
        shown.starts_with(&format!("{}: cannot read", missing.display())),
        "{shown}"
    );
    assert!(!shown.contains('\n'));

    let latin1 = scratch("latin1.toml");
    std::fs::write(&latin1, b"[service]\norigin = \"caf\xe9\"\n").expect("write");
    let e = config::load(&latin1).expect_err("not UTF-8");
    let shown = assert_one_line(&e, &latin1.display().to_string());
    assert_eq!(
        (e.line(), e.key()),
        (Some(2), Some("service.origin")),
        "{shown}"
    );
    assert!(shown.contains("UTF-8"), "{shown}");
}

/// Checks what any input must give: a config, or a one-line error with a
/// line number inside the text.
fn check_any(text: &str) {
    if let Err(e) = parse(text) {
        assert_one_line(&e, FILE);
        let lines = text.split('\n').count();
        let line = e.line().unwrap_or_default();
        assert!(
            line <= lines,
            "line {line} of a {lines}-line text: {e}\n{text}"
        );
    }
}

#[test]
fn every_truncation_of_the_example() {
    let example = config::example();
    let mut errors = 0;
    for (i, _) in example.char_indices() {
        let text = example.get(..i).expect("a char boundary");
        check_any(text);
        errors += usize::from(parse(text).is_err());
    }
    assert!(
        errors > 100,
        "truncations should fail often, failed {errors} times"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn garbage_never_panics(text in "[\\[\\]{}=\"'.,#\\\\a-z0-9_ \\n\\t-]{0,200}") {
        check_any(&text);
    }

    #[test]
    fn any_string_never_panics(text in any::<String>()) {
        check_any(&text);
    }

    #[test]
    fn mutated_example_never_panics(
        at in any::<prop::sample::Index>(),
        len in 0usize..20,
        insert in "[\\[\\]{}=\"'.,#\\\\a-z0-9_ \\n-]{0,12}",
    ) {
        let example = config::example();
        let bounds: Vec<usize> = example.char_indices().map(|(i, _)| i).collect();
        let start = bounds[at.index(bounds.len())];
        let end = bounds.iter().copied().find(|&b| b >= start + len).unwrap_or(example.len());
        let (head, tail) = (example.get(..start), example.get(end..));
        let text = format!("{}{insert}{}", head.unwrap_or_default(), tail.unwrap_or_default());
        check_any(&text);
    }
}

#[test]
fn audit_section_defaults_and_errors() {
    let cfg =
        parse("[audit]\ndir = \"audit\"\nkey_dir = \"/k\"\n").unwrap_or_else(|e| panic!("{e}"));
    let audit = cfg.audit.expect("audit configured");
    assert_eq!(
        audit.dir,
        Path::new("audit"),
        "relative to the config file's directory"
    );
    assert_eq!(audit.key_dir, Path::new("/k"));
    assert_eq!(audit.format, vigil_seal::LineFormat::Json);
    assert_eq!(
        audit.sync,
        vigil_seal::SyncPolicy::Interval(std::time::Duration::from_millis(10))
    );
    assert_eq!(audit.segment_max_bytes, 64 << 20);
    assert!(
        parse("").unwrap().audit.is_none(),
        "no audit log unless configured"
    );
    let cases: &[(&str, usize, &str, &str)] = &[
        ("[audit]\nkey_dir = \"k\"\n", 1, "audit.dir", "missing"),
        ("[audit]\ndir = \"a\"\n", 1, "audit.key_dir", "missing"),
        (
            "[audit]\ndir = \"a\"\nkey_dir = \"k\"\nformat = \"ocsf\"\n",
            4,
            "audit.format",
            "json, text or cef",
        ),
        (
            "[audit]\ndir = \"a\"\nkey_dir = \"k\"\nsync = \"sometimes\"\n",
            4,
            "audit.sync",
            "always, interval or never",
        ),
        (
            "[audit]\ndir = \"a\"\nkey_dir = \"k\"\nsync = \"always\"\nsync_interval_ms = 5\n",
            5,
            "audit.sync_interval_ms",
            "only used",
        ),
        (
            "[audit]\ndir = \"a\"\nkey_dir = \"k\"\ncheckpoint_every = 0\n",
            4,
            "audit.checkpoint_every",
            "out of range",
        ),
        (
            "[audit]\ndir = \"a\"\nkey_dir = \"k\"\nsegment_mb = 1\n",
            4,
            "audit.segment_mb",
            "",
        ),
    ];
    for (text, line, key, says) in cases {
        let e = parse(text).expect_err(text);
        let shown = assert_one_line(&e, FILE);
        assert_eq!((e.line(), e.key()), (Some(*line), Some(*key)), "{shown}");
        assert!(shown.contains(says), "{shown}");
    }
}

#[test]
fn delivering_sinks_parse_into_their_settings() {
    let cfg = parse(
        r#"
[[sinks]]
name = "siem"
type = "syslog"
protocol = "tls"
address = "siem.example:6514"
tls_ca = "/etc/vigil/ca.pem"
tls_cert = "/etc/vigil/c.pem"
tls_key = "/etc/vigil/c.key"
resend_window_ms = 500
batch = 200

[[sinks]]
type = "http"
api = "elastic_bulk"
url = "https://es.example:9200/_bulk"
index = "vigil"
token_env = "ES_TOKEN"
gzip = true
headers = { "X-Team" = "dba" }

[[sinks]]
type = "nats"
address = "nats.example:4222"
subject = "vigil.events"
stream = "VIGIL"
create_stream = true
password_env = "NATS_PASSWORD"
user = "vigil"

[[sinks]]
type = "postgres"
conninfo = "host=db dbname=audit user=vigil sslmode=verify-full"
password_env = "PGPW"
table = "audit.vigil_events"
create_table = true
retry_max_ms = 5000
tls_ca = "/etc/vigil/db-ca.pem"
tls_server_name = "db.example"
"#,
    )
    .unwrap();
    let kinds: Vec<&str> = cfg.sinks.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["syslog", "http", "nats", "postgres"]);
    assert!(cfg.sinks.iter().all(|s| s.kind.delivers_from_log()));
    let SinkKind::Syslog { address, tls, .. } = &cfg.sinks[0].kind else {
        panic!()
    };
    assert_eq!(address, "siem.example:6514");
    assert_eq!(
        tls.as_ref().unwrap().cert.as_deref(),
        Some(Path::new("/etc/vigil/c.pem"))
    );
    assert!(
        matches!(cfg.sinks[0].format, Format::Syslog(_)),
        "syslog sinks default to RFC 5424"
    );
    assert_eq!(cfg.sinks[0].delivery.batch, 200);
    assert_eq!(
        cfg.sinks[0].delivery.resend_window,
        std::time::Duration::from_millis(500)
    );
    assert_eq!(cfg.sinks[1].name, "http-1");
    assert_eq!(cfg.sinks[1].format, Format::Json);
    let SinkKind::Http {
        headers,
        token_env,
        gzip,
        ..
    } = &cfg.sinks[1].kind
    else {
        panic!()
    };
    assert_eq!(headers, &[("X-Team".to_owned(), "dba".to_owned())]);
    assert_eq!((token_env.as_deref(), *gzip), (Some("ES_TOKEN"), true));
    let SinkKind::Postgres {
        table,
        tls_ca,
        tls_server_name,
        ..
    } = &cfg.sinks[3].kind
    else {
        panic!()
    };
    assert_eq!(table, "audit.vigil_events");
    assert_eq!(tls_ca.as_deref(), Some(Path::new("/etc/vigil/db-ca.pem")));
    assert_eq!(tls_server_name.as_deref(), Some("db.example"));
    assert_eq!(
        cfg.sinks[3].delivery.retry_max,
        std::time::Duration::from_secs(5)
    );
}

#[test]
fn delivering_sink_errors_name_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[[sinks]]\ntype = \"syslog\"\n",
            "sinks[0].address",
            "missing address",
        ),
        (
            "[[sinks]]\ntype = \"syslog\"\naddress = \"siem\"\n",
            "sinks[0].address",
            "is not host:port",
        ),
        (
            "[[sinks]]\ntype = \"syslog\"\naddress = \"s:514\"\nprotocol = \"relp\"\n",
            "sinks[0].protocol",
            "unknown protocol",
        ),
        (
            "[[sinks]]\ntype = \"syslog\"\naddress = \"s:514\"\ntls_ca = \"ca.pem\"\n",
            "sinks[0].tls_ca",
            "need protocol = \"tls\"",
        ),
        (
            "[[sinks]]\ntype = \"syslog\"\naddress = \"s:6514\"\nprotocol = \"tls\"\n",
            "sinks[0].tls_ca",
            "missing tls_ca",
        ),
        (
            "[[sinks]]\ntype = \"stdout\"\nbatch = 10\n",
            "sinks[0].batch",
            "not allowed on a stdout sink",
        ),
        (
            "[[sinks]]\ntype = \"nats\"\naddress = \"n:4222\"\nsubject = \"s\"\nurl = \"http://x\"\n",
            "sinks[0].url",
            "not allowed on a nats sink",
        ),
        (
            "[[sinks]]\ntype = \"http\"\napi = \"webhook\"\nurl = \"ftp://x\"\n",
            "sinks[0].url",
            "not an http",
        ),
        (
            "[[sinks]]\ntype = \"http\"\napi = \"splunk\"\nurl = \"http://x:1/\"\n",
            "sinks[0].api",
            "unknown api",
        ),
        (
            "[[sinks]]\ntype = \"http\"\napi = \"webhook\"\nurl = \"http://x:1/\"\nformat = \"cef\"\n",
            "sinks[0].format",
            "sends JSON documents",
        ),
        (
            "[[sinks]]\ntype = \"http\"\napi = \"webhook\"\nurl = \"http://x:1/\"\ntoken_env = \"my token\"\n",
            "sinks[0].token_env",
            "not an environment variable name",
        ),
        (
            "[[sinks]]\ntype = \"postgres\"\nconninfo = \"host=db password=hunter2\"\n",
            "sinks[0].conninfo",
            "holds a password",
        ),
        (
            "[[sinks]]\ntype = \"postgres\"\nconninfo = \"host=db\"\ntable = \"Robert'); drop\"\n",
            "sinks[0].table",
            "not a plain table name",
        ),
        (
            "[[sinks]]\ntype = \"postgres\"\nconninfo = \"host=db\"\ntls_cert = \"c.pem\"\n",
            "sinks[0].tls_key",
            "needs both tls_cert and tls_key",
        ),
        (
            "[[sinks]]\ntype = \"postgres\"\nconninfo = \"host=db\"\nresend_window_ms = 5\n",
            "sinks[0].resend_window_ms",
            "not allowed on a postgres sink",
        ),
        (
            "[[sinks]]\ntype = \"http\"\napi = \"webhook\"\nurl = \"https://x:1/\"\ntls_server_name = \"x\"\n",
            "sinks[0].tls_server_name",
            "it belongs to syslog, postgres sinks",
        ),
        (
            "[[sinks]]\ntype = \"file\"\npath = \"e.log\"\nmax_mb = 0\n",
            "sinks[0].max_mb",
            "out of range",
        ),
    ];
    for (text, key, says) in cases {
        let e = parse(text).unwrap_err();
        let shown = assert_one_line(&e, FILE);
        assert_eq!(e.key(), Some(*key), "{shown}");
        assert!(shown.contains(says), "{shown}");
        assert!(!shown.contains("hunter2"), "a secret in an error: {shown}");
    }
}
