//! Writers and readers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use vigil_event::{Event, Kind, Value, catalog};

/// An in-memory sink any number of handles can read.
#[derive(Clone, Debug, Default)]
pub struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }

    /// Every line, parsed as vigil JSON.
    pub fn events(&self) -> Vec<Event> {
        parse_json_lines(&self.bytes())
    }
}

/// Parses JSON lines; every line must end with `\n` and parse.
pub fn parse_json_lines(bytes: &[u8]) -> Vec<Event> {
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "output does not end with a newline"
    );
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            Event::from_json(l)
                .unwrap_or_else(|e| panic!("bad line {:?}: {e}", String::from_utf8_lossy(l)))
        })
        .collect()
}

/// A writer whose first write blocks until the test releases it.
#[derive(Debug)]
pub struct Gated {
    out: Shared,
    entered: Option<mpsc::Sender<()>>,
    release: Option<mpsc::Receiver<()>>,
}

/// The test's side of a [`Gated`] writer.
#[derive(Debug)]
pub struct Gate {
    entered: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

impl Gate {
    /// Waits until the worker is blocked in the writer.
    pub fn wait_entered(&self) {
        self.entered
            .recv_timeout(Duration::from_secs(10))
            .expect("the writer was never called");
    }
    pub fn release(&self) {
        self.release.send(()).unwrap();
    }
}

pub fn gated() -> (Gated, Gate, Shared) {
    let out = Shared::default();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let writer = Gated {
        out: out.clone(),
        entered: Some(entered_tx),
        release: Some(release_rx),
    };
    (
        writer,
        Gate {
            entered: entered_rx,
            release: release_tx,
        },
        out,
    )
}

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(release) = self.release.take() {
            if let Some(entered) = self.entered.take() {
                let _ = entered.send(());
            }
            let _ = release.recv();
        }
        self.out.write_all(buf).map(|()| buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A writer that fails (or panics) while `failing` is set.
#[derive(Debug)]
pub struct Flaky {
    pub out: Shared,
    pub failing: Arc<AtomicBool>,
    pub panics: bool,
}

impl Flaky {
    pub fn new(panics: bool) -> (Flaky, Arc<AtomicBool>, Shared) {
        let out = Shared::default();
        let failing = Arc::new(AtomicBool::new(true));
        (
            Flaky {
                out: out.clone(),
                failing: failing.clone(),
                panics,
            },
            failing,
            out,
        )
    }
}

impl Write for Flaky {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failing.load(Ordering::SeqCst) {
            if self.panics {
                panic!("the test writer exploded");
            }
            return Err(io::Error::other("disk on fire"));
        }
        self.out.write_all(buf).map(|()| buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(io::Error::other("disk on fire"));
        }
        Ok(())
    }
}

/// Polls `cond` every 5 ms for up to `timeout`.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The event the tests emit.
pub fn statement(i: u64) -> Event {
    Event::new(catalog::STATEMENT_EXECUTED, "statement executed").field("i", i)
}

/// An integer field, however the format carried it.
pub fn int_field(ev: &Event, key: &str) -> u64 {
    match ev.field_value(key) {
        Some(Value::Int(n)) => u64::try_from(*n).unwrap(),
        Some(Value::Str(s)) => s.parse().unwrap(),
        other => panic!("{:?} has no integer field {key}: {other:?}", ev.kind),
    }
}

pub fn str_field(ev: &Event, key: &str) -> String {
    match ev.field_value(key) {
        Some(v) => v.to_string(),
        None => panic!("{:?} has no field {key}", ev.kind),
    }
}

pub fn of_kind(events: &[Event], kind: Kind) -> Vec<&Event> {
    events.iter().filter(|e| e.kind == kind).collect()
}

/// Asserts the seqs are exactly 1..=n, in order.
pub fn assert_gapless(events: &[Event]) {
    for (i, ev) in events.iter().enumerate() {
        assert_eq!(ev.seq, i as u64 + 1, "seq gap or reorder at line {}", i + 1);
    }
}
