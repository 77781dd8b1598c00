//! The writer and the verifier together: seal, restart, rotate, verify.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

use std::path::{Path, PathBuf};

use vigil_event::{Event, catalog};
use vigil_seal::{
    Bookmark, CheckpointSigner, FailureKind, LineFormat, Report, SealConfig, SealKeys, Sealer,
    SyncPolicy, Verifier, VerifyError, list_segments,
};
use zeroize::Zeroizing;

const AUDIT_KEY_1: [u8; 32] = [0x11; 32];
const AUDIT_KEY_2: [u8; 32] = [0x22; 32];
const SIGNING_SEED: [u8; 32] = [0x33; 32];

fn keys(version: u32) -> SealKeys {
    let key = if version == 1 {
        AUDIT_KEY_1
    } else {
        AUDIT_KEY_2
    };
    SealKeys {
        version,
        audit_key: Zeroizing::new(key),
        signer: CheckpointSigner::new("db1", &SIGNING_SEED).unwrap(),
    }
}

fn config(dir: &Path, format: LineFormat) -> SealConfig {
    let mut cfg = SealConfig::new(dir, "db1");
    cfg.format = format;
    cfg.sync = SyncPolicy::Never;
    cfg.segment_max_bytes = 16 * 1024;
    cfg.checkpoint_every = 100;
    cfg
}

fn event(i: u64) -> Event {
    Event::new(catalog::STATEMENT_EXECUTED, "statement executed")
        .field("query", "SELECT * FROM t WHERE id = $1")
        .field("i", i)
}

fn lookup(version: u32) -> Option<Zeroizing<[u8; 32]>> {
    match version {
        1 => Some(Zeroizing::new(AUDIT_KEY_1)),
        2 => Some(Zeroizing::new(AUDIT_KEY_2)),
        _ => None,
    }
}

fn verify_with_key(dir: &Path) -> Report {
    Verifier::new()
        .keys(&lookup)
        .verify(&[dir.to_path_buf()])
        .unwrap()
}

fn verify_public(dir: &Path) -> Report {
    let vkey = CheckpointSigner::new("db1", &SIGNING_SEED)
        .unwrap()
        .verifier();
    Verifier::new()
        .public_key(vkey)
        .verify(&[dir.to_path_buf()])
        .unwrap()
}

fn write_log(dir: &Path, format: LineFormat, n: u64) {
    let (mut sealer, _) = Sealer::open(config(dir, format), keys(1)).unwrap();
    for i in 0..n {
        sealer.append(&mut event(i)).unwrap();
    }
    sealer.close().unwrap();
}

#[test]
fn sealed_log_verifies_in_every_format_with_key_and_public_key() {
    for format in [LineFormat::Json, LineFormat::Text, LineFormat::Cef] {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), format, 1_000);
        let r = verify_with_key(dir.path());
        assert!(r.verified(), "{format:?}: {:?}", r.failure);
        // 1,000 events, chain start, checkpoints every 100, segment starts, close.
        assert!(r.entries > 1_000, "{}", r.entries);
        assert_eq!(r.macs_checked, r.entries);
        assert!(r.segments > 1, "segments rotate at 16 KiB");
        assert!(r.checkpoints_checked >= 10);
        let p = verify_public(dir.path());
        assert!(p.verified(), "{format:?}: {:?}", p.failure);
        assert_eq!(p.root, r.root);
    }
}

#[test]
fn restart_and_key_rotation_continue_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), LineFormat::Json, 50);
    let (mut sealer, recovery) =
        Sealer::open(config(dir.path(), LineFormat::Json), keys(1)).unwrap();
    assert_eq!(recovery.cut_bytes, 0);
    for i in 0..50 {
        sealer.append(&mut event(i)).unwrap();
    }
    sealer.rotate_key(2, Zeroizing::new(AUDIT_KEY_2)).unwrap();
    for i in 0..50 {
        sealer.append(&mut event(i)).unwrap();
    }
    sealer.close().unwrap();
    // A restart under version 2 of the key records the rotation too.
    let (sealer, _) = Sealer::open(config(dir.path(), LineFormat::Json), keys(2)).unwrap();
    sealer.close().unwrap();
    let r = verify_with_key(dir.path());
    assert!(r.verified(), "{:?}", r.failure);
    assert_eq!(r.chains, 4, "first start, restart, rotation, restart");
    let text = segs_text(dir.path());
    assert_eq!(
        text.matches("audit.key_rotated").count(),
        1,
        "rotated once in a running writer"
    );
    // Without version 2 of the key, the rotated chain cannot be checked.
    let only_v1 = |v: u32| {
        if v == 1 {
            Some(Zeroizing::new(AUDIT_KEY_1))
        } else {
            None
        }
    };
    let r = Verifier::new()
        .keys(&only_v1)
        .verify(&[dir.path().to_path_buf()])
        .unwrap();
    assert_eq!(r.failure.unwrap().kind, FailureKind::UnknownKey);
}

#[test]
fn torn_tail_is_cut_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), LineFormat::Text, 30);
    let segs = list_segments(dir.path()).unwrap();
    let last = &segs.last().unwrap().1;
    let mut data = std::fs::read(last).unwrap();
    data.extend_from_slice(b"2026-11-26T00:00:00.000000Z info statement.exec");
    std::fs::write(last, &data).unwrap();
    let (sealer, recovery) = Sealer::open(config(dir.path(), LineFormat::Text), keys(1)).unwrap();
    assert!(recovery.cut_bytes > 0);
    sealer.close().unwrap();
    let r = verify_with_key(dir.path());
    assert!(r.verified(), "{:?}", r.failure);
    let text = std::fs::read_to_string(last).unwrap() + &segs_text(dir.path());
    assert!(text.contains("audit.recovered"), "recovery is sealed");
}

fn segs_text(dir: &Path) -> String {
    list_segments(dir)
        .unwrap()
        .iter()
        .map(|(_, p)| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[test]
fn a_flipped_byte_is_found_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), LineFormat::Json, 200);
    let segs: Vec<PathBuf> = list_segments(dir.path())
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let target = &segs[1];
    let text = std::fs::read_to_string(target).unwrap();
    let third = text.lines().nth(2).unwrap();
    let seq: u64 = third
        .split("\"seq\":")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let flipped = text.replacen("statement executed", "statement executEd", 3);
    // Only the first three lines with that message change; the first failure is the first of them.
    std::fs::write(target, flipped).unwrap();
    let r = verify_with_key(dir.path());
    let f = r.failure.expect("tampering found");
    assert_eq!(f.kind, FailureKind::Modified);
    assert_eq!(&f.file, target);
    assert!(f.seq.unwrap() <= seq);
}

#[test]
fn a_restart_under_a_new_key_version_seals_the_rotation() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), LineFormat::Cef, 10);
    let (sealer, _) = Sealer::open(config(dir.path(), LineFormat::Cef), keys(2)).unwrap();
    sealer.close().unwrap();
    let text = segs_text(dir.path());
    assert_eq!(text.matches("audit.key_rotated").count(), 1);
    let r = verify_with_key(dir.path());
    assert!(r.verified(), "{:?}", r.failure);
}

#[test]
fn a_growing_log_is_verified_from_a_bookmark() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), LineFormat::Json, 300);
    let first = verify_with_key(dir.path());
    assert!(first.verified(), "{:?}", first.failure);
    let end = first.last_seq;
    let bookmark = bookmark_after(dir.path(), end);
    assert_eq!(bookmark.seq(), end);

    // The service starts again and seals more: only the new entries are read.
    let (mut sealer, _) = Sealer::open(config(dir.path(), LineFormat::Json), keys(1)).unwrap();
    for i in 0..300 {
        sealer.append(&mut event(i)).unwrap();
    }
    sealer.close().unwrap();
    let whole = verify_with_key(dir.path());
    assert!(whole.verified(), "{:?}", whole.failure);
    let vkey = CheckpointSigner::new("db1", &SIGNING_SEED)
        .unwrap()
        .verifier();
    let resumed = Verifier::new()
        .keys(&lookup)
        .public_key(vkey.clone())
        .resume(bookmark.clone())
        .verify(&[dir.path().to_path_buf()])
        .unwrap();
    assert!(resumed.verified(), "{:?}", resumed.failure);
    assert_eq!(resumed.entries, whole.entries - end);
    assert_eq!(
        (resumed.last_seq, resumed.root),
        (whole.last_seq, whole.root)
    );
    assert_eq!(
        resumed.chains, 1,
        "the restart's chain; its key derived again"
    );

    // Kept checkpoints must be larger than the log at the bookmark.
    let kept = dir.path().join("checkpoint");
    let note = std::fs::read_to_string(&kept).unwrap();
    let with_kept = |b: Bookmark| {
        Verifier::new()
            .public_key(vkey.clone())
            .external_checkpoint(&kept, &note)
            .unwrap()
            .resume(b)
            .verify(&[dir.path().to_path_buf()])
    };
    assert!(with_kept(bookmark.clone()).unwrap().verified());
    let at_end = bookmark_after(dir.path(), whole.last_seq);
    let err = with_kept(at_end).unwrap_err();
    assert!(matches!(err, VerifyError::BadCheckpoint { .. }), "{err}");

    // What follows the bookmark is checked as usual.
    let segs = list_segments(dir.path()).unwrap();
    let last = &segs.last().unwrap().1;
    let text = std::fs::read_to_string(last).unwrap();
    let tail = text.rfind("statement executed").unwrap();
    let mut changed = text.into_bytes();
    changed[tail] = b'S';
    std::fs::write(last, changed).unwrap();
    let r = Verifier::new()
        .keys(&lookup)
        .resume(bookmark)
        .verify(&[dir.path().to_path_buf()])
        .unwrap();
    assert_eq!(r.failure.unwrap().kind, FailureKind::Modified);
}

fn bookmark_after(dir: &Path, seq: u64) -> Bookmark {
    let r = Verifier::new()
        .keys(&lookup)
        .bookmarks_after(&[seq])
        .verify(&[dir.to_path_buf()])
        .unwrap();
    r.bookmarks.into_iter().next().unwrap()
}

#[test]
fn the_writer_refuses_a_directory_of_seal_format_1() {
    let dir = tempfile::tempdir().unwrap();
    // An entry of seal format 1 (no `v` field), from the previous vectors.
    let old = r#"{"time":"2026-11-26T00:00:00.000000Z","origin":"db1","seq":1,"code":4000,"name":"audit.chain_started","category":"audit","severity":"notice","outcome":"success","message":"audit chain started","seal":{"seq":1,"key":1,"mac":"b0664f70491cb74694b6dfaef2a3201d2bf7cbeb0bdad436490df8fbc1edcf6c","start":"ZGIx"}}"#;
    let seg = dir.path().join("audit-00000000000000000001.log");
    std::fs::write(&seg, format!("{old}\n")).unwrap();
    let err = Sealer::open(config(dir.path(), LineFormat::Json), keys(1)).unwrap_err();
    assert!(matches!(err, vigil_seal::SealError::OldFormat(_)), "{err}");
    assert!(err.to_string().contains("format 1"), "{err}");
    // Nothing was cut or appended.
    assert_eq!(std::fs::read_to_string(&seg).unwrap(), format!("{old}\n"));
    // A state file of format 1 alone is refused too.
    std::fs::remove_file(&seg).unwrap();
    std::fs::write(&seg, "").unwrap();
    std::fs::write(dir.path().join("state"), "vigil-seal state v1\n").unwrap();
    let err = Sealer::open(config(dir.path(), LineFormat::Json), keys(1)).unwrap_err();
    assert!(matches!(err, vigil_seal::SealError::OldFormat(_)), "{err}");
}

#[test]
fn a_changed_seq_on_the_last_line_is_found_as_modified() {
    // With no line after it to compare, only the MAC tells a changed seq
    // from a deleted or replayed entry: the MAC verifies with the seq put
    // back.
    for format in [LineFormat::Json, LineFormat::Text, LineFormat::Cef] {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), format, 30);
        let last = &list_segments(dir.path()).unwrap().last().unwrap().1.clone();
        let text = std::fs::read_to_string(last).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let n = lines.len();
        let seq = verify_with_key(dir.path()).last_seq;
        let open = match format {
            LineFormat::Json => ",\"seal\":{\"seq\":",
            LineFormat::Text => " seal.seq=",
            LineFormat::Cef => " vigilSealSeq=",
        };
        for other in [seq - 3, seq + 7] {
            let from = format!("{open}{seq}");
            let to = format!("{open}{other}");
            let changed = lines[n - 1].replace(&from, &to);
            assert_ne!(changed, lines[n - 1]);
            let mut data = lines[..n - 1].join("\n");
            data.push('\n');
            data.push_str(&changed);
            data.push('\n');
            std::fs::write(last, data).unwrap();
            let f = verify_with_key(dir.path()).failure.unwrap();
            assert_eq!(f.kind, FailureKind::Modified, "{format:?} {other}: {f}");
            assert_eq!((f.line, f.seq), (n as u64, Some(seq)), "{format:?} {other}");
        }
    }
}

/// A log of two chains (a restart in between) with a removal entry sealed
/// for the segments before the first one whose seq is past the second
/// chain's start; returns the directory, that segment's first seq, and the
/// segments before it (not yet removed).
fn log_for_retention(format: LineFormat) -> (tempfile::TempDir, u64, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), format, 600);
    let (mut sealer, _) = Sealer::open(config(dir.path(), format), keys(1)).unwrap();
    let second_chain = sealer.next_seq();
    for i in 0..600 {
        sealer.append(&mut event(i)).unwrap();
    }
    sealer.flush().unwrap();
    let segs = list_segments(dir.path()).unwrap();
    let cut = segs
        .iter()
        .position(|(first, _)| *first > second_chain + 10)
        .unwrap();
    let first_kept = segs[cut].0;
    sealer
        .append(
            &mut Event::new(catalog::AUDIT_SEGMENTS_REMOVED, "removing audit entries")
                .field("first_seq", 1u64)
                .field("last_seq", first_kept - 1)
                .field("files", cut as u64),
        )
        .unwrap();
    for i in 0..150 {
        sealer.append(&mut event(i)).unwrap();
    }
    sealer.close().unwrap();
    let head = segs[..cut].iter().map(|(_, p)| p.clone()).collect();
    (dir, first_kept, head)
}

fn remove(paths: &[PathBuf]) {
    for p in paths {
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn a_log_trimmed_by_retention_verifies_from_its_first_segment() {
    for format in [LineFormat::Json, LineFormat::Text, LineFormat::Cef] {
        let (dir, first_kept, head) = log_for_retention(format);
        let whole = verify_with_key(dir.path());
        assert!(whole.verified(), "{format:?}: {:?}", whole.failure);
        assert_eq!(whole.trimmed, None);
        remove(&head);
        for (how, r) in [
            ("key", verify_with_key(dir.path())),
            ("public key", verify_public(dir.path())),
        ] {
            assert!(r.verified(), "{format:?} with the {how}: {:?}", r.failure);
            let t = r.trimmed.clone().unwrap();
            assert_eq!(t.first_seq, first_kept, "{format:?} {how}");
            assert!(t.removal_seq > first_kept, "{format:?} {how}: {t:?}");
            assert_eq!(r.entries, whole.last_seq - first_kept + 1);
            assert_eq!((r.last_seq, r.root), (whole.last_seq, whole.root));
        }
        let r = verify_with_key(dir.path());
        assert_eq!(r.macs_checked, r.entries, "{format:?}: every MAC checked");
    }
}

#[test]
fn a_head_removed_beyond_the_removal_entry_is_a_missing_segment() {
    let (dir, _, mut head) = log_for_retention(LineFormat::Json);
    // One segment more than the log says it removed.
    let segs = list_segments(dir.path()).unwrap();
    head.push(segs[head.len()].1.clone());
    let next = segs[head.len()].clone();
    remove(&head);
    for r in [verify_with_key(dir.path()), verify_public(dir.path())] {
        let f = r.failure.unwrap();
        assert_eq!(f.kind, FailureKind::MissingSegment, "{f}");
        assert_eq!((f.file.as_path(), f.line), (next.1.as_path(), 1), "{f}");
        assert!(
            f.message.contains("no sealed audit.segments_removed"),
            "{f}"
        );
    }
}

#[test]
fn a_head_removed_without_a_removal_entry_is_a_missing_segment() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), LineFormat::Text, 600);
    let segs = list_segments(dir.path()).unwrap();
    remove(&[segs[0].1.clone(), segs[1].1.clone()]);
    for r in [verify_with_key(dir.path()), verify_public(dir.path())] {
        let f = r.failure.unwrap();
        assert_eq!(f.kind, FailureKind::MissingSegment, "{f}");
        assert_eq!(f.file, segs[2].1, "{f}");
    }
}

#[test]
fn a_changed_anchor_is_found() {
    let (dir, first_kept, head) = log_for_retention(LineFormat::Json);
    remove(&head);
    let path = list_segments(dir.path()).unwrap()[0].1.clone();
    let text = std::fs::read_to_string(&path).unwrap();
    let first_line = text.lines().next().unwrap();
    let at = first_line.find("\"anchor\":\"1.").unwrap() + "\"anchor\":\"1.".len();
    // The previous MAC, after the origin and the chain start.
    let dots = first_line.as_bytes()[at..]
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'.');
    let mac_at = at + dots.map(|(i, _)| i).nth(1).unwrap() + 1;
    let mut changed = text.clone().into_bytes();
    changed[mac_at] = if changed[mac_at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&path, &changed).unwrap();
    let r = verify_with_key(dir.path());
    let f = r.failure.unwrap();
    assert_eq!(
        (f.kind, f.seq),
        (FailureKind::Modified, Some(first_kept)),
        "{f}"
    );
    let r = verify_public(dir.path());
    assert_eq!(r.failure.unwrap().kind, FailureKind::Fork);
}

#[test]
fn kept_checkpoints_are_checked_against_a_trimmed_log() {
    let (dir, first_kept, head) = log_for_retention(LineFormat::Cef);
    let vkey = CheckpointSigner::new("db1", &SIGNING_SEED)
        .unwrap()
        .verifier();
    // The last checkpoint, kept before the head went, still checks.
    let kept = dir.path().join("checkpoint");
    let note = std::fs::read_to_string(&kept).unwrap();
    remove(&head);
    let r = Verifier::new()
        .public_key(vkey.clone())
        .external_checkpoint(&kept, &note)
        .unwrap()
        .verify(&[dir.path().to_path_buf()])
        .unwrap();
    assert!(r.verified(), "{:?}", r.failure);
    assert_eq!(r.external_checkpoints_checked, 1);
    // One from before the cut can no longer be checked: said, not passed.
    let old = vigil_seal::Checkpoint {
        origin: "db1".into(),
        size: first_kept / 2,
        root: [0; 32],
        extensions: Vec::new(),
    };
    let old_note = CheckpointSigner::new("db1", &SIGNING_SEED)
        .unwrap()
        .sign(&old)
        .unwrap();
    let err = Verifier::new()
        .public_key(vkey)
        .external_checkpoint(&kept, &old_note)
        .unwrap()
        .verify(&[dir.path().to_path_buf()])
        .unwrap_err();
    assert!(matches!(err, VerifyError::BadCheckpoint { .. }), "{err}");
    assert!(err.to_string().contains("removed by retention"), "{err}");
}

#[test]
fn a_trimmed_log_whose_state_file_is_lost_restarts_from_its_anchor() {
    let (dir, first_kept, head) = log_for_retention(LineFormat::Text);
    remove(&head);
    std::fs::remove_file(dir.path().join("state")).unwrap();
    let (mut sealer, recovery) =
        Sealer::open(config(dir.path(), LineFormat::Text), keys(1)).unwrap();
    assert!(recovery.rebuilt);
    for i in 0..50 {
        sealer.append(&mut event(i)).unwrap();
    }
    sealer.close().unwrap();
    for r in [verify_with_key(dir.path()), verify_public(dir.path())] {
        assert!(r.verified(), "{:?}", r.failure);
        assert_eq!(r.trimmed.unwrap().first_seq, first_kept);
    }
}
