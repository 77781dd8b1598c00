//! Several sinks: filters and formats, and one failing sink among healthy ones.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use vigil_event::{Event, Filter, Format, Overflow, Selector, Severity, catalog};
use vigil_ship::{Error, Pipeline, SinkSpec, Target};

use common::*;

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

#[test]
fn each_sink_gets_exactly_its_events_in_its_format() {
    let (json_out, text_out) = (Shared::default(), Shared::default());
    let (pipeline, emitter) = Pipeline::builder()
        .origin("db1")
        .sink(
            SinkSpec::new("statements", Target::Writer(Box::new(json_out.clone())))
                .format(Format::Json)
                .filter(Filter::new(Severity::Debug, &[sel("statement")], &[])),
        )
        .sink(
            SinkSpec::new("auth", Target::Writer(Box::new(text_out.clone())))
                .format(Format::Text)
                .filter(Filter::new(Severity::Warning, &[sel("connection")], &[])),
        )
        .start()
        .unwrap();
    // seq i+1 is event i: statement, client.connected (info: below the text
    // sink's minimum), auth.failed, in turn.
    let mut want_json = Vec::new();
    let mut want_text = Vec::new();
    for i in 0..300u64 {
        let seq = i + 1;
        match i % 3 {
            0 => {
                emitter.emit(statement(i));
                want_json.push(seq);
            }
            1 => emitter.emit(Event::new(catalog::CLIENT_CONNECTED, "client connected")),
            _ => {
                emitter.emit(Event::new(
                    catalog::AUTH_FAILED,
                    "password authentication failed",
                ));
                want_text.push(seq);
            }
        }
    }
    let stats = pipeline.shutdown().unwrap();

    let json = json_out.events();
    assert!(json.iter().all(|e| e.kind == catalog::STATEMENT_EXECUTED));
    assert_eq!(json.iter().map(|e| e.seq).collect::<Vec<_>>(), want_json);

    let text = String::from_utf8(text_out.bytes()).unwrap();
    let mut got_text = Vec::new();
    for line in text.lines() {
        assert!(!line.starts_with('{'), "JSON in the text sink: {line}");
        assert!(line.contains(" auth.failed "), "{line}");
        let seq = line
            .split(' ')
            .find_map(|w| w.strip_prefix("seq="))
            .unwrap_or_else(|| panic!("no seq in {line}"));
        got_text.push(seq.parse::<u64>().unwrap());
    }
    assert_eq!(got_text, want_text);

    let [s, a] = &stats.sinks[..] else {
        panic!("{stats:?}")
    };
    assert_eq!(
        (s.name.as_str(), s.written, s.filtered_out),
        ("statements", 100, 200)
    );
    assert_eq!(
        (a.name.as_str(), a.written, a.filtered_out),
        ("auth", 100, 200)
    );
}

/// Runs `n` events through a healthy JSON sink and a flaky one that fails
/// at first, recovers once `sink.down` was seen, and returns both outputs.
fn through_a_flaky_sink(n: u64, panics: bool) -> (Vec<Event>, Vec<Event>, vigil_ship::Stats) {
    let healthy = Shared::default();
    let (flaky, failing, flaky_out) = Flaky::new(panics);
    let (pipeline, emitter) = Pipeline::builder()
        .origin("db1")
        .flush_interval(Duration::from_millis(10))
        .sink(SinkSpec::new(
            "healthy",
            Target::Writer(Box::new(healthy.clone())),
        ))
        .sink(SinkSpec::new("flaky", Target::Writer(Box::new(flaky))))
        .start()
        .unwrap();
    for i in 0..n / 2 {
        emitter.emit(statement(i));
    }
    let down = || {
        healthy
            .events()
            .iter()
            .any(|e| e.kind == catalog::SINK_DOWN)
    };
    assert!(wait_until(Duration::from_secs(5), down), "no sink.down");
    failing.store(false, Ordering::SeqCst);
    for i in n / 2..n {
        emitter.emit(statement(i));
    }
    let up = || healthy.events().iter().any(|e| e.kind == catalog::SINK_UP);
    assert!(wait_until(Duration::from_secs(5), up), "no sink.up");
    let stats = pipeline.shutdown().unwrap();
    (healthy.events(), flaky_out.events(), stats)
}

#[test]
fn failing_sink_is_reported_down_then_up_and_others_get_everything() {
    let (healthy, flaky, stats) = through_a_flaky_sink(200, false);

    assert_gapless(&healthy);
    let statements: Vec<u64> = of_kind(&healthy, catalog::STATEMENT_EXECUTED)
        .iter()
        .map(|e| int_field(e, "i"))
        .collect();
    assert_eq!(statements, (0..200).collect::<Vec<_>>());
    let kinds: Vec<_> = healthy
        .iter()
        .filter(|e| e.kind.category() == vigil_event::Category::Export)
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [catalog::SINK_DOWN, catalog::SINK_UP],
        "exactly one outage"
    );
    let down = of_kind(&healthy, catalog::SINK_DOWN)[0];
    assert_eq!(str_field(down, "sink"), "flaky");
    assert!(
        str_field(down, "reason").contains("disk on fire"),
        "{down:?}"
    );
    let up = of_kind(&healthy, catalog::SINK_UP)[0];
    assert_eq!(str_field(up, "sink"), "flaky");

    // The outage fit in the flaky sink's buffer: it lost nothing, and never
    // saw its own sink.down.
    assert_eq!(int_field(up, "lost"), 0);
    assert_eq!(of_kind(&flaky, catalog::STATEMENT_EXECUTED).len(), 200);
    assert!(of_kind(&flaky, catalog::SINK_DOWN).is_empty());
    assert_eq!(of_kind(&flaky, catalog::SINK_UP).len(), 1);
    let f = &stats.sinks[1];
    assert!(f.errors >= 1, "{f:?}");
    assert_eq!((f.written, f.filtered_out, f.lost), (201, 1, 0));
    assert_eq!(stats.sinks[0].written, 202);
}

#[test]
fn an_outage_longer_than_the_buffer_counts_the_lost_records() {
    // ~100 bytes a record: 4,000 records overflow the 64 KiB buffer.
    let (healthy, flaky, stats) = through_a_flaky_sink(8_000, false);
    assert_gapless(&healthy);
    assert_eq!(of_kind(&healthy, catalog::STATEMENT_EXECUTED).len(), 8_000);
    let up = of_kind(&healthy, catalog::SINK_UP)[0];
    let f = &stats.sinks[1];
    assert!(f.lost > 0, "{f:?}");
    assert_eq!(int_field(up, "lost"), f.lost);
    assert_eq!(f.written, flaky.len() as u64);
    // Every event the pipeline produced is accounted for in the flaky sink.
    assert_eq!(f.written + f.filtered_out + f.lost, healthy.len() as u64);
    // What it did write is in order.
    assert!(flaky.windows(2).all(|w| w[0].seq < w[1].seq));
}

#[test]
fn a_panicking_writer_is_a_failing_sink_not_a_dead_pipeline() {
    let (healthy, flaky, stats) = through_a_flaky_sink(200, true);
    assert_gapless(&healthy);
    assert_eq!(of_kind(&healthy, catalog::STATEMENT_EXECUTED).len(), 200);
    let down = of_kind(&healthy, catalog::SINK_DOWN)[0];
    assert!(str_field(down, "reason").contains("panicked"), "{down:?}");
    assert_eq!(of_kind(&healthy, catalog::SINK_UP).len(), 1);
    assert!(!flaky.is_empty());
    assert!(stats.sinks[1].errors >= 1);
}

#[test]
fn a_closed_pipe_is_reported_and_does_not_stop_the_other_sinks() {
    let healthy = Shared::default();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader); // writes now fail with EPIPE
    let (pipeline, emitter) = Pipeline::builder()
        .origin("db1")
        .overflow(Overflow::Block)
        .sink(SinkSpec::new("pipe", Target::Writer(Box::new(writer))).format(Format::Text))
        .sink(SinkSpec::new(
            "healthy",
            Target::Writer(Box::new(healthy.clone())),
        ))
        .start()
        .unwrap();
    for i in 0..1_000 {
        emitter.emit(statement(i));
    }
    let stats = pipeline.shutdown().unwrap();
    let events = healthy.events();
    assert_gapless(&events);
    assert_eq!(of_kind(&events, catalog::STATEMENT_EXECUTED).len(), 1_000);
    let downs = of_kind(&events, catalog::SINK_DOWN);
    assert_eq!(downs.len(), 1, "reported once, not once per attempt");
    assert_eq!(str_field(downs[0], "sink"), "pipe");
    assert!(
        str_field(downs[0], "reason")
            .to_lowercase()
            .contains("broken pipe"),
        "{downs:?}"
    );
    let p = &stats.sinks[0];
    assert_eq!(p.written, 0);
    assert_eq!(p.lost, 1_000, "{p:?}");
    assert!(p.errors >= 1);
}

#[test]
fn configuration_errors_say_what_to_do() {
    let sink = || SinkSpec::new("out", Target::Writer(Box::new(Shared::default())));
    let err = Pipeline::builder().sink(sink()).start().unwrap_err();
    assert!(
        matches!(err, Error::NoOrigin) && err.to_string().contains("origin"),
        "{err}"
    );
    let err = Pipeline::builder().origin("db1").start().unwrap_err();
    assert!(matches!(err, Error::NoSinks), "{err}");
    let err = Pipeline::builder()
        .origin("db1")
        .sink(sink())
        .sink(sink())
        .start()
        .unwrap_err();
    assert!(
        matches!(err, Error::SinkName { ref name } if name == "out"),
        "{err}"
    );
    assert!(err.to_string().contains("unique"), "{err}");
}
