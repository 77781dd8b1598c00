//! Allocation: decoding allocates nothing, and a length or a count the peer
//! declares never makes the codec allocate it. A counting allocator with a
//! hard limit measures every byte; over the limit an allocation fails and
//! the test binary aborts.
//!
//! One test function, so that no other test thread allocates meanwhile.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

mod fixtures;

use std::alloc::System;

use bytes::BytesMut;
use cap::Cap;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use vigil_pg::{Framer, fuzz_wire};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Runs `f` with at most `budget` more bytes allocatable, and returns how
/// many bytes it allocated in all (freed ones included).
fn allocated_by(budget: usize, f: impl FnOnce()) -> usize {
    ALLOCATOR
        .set_limit(ALLOCATOR.allocated() + budget)
        .expect("limit above what is allocated");
    let before = ALLOCATOR.total_allocated();
    f();
    let total = ALLOCATOR.total_allocated() - before;
    ALLOCATOR.set_limit(usize::MAX).expect("no limit");
    total
}

fn decoding_allocates_nothing() {
    let mut decoded = 0;
    for (name, bytes) in fixtures::FRONTEND.iter().chain(fixtures::BACKEND) {
        let backend = fixtures::BACKEND.iter().any(|(n, _)| n == name);
        let mut framer = if backend {
            Framer::backend()
        } else {
            Framer::frontend()
        };
        if !backend && !fixtures::is_startup(name) {
            framer.skip_startup();
        }
        let bytes: &[u8] = bytes;
        let total = allocated_by(0, || {
            for frame in framer.frames(bytes) {
                let frame = frame.expect("frames");
                let ok = if backend {
                    frame.backend().is_ok()
                } else {
                    frame.frontend().is_ok()
                };
                assert!(ok);
                decoded += 1;
            }
        });
        assert_eq!(total, 0, "{name}: decoding allocated {total} bytes");
    }
    for (name, fe, be) in fixtures::SESSIONS {
        let total = allocated_by(0, || {
            for frame in Framer::frontend().frames(fe) {
                assert!(frame.and_then(|f| f.frontend().map(drop)).is_ok());
                decoded += 1;
            }
            for frame in Framer::backend().frames(be) {
                assert!(frame.and_then(|f| f.backend().map(drop)).is_ok());
                decoded += 1;
            }
        });
        assert_eq!(total, 0, "session {name}: decoding allocated {total} bytes");
    }
    assert!(decoded > 250, "{decoded}");
}

/// A header that declares a 1 GiB DataRow, then a trickle of its body: the
/// framer waits without reserving anything.
fn declared_lengths_are_not_allocated() {
    let mut buf = BytesMut::with_capacity(1 << 16);
    buf.extend_from_slice(b"D\x3f\xff\xff\xfe\xff\xff");
    let mut framer = Framer::backend();
    let total = allocated_by(0, || {
        assert!(matches!(framer.next(&mut buf), Ok(None)));
        assert_eq!(framer.peek(&buf).unwrap().unwrap().frame_len, 0x3fff_ffff);
    });
    assert_eq!(total, 0);
    // The same through the slice framer and at the end of input.
    let total = allocated_by(0, || {
        assert!(matches!(framer.next_ref(&buf), Ok(None)));
        assert!(framer.finish(&buf).is_err());
    });
    assert_eq!(total, 0);
}

/// Random and mutated input through the fuzz check (framing whole and in
/// pieces, decoding, re-encoding): what it allocates grows with the input,
/// never with what the input declares.
fn hostile_input_allocates_in_proportion() {
    let corpus: Vec<Vec<u8>> = fixtures::FRONTEND
        .iter()
        .chain(fixtures::BACKEND)
        .map(|(_, b)| b.to_vec())
        .chain(fixtures::SESSIONS.iter().map(|(_, _, b)| b.to_vec()))
        .collect();
    let strategy = (
        any::<u8>(),
        any::<prop::sample::Index>(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<i32>()), 0..4),
        proptest::collection::vec(any::<u8>(), 0..64),
    );
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        failure_persistence: None,
        ..Config::default()
    });
    let worst = std::cell::Cell::new(0.0f64);
    runner
        .run(&strategy, |(control, pick, patches, tail)| {
            // A fixture with 32-bit fields overwritten (lengths, counts) and
            // random bytes appended.
            let mut input = vec![control];
            input.extend_from_slice(&corpus[pick.index(corpus.len())]);
            for (at, value) in patches {
                if input.len() > 5 {
                    let at = 1 + at.index(input.len() - 4);
                    input[at..at + 4].copy_from_slice(&value.to_be_bytes());
                }
            }
            input.extend_from_slice(&tail);
            let budget = 64 * 1024 + 64 * input.len();
            let total = allocated_by(budget, || fuzz_wire(&input));
            worst.set(worst.get().max(total as f64 / input.len() as f64));
            prop_assert!(
                total <= budget,
                "{total} bytes for {} of input",
                input.len()
            );
            Ok(())
        })
        .unwrap();
    eprintln!("at most {:.1} bytes allocated per input byte", worst.get());
}

#[test]
fn allocation() {
    decoding_allocates_nothing();
    declared_lengths_are_not_allocated();
    hostile_input_allocates_in_proportion();
}
