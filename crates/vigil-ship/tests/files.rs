//! File sinks: permissions, flushing, and a clean shutdown that loses nothing.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::Duration;

use vigil_event::{Event, Overflow, catalog};
use vigil_ship::{Error, Pipeline, SinkSpec, Target};

use common::*;

fn file_sink(path: &std::path::Path) -> SinkSpec {
    SinkSpec::new("file", Target::File(path.to_owned()))
}

#[test]
fn clean_shutdown_loses_nothing() {
    const PRODUCERS: u64 = 4;
    const EACH: u64 = 25_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let (pipeline, emitter) = Pipeline::builder()
        .origin("db1")
        .sink(file_sink(&path))
        .start()
        .unwrap();
    let threads: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let emitter = emitter.clone();
            thread::spawn(move || (0..EACH).for_each(|i| emitter.emit(statement(p * EACH + i))))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = pipeline.shutdown().unwrap();

    let n = PRODUCERS * EACH;
    let text = fs::read(&path).unwrap();
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len() as u64, n);
    let mut seen = vec![false; n as usize + 1];
    let mut payloads = vec![false; n as usize];
    for line in lines {
        let ev = Event::from_json(line)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)));
        assert_eq!(ev.kind, catalog::STATEMENT_EXECUTED);
        assert_eq!(&*ev.origin, "db1");
        let seq = usize::try_from(ev.seq).unwrap();
        assert!((1..=n as usize).contains(&seq), "seq {seq} out of range");
        assert!(!seen[seq], "seq {seq} twice");
        seen[seq] = true;
        payloads[int_field(&ev, "i") as usize] = true;
    }
    assert!(payloads.iter().all(|p| *p), "an emitted event is missing");
    assert_eq!(
        (stats.accepted, stats.dropped, stats.sinks[0].written),
        (n, 0, n)
    );
}

#[test]
fn file_is_created_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.jsonl");
    let (pipeline, _emitter) = Pipeline::builder()
        .origin("db1")
        .sink(file_sink(&path))
        .start()
        .unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "created with {mode:o}");
    pipeline.shutdown().unwrap();
}

#[test]
fn existing_file_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.jsonl");
    fs::write(&path, b"").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let err = Pipeline::builder()
        .origin("db1")
        .sink(file_sink(&path))
        .start()
        .unwrap_err();
    assert!(
        matches!(err, Error::FileMode { mode: 0o644, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("chmod 600 {}", path.display())),
        "{msg}"
    );
    assert!(msg.contains("0644") && msg.contains("sink `file`"), "{msg}");
    // Refused means untouched.
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
}

#[test]
fn existing_0600_file_is_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.jsonl");
    fs::write(&path, b"").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    for round in 0..2 {
        let (pipeline, emitter) = Pipeline::builder()
            .origin("db1")
            .sink(file_sink(&path))
            .start()
            .unwrap();
        emitter.emit(statement(round));
        pipeline.shutdown().unwrap();
    }
    let events = parse_json_lines(&fs::read(&path).unwrap());
    let payloads: Vec<u64> = events.iter().map(|e| int_field(e, "i")).collect();
    assert_eq!(payloads, [0, 1]);
}

#[test]
fn unopenable_file_names_path_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("events.jsonl");
    let err = Pipeline::builder()
        .origin("db1")
        .sink(file_sink(&path))
        .start()
        .unwrap_err();
    assert!(matches!(err, Error::OpenFile { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("directory"),
        "{msg}"
    );
}

#[test]
fn an_event_reaches_the_file_within_the_flush_interval_without_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.jsonl");
    let (pipeline, emitter) = Pipeline::builder()
        .origin("db1")
        .flush_interval(Duration::from_millis(100))
        .sink(file_sink(&path))
        .start()
        .unwrap();
    emitter.emit(statement(7));
    let appeared = wait_until(Duration::from_secs(2), || {
        fs::read(&path).is_ok_and(|b| b.ends_with(b"\n"))
    });
    assert!(appeared, "the event is still buffered");
    let events = parse_json_lines(&fs::read(&path).unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].seq, int_field(&events[0], "i")), (1, 7));
    assert_eq!(pipeline.stats().sinks[0].written, 1);
    drop(pipeline);
}

#[test]
fn dropping_the_pipeline_drains_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropped.jsonl");
    let (pipeline, emitter) = Pipeline::builder()
        .origin("db1")
        .overflow(Overflow::Block)
        .flush_interval(Duration::from_secs(3600))
        .sink(file_sink(&path))
        .start()
        .unwrap();
    for i in 0..5_000 {
        emitter.emit(statement(i));
    }
    drop(pipeline);
    let events = parse_json_lines(&fs::read(&path).unwrap());
    assert_eq!(events.len(), 5_000);
    assert_gapless(&events);
    // After the pipeline is gone, emitting neither blocks nor panics.
    emitter.emit(statement(5_000));
    assert_eq!(emitter.dropped_total(), 1);
}
