use super::*;

fn ok(text: &str) -> Config {
    parse(text, Path::new("/etc/vigil/vigil.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> ConfigError {
    parse(text, Path::new("/etc/vigil/vigil.toml")).expect_err("config should be rejected")
}

#[test]
fn syslog_options_override_the_defaults() {
    let cfg = ok("[[sinks]]\ntype = \"stdout\"\nformat = \"syslog\"\n\
                  syslog = { facility = 23, hostname = \"db1\", app_name = \"pg-proxy\" }\n");
    let Format::Syslog(opts) = &cfg.sinks[0].format else {
        panic!("{:?}", cfg.sinks[0].format)
    };
    assert_eq!(
        (opts.facility, &*opts.hostname, &*opts.app_name),
        (23, "db1", "pg-proxy")
    );
    let cfg = ok(
        "[[sinks]]\ntype = \"stdout\"\nformat = \"syslog\"\nsyslog = { facility = \"local3\" }\n",
    );
    let Format::Syslog(opts) = &cfg.sinks[0].format else {
        panic!("{:?}", cfg.sinks[0].format)
    };
    assert_eq!(opts.facility, 19);
    let Some(Format::Syslog(defaults)) = Format::from_name("syslog") else {
        panic!()
    };
    assert_eq!(opts.app_name, defaults.app_name);
    for bad in ["24", "-1", "\"local8\"", "\"kernel\""] {
        let e = err(&format!(
            "[[sinks]]\ntype = \"stdout\"\nformat = \"syslog\"\nsyslog = {{ facility = {bad} }}\n"
        ));
        assert_eq!(
            (e.line(), e.key()),
            (Some(4), Some("sinks[0].syslog.facility")),
            "{bad}"
        );
    }
    let e = err("[[sinks]]\ntype = \"stderr\"\nformat = \"syslog\"\n\
                 syslog = { app_name = \"a-very-long-application-name-that-rfc5424-refuses\" }\n");
    assert_eq!(e.key(), Some("sinks[0].syslog.app_name"));
}

#[test]
fn relative_paths_are_read_from_the_config_directory() {
    let cfg = ok("[[sinks]]\ntype = \"file\"\npath = \"log/events.json\"\n");
    assert_eq!(
        cfg.sinks[0].kind,
        SinkKind::File {
            path: "/etc/vigil/log/events.json".into()
        }
    );
    assert_eq!(cfg.sinks[0].format, Format::Json, "files default to json");
    let cfg = parse(
        "[[sinks]]\ntype = \"file\"\npath = \"e.log\"\n",
        Path::new("v.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cfg.sinks[0].kind,
        SinkKind::File {
            path: "e.log".into()
        }
    );
}

#[test]
fn a_sink_that_can_receive_nothing_is_an_error() {
    let e = err("[[sinks]]\ntype = \"stdout\"\ninclude = [\"tls\"]\nexclude = [\"1200-1299\"]\n");
    assert_eq!((e.line(), e.key()), (Some(4), Some("sinks[0].exclude")));
}

#[test]
fn origin_must_be_a_token() {
    let e = err("[service]\norigin = \"db proxy\"\n");
    assert_eq!((e.line(), e.key()), (Some(2), Some("service.origin")));
    assert!(e.to_string().contains("without spaces"), "{e}");
}

#[test]
fn host_name_is_a_valid_origin() {
    assert!(token(&host_name(), 255).is_ok());
}

#[test]
fn default_names_take_part_in_uniqueness() {
    let e =
        err("[[sinks]]\nname = \"stdout-1\"\ntype = \"stdout\"\n[[sinks]]\ntype = \"stdout\"\n");
    assert_eq!((e.line(), e.key()), (Some(4), Some("sinks[1]")));
    assert!(e.to_string().contains("also sinks[0]"), "{e}");
}

#[test]
fn an_empty_sink_list_means_the_audit_log_only() {
    assert!(ok("sinks = []\n").sinks.is_empty());
    // Without the key, events go to standard output.
    assert_eq!(ok("").sinks.len(), 1);
}

#[test]
fn selectors_accept_strings_and_integers() {
    let cfg = ok("[[sinks]]\ntype = \"stdout\"\ninclude = [\"2000\", 1100, \"tls.*\"]\n");
    let f = &cfg.sinks[0].filter;
    assert!(f.matches_kind(catalog::STATEMENT_EXECUTED));
    assert!(f.matches_kind(catalog::CLIENT_CONNECTED));
    assert!(f.matches_kind(catalog::TLS_CLIENT_CERT_EXPIRED));
    assert!(!f.matches_kind(catalog::POISON_ACCESSED));
    let e = err("[[sinks]]\ntype = \"stdout\"\ninclude = [70000]\n");
    assert!(e.to_string().contains("no event has code 70000"), "{e}");
}
