//! `vigil keys`: generate, list and rotate keys, and print the public key
//! that verifies audit checkpoints.
//!
//! Keys live in a key directory (`--key-dir`) or a Redis key database
//! (`--redis`), encrypted under the master key from `VIGIL_MASTER_KEY`.
//! Results go to standard output and never include key material; the
//! keystore's events go to standard error as text; an error is one line
//! and exit status 2.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use vigil_event::{Emitter, Format};
use vigil_keys::{
    AUDIT_HMAC, CHECKPOINT_SIGNING, FileBackend, KeyInfo, KeyStore, MasterKey, RedisBackend,
    STANDARD_KEYS,
};
use vigil_seal::CheckpointSigner;
use vigil_ship::{Pipeline, SinkSpec, Target};

/// `vigil keys …`
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create every missing standard key (audit-hmac, checkpoint-signing,
    /// poison, fingerprint) and check that the existing ones decrypt.
    Generate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List every key version: name, version, creation time, backend.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Print a JSON array, for machines.
        #[arg(long)]
        json: bool,
    },
    /// Add a new version of a key; the old versions stay readable.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
        /// The key to rotate.
        #[arg(long, value_name = "NAME", default_value = AUDIT_HMAC)]
        key: String,
    },
    /// Print the public key that verifies this instance's audit checkpoints
    /// (a C2SP verifier key, for auditors).
    Public {
        #[command(flatten)]
        store: StoreArgs,
        /// The key name: the instance's origin. Default: the host name.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
}

/// Where the keys are. The master key comes from `VIGIL_MASTER_KEY`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct StoreArgs {
    /// The key directory (created with mode 0700).
    #[arg(long, value_name = "DIR")]
    key_dir: Option<PathBuf>,
    /// The key database: redis://[[user]:password@]host[:port][/db].
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
}

/// Runs a `vigil keys` command: events to standard error, then the result
/// to standard output.
pub(crate) fn run(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    let origin = crate::config::Config::default().service.origin;
    let (pipeline, emitter) = Pipeline::builder()
        .origin(&origin)
        .sink(SinkSpec::new("stderr", Target::Stderr).format(Format::Text))
        .start()
        .context("cannot start the event pipeline")?;
    let result = execute(cmd, &emitter, &origin);
    drop(emitter);
    // Flush the events before the result or the error is printed.
    let shutdown = pipeline.shutdown();
    let output = result?;
    shutdown.context("cannot write events to standard error")?;
    let mut out = io::stdout().lock();
    match out.write_all(output.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(anyhow::anyhow!("cannot write to standard output: {e}"))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Does the work; returns what to print.
fn execute(cmd: KeysCommand, emitter: &Emitter, origin: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    match cmd {
        KeysCommand::Generate { store } => {
            let store = open(&store, emitter)?;
            for name in STANDARD_KEYS {
                if store.current_version(name)?.is_none() {
                    let version = store.generate(name)?;
                    out.push_str(&format!("generated {name} v{version}\n"));
                } else {
                    // Loading proves the master key is the right one.
                    let (version, _key) = store.load_current(name)?;
                    out.push_str(&format!("exists {name} v{version}\n"));
                }
            }
        }
        KeysCommand::List { store, json } => {
            let keys = open(&store, emitter)?.list()?;
            out = if json {
                list_json(&keys)?
            } else {
                list_table(&keys)
            };
        }
        KeysCommand::Rotate { store, key } => {
            let new = open(&store, emitter)?.rotate(&key)?;
            out.push_str(&format!("rotated {key} v{} \u{2192} v{new}\n", new - 1));
        }
        KeysCommand::Public { store, name } => {
            let name = name.unwrap_or_else(|| origin.to_owned());
            let (_, seed) = open(&store, emitter)?.load_current(CHECKPOINT_SIGNING)?;
            let signer = CheckpointSigner::new(name.clone(), seed.expose()).map_err(|e| {
                anyhow::anyhow!("cannot use {name:?} as the checkpoint key name: {e}")
            })?;
            out = signer.verifier_key();
            out.push('\n');
        }
    }
    Ok(out)
}

/// Reads the master key and opens the key store the arguments name.
fn open(args: &StoreArgs, emitter: &Emitter) -> anyhow::Result<KeyStore> {
    let master = MasterKey::from_env(Some(emitter))?;
    let events = Some(emitter.clone());
    Ok(match (&args.key_dir, &args.redis) {
        (_, Some(url)) => KeyStore::new(RedisBackend::from_url(url)?, master, events),
        (Some(dir), None) => KeyStore::new(FileBackend::new(dir), master, events),
        // clap requires one of the two.
        (None, None) => anyhow::bail!("give --key-dir DIR or --redis URL"),
    })
}

fn list_table(keys: &[KeyInfo]) -> String {
    let width = keys
        .iter()
        .map(|k| k.name.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut s = format!(
        "{:<width$}  {:>7}  {:<27}  BACKEND\n",
        "NAME", "VERSION", "CREATED"
    );
    for k in keys {
        s.push_str(&format!(
            "{:<width$}  {:>7}  {:<27}  {}\n",
            k.name,
            k.version,
            k.created.to_string(),
            k.backend
        ));
    }
    s
}

fn list_json(keys: &[KeyInfo]) -> anyhow::Result<String> {
    let all: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "name": k.name,
                "version": k.version,
                "created": k.created.to_string(),
                "backend": k.backend,
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&all)?;
    s.push('\n');
    Ok(s)
}
