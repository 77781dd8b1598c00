//! `vigil audit append|checkpoint` and `vigil verify`: the sealed audit log
//! from the command line.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use vigil_event::{Emitter, Event, Format};
use vigil_keys::{AUDIT_HMAC, CHECKPOINT_SIGNING, FileBackend, KeyStore, MasterKey};
use vigil_seal::{
    CheckpointSigner, CheckpointVerifier, LineFormat, Report, SealConfig, SealKeys, Sealer,
    SyncPolicy, Verifier, list_segments, split_sealed,
};
use zeroize::Zeroizing;

use crate::cli::{EXIT_BAD_INPUT, EXIT_USAGE};

/// `vigil audit …`
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Seal newline-delimited vigil JSON events from standard input into DIR.
    Append(AppendArgs),
    /// Print the latest signed checkpoint of DIR (keep a copy off the host).
    Checkpoint {
        /// The audit directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

/// `vigil prove …`
#[derive(Debug, Args)]
pub(crate) struct ProveArgs {
    /// The audit directory.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The entry to prove.
    #[arg(long, value_name = "N")]
    seq: u64,
    /// The checkpoint to prove it against (default: DIR/checkpoint).
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
}

/// `vigil verify-proof …`
#[derive(Debug, Args)]
pub(crate) struct VerifyProofArgs {
    /// The proof, as printed by `vigil prove`.
    #[arg(value_name = "FILE")]
    proof: PathBuf,
    /// The checkpoint verifier key (from `vigil keys public`), or @FILE.
    #[arg(long, value_name = "VKEY")]
    public_key: String,
}

/// Prints an inclusion proof of one entry against a checkpoint: the entry,
/// its index, the proof hashes and the signed note, as JSON.
pub(crate) fn prove(args: ProveArgs) -> anyhow::Result<ExitCode> {
    let cp_path = args
        .checkpoint
        .unwrap_or_else(|| args.dir.join("checkpoint"));
    let note = std::fs::read_to_string(&cp_path)
        .with_context(|| format!("cannot read checkpoint {}", cp_path.display()))?;
    let cp = vigil_seal::parse_note_unverified(&note)
        .with_context(|| format!("{} is not a checkpoint note", cp_path.display()))?;
    if args.seq == 0 || args.seq > cp.size {
        eprintln!(
            "vigil prove: seq {} is not covered by the checkpoint, which covers seq 1..{}",
            args.seq, cp.size
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let segments =
        list_segments(&args.dir).with_context(|| format!("cannot read {}", args.dir.display()))?;
    // A log whose first segments retention removed: the tree before the
    // first segment left comes from that segment's anchor.
    let before = match segments.first() {
        Some((first, path)) if *first > 1 => {
            if args.seq < *first {
                eprintln!(
                    "vigil prove: seq {} was removed by retention; the log starts at seq {first}",
                    args.seq
                );
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            let line = first_line(path)?;
            let tree = LineFormat::detect(&line)
                .and_then(|f| vigil_seal::anchor_tree(f, &line, *first))
                .with_context(|| {
                    format!(
                        "{}: the log starts at seq {first} but its first entry carries no anchor",
                        path.display()
                    )
                })?;
            if cp.size <= tree.size() {
                eprintln!(
                    "vigil prove: the checkpoint covers seq 1..{}, all removed by retention",
                    cp.size
                );
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            tree
        }
        _ => vigil_seal::Tree::new(),
    };
    let known = |leaves: &Vec<vigil_seal::Hash>| before.size() + leaves.len() as u64;
    let mut leaves = Vec::with_capacity(usize::try_from(cp.size - before.size()).unwrap_or(0));
    let mut entry = None;
    'files: for (_, path) in &segments {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        for line in io::BufReader::new(file).split(b'\n') {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            if known(&leaves) == cp.size {
                break 'files;
            }
            // A line that is no entry (verify reports it) has the leaf of
            // its bytes as they are, as the writer's recovery gives it.
            let format = LineFormat::detect(&line);
            let leaf = format.and_then(|f| vigil_seal::entry_leaf(f, &line).ok());
            leaves.push(leaf.unwrap_or_else(|| vigil_seal::leaf_hash(&line)));
            if known(&leaves) == args.seq {
                entry = Some(String::from_utf8(line).context("the entry is not UTF-8")?);
            }
        }
    }
    let (Some(entry), true) = (entry, known(&leaves) == cp.size) else {
        eprintln!(
            "vigil prove: the log has {} entries, fewer than the checkpoint's {}",
            known(&leaves),
            cp.size
        );
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    };
    let proof = vigil_seal::inclusion_proof_after(&before, &leaves, args.seq - 1)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = serde_json::json!({
        "origin": cp.origin,
        "seq": args.seq,
        "index": args.seq - 1,
        "tree_size": cp.size,
        "entry": entry,
        "proof": proof.iter().map(vigil_seal::hash_to_hex).collect::<Vec<_>>(),
        "checkpoint": note,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

/// Checks a proof from `vigil prove` with the public key only.
pub(crate) fn verify_proof(args: VerifyProofArgs) -> anyhow::Result<ExitCode> {
    let verifier = parse_vkey(&args.public_key)?;
    let text = std::fs::read_to_string(&args.proof)
        .with_context(|| format!("cannot read {}", args.proof.display()))?;
    let fail = |msg: String| {
        println!("NOT PROVEN: {msg}");
        Ok(ExitCode::from(EXIT_BAD_INPUT))
    };
    let v: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return fail(format!("{} is not a proof: {e}", args.proof.display())),
    };
    let (Some(entry), Some(seq), Some(note), Some(proof)) = (
        v["entry"].as_str(),
        v["seq"].as_u64(),
        v["checkpoint"].as_str(),
        v["proof"].as_array(),
    ) else {
        return fail("the proof lacks entry, seq, checkpoint or proof".into());
    };
    let cp = match verifier.verify(note) {
        Ok(cp) => cp,
        Err(e) => return fail(format!("the checkpoint's signature does not verify: {e}")),
    };
    let hashes: Option<Vec<[u8; 32]>> = proof
        .iter()
        .map(|h| h.as_str().and_then(vigil_seal::hash_from_hex))
        .collect();
    let Some(hashes) = hashes else {
        return fail("a proof hash is not 64 hex digits".into());
    };
    let Some(format) = LineFormat::detect(entry.as_bytes()) else {
        return fail(format!("the entry is not sealed entry {seq}"));
    };
    let sealed_seq = split_sealed(format, entry.as_bytes())
        .ok()
        .map(|(_, s)| s.seq);
    let leaf = vigil_seal::entry_leaf(format, entry.as_bytes());
    let (Some(sealed_seq), Ok(leaf)) = (sealed_seq, leaf) else {
        return fail(format!("the entry is not sealed entry {seq}"));
    };
    if sealed_seq != seq {
        return fail(format!("the entry is not sealed entry {seq}"));
    }
    match vigil_seal::verify_inclusion(&leaf, seq - 1, cp.size, &hashes, &cp.root) {
        Ok(()) => {
            println!(
                "proven: entry {seq} is in the audit log of {} as checkpointed at {} entries",
                cp.origin, cp.size
            );
            println!("{entry}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(format!("the inclusion proof does not verify: {e}")),
    }
}

fn parse_vkey(arg: &str) -> anyhow::Result<CheckpointVerifier> {
    let text = match arg.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the public key file {file}"))?,
        None => arg.to_owned(),
    };
    CheckpointVerifier::parse(text.trim()).map_err(|e| anyhow::anyhow!("public key: {e}"))
}

#[derive(Debug, Args)]
pub(crate) struct AppendArgs {
    /// The audit directory (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The key directory; the master key comes from VIGIL_MASTER_KEY.
    #[arg(long, value_name = "DIR")]
    key_dir: PathBuf,
    /// Line format of the segment files.
    #[arg(long, default_value = "json", value_parser = ["json", "text", "cef"])]
    format: String,
    /// Instance id sealed on every entry (default: the host name).
    #[arg(long)]
    origin: Option<String>,
    /// When entries reach the disk.
    #[arg(long, default_value = "interval", value_parser = ["always", "interval", "never"])]
    sync: String,
    /// Print `durable SEQ` on standard output each time more entries are
    /// on disk, and write each line to the file as it arrives.
    #[arg(long)]
    ack: bool,
}

/// `vigil verify …`
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Segment files or audit directories, in any order.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Check every MAC with the audit keys of this key directory (needs VIGIL_MASTER_KEY).
    #[arg(long, value_name = "DIR")]
    key_dir: Option<PathBuf>,
    /// Check the Merkle tree and checkpoint signatures with this verifier key
    /// (from `vigil keys public`), or @FILE holding it.
    #[arg(long, value_name = "VKEY")]
    public_key: Option<String>,
    /// A checkpoint kept off the host; the log must still extend it. Repeatable.
    #[arg(long, value_name = "FILE")]
    checkpoint: Vec<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Verify audit logs written by Acra instead (files in chain order).
    #[arg(long, requires = "acra_key")]
    acra: bool,
    /// Format of the Acra logs.
    #[arg(long, requires = "acra", default_value = "plaintext", value_parser = ["plaintext", "json", "cef"])]
    format: String,
    /// Acra's audit key, 64 hex digits.
    #[arg(long, requires = "acra", group = "acra_key", value_name = "HEX")]
    key_hex: Option<String>,
    /// A file holding Acra's audit key (32 raw bytes or 64 hex digits).
    #[arg(long, requires = "acra", group = "acra_key", value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// With --acra: also fail on a missing end of the last chain and on unsigned lines inside a chain.
    #[arg(long, requires = "acra")]
    strict: bool,
}

fn verify_acra(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    use vigil_seal::acra::{AcraFormat, AcraVerifier};
    let format: AcraFormat = match args.format.parse() {
        Ok(f) => f,
        Err(e) => anyhow::bail!("{e}"),
    };
    let verifier = match (&args.key_hex, &args.key_file) {
        (Some(hex), _) => AcraVerifier::from_key_hex(format, hex),
        (None, Some(file)) => AcraVerifier::from_key_file(format, file),
        (None, None) => anyhow::bail!("--acra needs --key-hex HEX or --key-file FILE"),
    };
    let verifier = match verifier {
        Ok(v) => v.strict(args.strict),
        Err(e) => {
            eprintln!("vigil verify: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    match verifier.verify(&args.paths) {
        Ok(report) => {
            println!("{report}");
            Ok(if report.is_verified() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_BAD_INPUT)
            })
        }
        Err(e) => {
            eprintln!("vigil verify: {e}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
    }
}

pub(crate) fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Append(args) => append(args),
        AuditCommand::Checkpoint { dir } => {
            let path = dir.join("checkpoint");
            let note = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "cannot read {}; a checkpoint exists once the log has one",
                    path.display()
                )
            })?;
            print!("{note}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) fn open_store(key_dir: &Path, events: Option<&Emitter>) -> anyhow::Result<KeyStore> {
    let master = MasterKey::from_env(events).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(KeyStore::new(
        FileBackend::new(key_dir),
        master,
        events.cloned(),
    ))
}

/// The command's own events: key loads, recovery, rotation, failures. Once
/// the log is open they are sealed into it; all are shown on standard
/// error as text.
struct Reporter {
    emitter: Emitter,
    rx: vigil_event::Receiver,
    origin: std::sync::Arc<str>,
}

impl Reporter {
    fn new(origin: &str) -> Reporter {
        let (emitter, rx) = Emitter::channel(4096, vigil_event::Overflow::Drop);
        Reporter {
            emitter,
            rx,
            origin: std::sync::Arc::from(origin),
        }
    }

    /// Seals (when the log is open) and shows every event reported so far.
    fn drain(&self, mut sealer: Option<&mut Sealer>) {
        while let Some(queued) = self.rx.try_recv() {
            let mut event = queued.event;
            match sealer.as_deref_mut() {
                // A failure to seal is itself reported by the caller.
                Some(s) => drop(s.append(&mut event)),
                None => event.origin = self.origin.clone(),
            }
            show(&event);
        }
    }
}

/// Writes one event to standard error as text.
fn show(event: &Event) {
    let mut line = Vec::with_capacity(256);
    Format::Text.write(event, &mut line);
    line.push(b'\n');
    let _ = io::stderr().lock().write_all(&line);
}

fn append(args: AppendArgs) -> anyhow::Result<ExitCode> {
    let origin = args.origin.clone().unwrap_or_else(crate::config::host_name);
    let reporter = Reporter::new(&origin);
    let opened = open_sealer(&args, origin, &reporter);
    let (store, mut sealer) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            reporter.drain(None);
            return Err(e);
        }
    };
    // Key loads happened before the log was open: seal them now.
    reporter.drain(Some(&mut sealer));
    for event in sealer.take_generated() {
        if event.kind == vigil_event::catalog::AUDIT_RECOVERED {
            show(&event);
        }
    }
    let result = append_lines(&args, &store, &mut sealer, &reporter);
    let closed = sealer.close();
    reporter.drain(None);
    let code = result?;
    if let Err(e) = closed {
        show(&write_failed(&e));
        anyhow::bail!("{e}");
    }
    Ok(code)
}

fn open_sealer(
    args: &AppendArgs,
    origin: String,
    reporter: &Reporter,
) -> anyhow::Result<(KeyStore, Sealer)> {
    let mut cfg = SealConfig::new(&args.dir, origin);
    cfg.format = LineFormat::from_name(&args.format).unwrap_or(LineFormat::Json);
    cfg.sync = match args.sync.as_str() {
        "always" => SyncPolicy::Always,
        "never" => SyncPolicy::Never,
        _ => SyncPolicy::Interval(SyncPolicy::DEFAULT_INTERVAL),
    };
    open_audit(&args.key_dir, cfg, &reporter.emitter)
}

/// The writer settings of an `[audit]` configuration.
pub(crate) fn seal_config(audit: &crate::config::AuditConfig, origin: &str) -> SealConfig {
    let mut cfg = SealConfig::new(&audit.dir, origin);
    cfg.format = audit.format;
    cfg.sync = audit.sync;
    cfg.segment_max_bytes = audit.segment_max_bytes;
    cfg.segment_max_age = audit.segment_max_age;
    cfg.checkpoint_every = audit.checkpoint_every;
    cfg.checkpoint_interval = audit.checkpoint_interval;
    cfg
}

/// Loads the audit and checkpoint keys from `key_dir` (reporting each load
/// to `events`) and opens the audit log, recovering it if needed.
pub(crate) fn open_audit(
    key_dir: &Path,
    cfg: SealConfig,
    events: &Emitter,
) -> anyhow::Result<(KeyStore, Sealer)> {
    let store = open_store(key_dir, Some(events))?;
    let sealer = seal_with(&store, cfg, events)?;
    Ok((store, sealer))
}

/// Opens the audit log with the keys of `store`, recovering it if needed.
pub(crate) fn seal_with(
    store: &KeyStore,
    cfg: SealConfig,
    events: &Emitter,
) -> anyhow::Result<Sealer> {
    let (version, audit_key) = store.load_current(AUDIT_HMAC)?;
    let (_, seed) = store.load_current(CHECKPOINT_SIGNING)?;
    let signer = CheckpointSigner::new(cfg.origin.clone(), seed.expose())
        .map_err(|e| anyhow::anyhow!("checkpoint key: {e}"))?;
    let keys = SealKeys {
        version,
        audit_key: Zeroizing::new(*audit_key.expose()),
        signer,
    };
    match Sealer::open(cfg, keys) {
        Ok((sealer, _recovery)) => Ok(sealer),
        Err(e) => {
            events.emit(write_failed(&e));
            Err(e.into())
        }
    }
}

/// Seals standard input line by line; returns the exit status.
fn append_lines(
    args: &AppendArgs,
    store: &KeyStore,
    sealer: &mut Sealer,
    reporter: &Reporter,
) -> anyhow::Result<ExitCode> {
    let mut rejected = 0u64;
    let mut sealed = 0u64;
    // With --ack, a thread reports durability as the group commits land.
    let acker = args.ack.then(|| spawn_acker(sealer.durable()));
    // SIGUSR1 rotates the audit key: a new version in the keystore, and a
    // new chain under it, linked to the old one.
    let rotate = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, rotate.clone())
        .context("cannot install the SIGUSR1 handler")?;
    let result = (|| -> anyhow::Result<()> {
        for (i, line) in io::stdin().lock().split(b'\n').enumerate() {
            let line = line.context("cannot read standard input")?;
            if rotate.swap(false, std::sync::atomic::Ordering::AcqRel) {
                rotate_audit_key(store, sealer, reporter)?;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let mut event = match Event::from_json(line) {
                Ok(event) => event,
                Err(e) => {
                    rejected += 1;
                    eprintln!("vigil audit append: stdin:{}: {e}; line not sealed", i + 1);
                    continue;
                }
            };
            let appended = sealer.append(&mut event).map(|_| ());
            if let Some(e) = appended.err().or_else(|| sealer.take_error()) {
                reporter.emitter.emit(write_failed(&e));
                anyhow::bail!(
                    "{e}; {} entries are in the log before it",
                    sealer.next_seq() - 1
                );
            }
            sealed += 1;
            // Checkpoints and segment starts are sealed; nothing else to do with them here.
            drop(sealer.take_generated());
            if args.ack {
                // Hand each line to the operating system at once, for the syncer.
                sealer.flush()?;
            }
        }
        Ok(())
    })();
    if let Some((stop, handle)) = acker {
        // Sync what is written, so the last acknowledgement covers it.
        let _ = sealer.flush();
        sealer
            .durable()
            .wait(sealer.next_seq() - 1, std::time::Duration::from_secs(5));
        stop.store(true, std::sync::atomic::Ordering::Release);
        let _ = handle.join();
    }
    result?;
    eprintln!(
        "vigil audit append: sealed {sealed} events into {}",
        args.dir.display()
    );
    if rejected > 0 {
        eprintln!("vigil audit append: {rejected} line(s) rejected");
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }
    Ok(ExitCode::SUCCESS)
}

type Acker = (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
);

/// Prints `durable N` each time entries up to N are on disk, until stopped;
/// then prints the final state once more.
fn spawn_acker(durable: vigil_seal::DurableHandle) -> Acker {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut acked = 0u64;
        let mut out = io::stdout();
        loop {
            let stopping = flag.load(Ordering::Acquire);
            durable.wait(acked + 1, std::time::Duration::from_millis(20));
            let synced = durable.synced();
            if synced > acked {
                acked = synced;
                if writeln!(out, "durable {synced}")
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return;
                }
            }
            if stopping {
                return;
            }
        }
    });
    (stop, handle)
}

fn rotate_audit_key(
    store: &KeyStore,
    sealer: &mut Sealer,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    reporter.emitter.emit(Event::new(
        vigil_event::catalog::SIGNAL_SIGUSR1,
        "SIGUSR1 received: rotating the audit key",
    ));
    let rotated = store
        .rotate(AUDIT_HMAC)
        .and_then(|v| Ok((v, store.load(AUDIT_HMAC, v)?)));
    reporter.drain(Some(sealer));
    let (version, key) = rotated?;
    sealer
        .rotate_key(version, Zeroizing::new(*key.expose()))
        .inspect_err(|e| {
            reporter.emitter.emit(write_failed(e));
        })?;
    for event in sealer.take_generated() {
        if event.kind == vigil_event::catalog::AUDIT_KEY_ROTATED {
            show(&event);
        }
    }
    Ok(())
}

fn write_failed(e: &vigil_seal::SealError) -> Event {
    Event::new(
        vigil_event::catalog::AUDIT_WRITE_FAILED,
        format!("the audit log cannot be written: {e}"),
    )
    .field("reason", e.to_string())
}

/// The segment files `paths` name (files, or directories of segments),
/// ordered by first seq.
fn log_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut segments = Vec::new();
    for p in paths {
        if p.is_dir() {
            segments.extend(list_segments(p).unwrap_or_default());
        } else {
            segments.push((0, p.clone()));
        }
    }
    segments.sort();
    segments.into_iter().map(|(_, p)| p).collect()
}

/// The origin that starts the log's first chain, read from its first line.
fn log_origin(paths: &[PathBuf]) -> Option<String> {
    let segments = log_files(paths);
    let first = segments.first()?;
    let file = std::fs::File::open(first).ok()?;
    let mut line = Vec::new();
    io::BufReader::new(file).read_until(b'\n', &mut line).ok()?;
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    [LineFormat::Json, LineFormat::Text, LineFormat::Cef]
        .into_iter()
        .find_map(|f| split_sealed(f, line).ok().and_then(|(_, s)| s.start))
}

pub(crate) fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if args.acra {
        return verify_acra(&args);
    }
    if args.key_dir.is_none() && args.public_key.is_none() {
        eprintln!(
            "vigil verify: give --key-dir DIR (with VIGIL_MASTER_KEY) to check MACs, \
             or --public-key VKEY to check checkpoints"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let store = args
        .key_dir
        .as_deref()
        .map(|dir| open_store(dir, None))
        .transpose()?;
    let lookup = |version: u32| {
        let store = store.as_ref()?;
        let secret = store.load(AUDIT_HMAC, version).ok()?;
        Some(Zeroizing::new(*secret.expose()))
    };
    let public = match (&args.public_key, &store) {
        (Some(vkey), _) => Some(parse_vkey(vkey)?),
        // With the key directory, derive the verifier from the signing key.
        (None, Some(store)) => match (
            log_origin(&args.paths),
            store.load_current(CHECKPOINT_SIGNING),
        ) {
            (Some(origin), Ok((_, seed))) => CheckpointSigner::new(origin, seed.expose())
                .ok()
                .map(|s| s.verifier()),
            _ => None,
        },
        (None, None) => None,
    };
    let total: u64 = log_files(&args.paths)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let progress_bar = |bytes: u64| {
        const WIDTH: u64 = 30;
        let done = (bytes.min(total) * WIDTH)
            .checked_div(total)
            .unwrap_or(WIDTH);
        let bar: String = (0..WIDTH)
            .map(|i| if i < done { '#' } else { '.' })
            .collect();
        eprint!(
            "\rvigil verify: [{bar}] {} of {} MiB",
            bytes.min(total) >> 20,
            total >> 20
        );
    };
    let mut verifier = Verifier::new();
    if store.is_some() {
        verifier = verifier.keys(&lookup);
    }
    if let Some(p) = public {
        verifier = verifier.public_key(p);
    }
    if io::stderr().is_terminal() && !args.json {
        verifier = verifier.progress(&progress_bar);
    }
    for path in &args.checkpoint {
        let note = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
        verifier = verifier
            .external_checkpoint(path, &note)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let report = match verifier.verify(&args.paths) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil verify: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    if io::stderr().is_terminal() && !args.json {
        eprint!("\r\x1b[K");
    }
    print_report(&report, args.json)?;
    Ok(if report.verified() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BAD_INPUT)
    })
}

fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn print_report(r: &Report, json: bool) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    if json {
        let failure = r.failure.as_ref().map(|f| {
            serde_json::json!({
                "kind": f.kind.as_str(),
                "file": f.file.display().to_string(),
                "line": f.line,
                "seq": f.seq,
                "message": f.message,
            })
        });
        let v = serde_json::json!({
            "verified": r.verified(),
            "entries": r.entries,
            "segments": r.segments,
            "last_seq": r.last_seq,
            "macs_checked": r.macs_checked,
            "checkpoints_checked": r.checkpoints_checked,
            "external_checkpoints_checked": r.external_checkpoints_checked,
            "chains": r.chains,
            "root": vigil_seal::hash_to_hex(&r.root),
            "format": r.format.map(|f| f.as_str()),
            "trimmed": r.trimmed.as_ref().map(|t| serde_json::json!({
                "first_seq": t.first_seq,
                "removal_seq": t.removal_seq,
            })),
            "failure": failure,
        });
        writeln!(out, "{v}")?;
        return Ok(());
    }
    match &r.failure {
        None => {
            writeln!(
                out,
                "verified: {} (seq {}..{}) in {}; {}, {}, {}; root {}",
                count(r.entries, "entry", "entries"),
                r.last_seq + 1 - r.entries.min(r.last_seq),
                r.last_seq,
                count(r.segments, "segment", "segments"),
                count(r.macs_checked, "MAC", "MACs"),
                count(r.checkpoints_checked, "checkpoint", "checkpoints"),
                count(
                    r.external_checkpoints_checked,
                    "kept checkpoint",
                    "kept checkpoints"
                ),
                vigil_seal::hash_to_hex(&r.root)
            )?;
            if let Some(t) = &r.trimmed {
                writeln!(
                    out,
                    "entries 1..{} were removed by retention, as the entry at seq {} records",
                    t.first_seq - 1,
                    t.removal_seq
                )?;
            }
        }
        Some(f) => writeln!(
            out,
            "TAMPERED: {f}\n({} entries verified before it)",
            r.entries
        )?,
    }
    Ok(())
}

/// The first line of a file, without its newline.
fn first_line(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut line = Vec::new();
    io::BufReader::new(file)
        .read_until(b'\n', &mut line)
        .with_context(|| format!("cannot read {}", path.display()))?;
    line.pop_if(|b| *b == b'\n');
    Ok(line)
}
