//! `vigil poison`: make poison records (honeytokens) and list the registry.
//!
//! `make` loads (or creates) the `poison` key from the key directory, with
//! the master key from `VIGIL_MASTER_KEY`, checks the registry's existing
//! entries, makes the new values, appends them to the registry (mode 0600)
//! and prints them: one `INSERT` per value with `--table` and `--column`,
//! else one value per line. The keystore's events go to standard error as
//! text; an error is one line and exit status 2.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use vigil_detect::poison::{PoisonKey, PoisonKind, PoisonSet};
use vigil_event::{Emitter, Format};
use vigil_keys::{KeyStore, POISON};
use vigil_ship::{Pipeline, SinkSpec, Target};

/// `vigil poison …`
#[derive(Debug, Subcommand)]
pub(crate) enum PoisonCommand {
    /// Make poison values that look like real data, register them, and
    /// print SQL to insert them (or the values, one per line).
    Make(MakeArgs),
    /// List the registry: id, kind, key version, location and value.
    List {
        /// The registry file.
        #[arg(long, value_name = "FILE")]
        registry: PathBuf,
        /// Also check every entry's tag with the poison keys in DIR.
        #[arg(long, value_name = "DIR")]
        key_dir: Option<PathBuf>,
        /// Print a JSON array, for machines.
        #[arg(long)]
        json: bool,
    },
}

/// `vigil poison make` arguments.
#[derive(Debug, Args)]
pub(crate) struct MakeArgs {
    /// What the values imitate.
    #[arg(long, value_name = "KIND", value_parser = ["text", "email", "uuid", "int", "bytea"])]
    kind: String,
    /// How many values to make.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    count: u32,
    /// The key directory holding the poison key (created when missing).
    #[arg(long, value_name = "DIR")]
    key_dir: PathBuf,
    /// The registry file, created with mode 0600 when missing.
    #[arg(long, value_name = "FILE")]
    registry: PathBuf,
    /// Print `INSERT INTO TABLE (COLUMN) VALUES (…);` lines.
    #[arg(long, value_name = "TABLE", requires = "column")]
    table: Option<String>,
    /// The column for `--table`.
    #[arg(long, value_name = "COLUMN", requires = "table")]
    column: Option<String>,
}

/// Runs a `vigil poison` command: events to standard error, then the
/// result to standard output.
pub(crate) fn run(cmd: PoisonCommand) -> anyhow::Result<ExitCode> {
    let origin = crate::config::Config::default().service.origin;
    let (pipeline, emitter) = Pipeline::builder()
        .origin(&origin)
        .sink(SinkSpec::new("stderr", Target::Stderr).format(Format::Text))
        .start()
        .context("cannot start the event pipeline")?;
    let result = execute(cmd, &emitter);
    drop(emitter);
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

fn execute(cmd: PoisonCommand, emitter: &Emitter) -> anyhow::Result<String> {
    match cmd {
        PoisonCommand::Make(args) => make(&args, emitter),
        PoisonCommand::List {
            registry,
            key_dir,
            json,
        } => {
            let set = PoisonSet::load(&registry)?;
            let mut out = String::new();
            if let Some(dir) = key_dir {
                let store = crate::audit_cmd::open_store(&dir, Some(emitter))?;
                verify(&set, &store)?;
                if !json {
                    out.push_str(&format!("verified: {} entries\n", set.len()));
                }
            }
            if json {
                let mut s = serde_json::to_string_pretty(set.entries())?;
                s.push('\n');
                return Ok(s);
            }
            out.push_str(&format!(
                "{:>5}  {:<5}  {:>3}  {:<24}  VALUE\n",
                "ID", "KIND", "KEY", "LOCATION"
            ));
            for e in set.entries() {
                out.push_str(&format!(
                    "{:>5}  {:<5}  {:>3}  {:<24}  {}\n",
                    e.id,
                    e.kind.as_str(),
                    e.key_version,
                    e.location.as_deref().unwrap_or("-"),
                    e.value
                ));
            }
            Ok(out)
        }
    }
}

fn make(args: &MakeArgs, emitter: &Emitter) -> anyhow::Result<String> {
    let kind = PoisonKind::from_name(&args.kind)
        .ok_or_else(|| anyhow::anyhow!("unknown kind {:?}", args.kind))?;
    let target = match (&args.table, &args.column) {
        (Some(t), Some(c)) => {
            identifier(t, "--table")?;
            identifier(c, "--column")?;
            Some((t.as_str(), c.as_str()))
        }
        _ => None,
    };
    let store = crate::audit_cmd::open_store(&args.key_dir, Some(emitter))?;
    store
        .ensure(POISON)
        .context("cannot create the poison key")?;
    let (version, secret) = store
        .load_current(POISON)
        .context("cannot load the poison key")?;
    let key = PoisonKey::new(version, secret.expose());
    let mut set = PoisonSet::load_or_empty(&args.registry)?;
    verify(&set, &store)?;
    let location = target.map(|(t, c)| format!("{t}.{c}"));
    let mut out = String::new();
    for _ in 0..args.count {
        let entry = set.add(&key, kind, location.as_deref())?;
        match target {
            Some((t, c)) => out.push_str(&format!(
                "INSERT INTO {t} ({c}) VALUES ({});\n",
                entry.sql_literal()
            )),
            None => {
                out.push_str(&entry.value);
                out.push('\n');
            }
        }
    }
    set.save(&args.registry).with_context(|| {
        format!(
            "cannot write the poison registry {}",
            args.registry.display()
        )
    })?;
    Ok(out)
}

/// Checks every entry of `set` with the poison key version that made it.
pub(crate) fn verify(set: &PoisonSet, store: &KeyStore) -> anyhow::Result<()> {
    let mut keys = Vec::new();
    for version in set.key_versions() {
        let secret = store
            .load(POISON, version)
            .with_context(|| format!("cannot load poison key version {version}"))?;
        keys.push(PoisonKey::new(version, secret.expose()));
    }
    set.verify(&keys)?;
    Ok(())
}

/// A table or column name as given: letters, digits, `_`, `$`, and `.`
/// between a schema and a table; anything else must be quoted by hand in
/// the SQL printed.
fn identifier(name: &str, flag: &str) -> anyhow::Result<()> {
    let part_ok = |p: &str| {
        p.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    if name.split('.').count() <= 2 && name.split('.').all(part_ok) {
        Ok(())
    } else {
        anyhow::bail!(
            "{flag} {name:?} is not a plain SQL name; use letters, digits and _ (schema.table \
             for a table), or omit --table and --column to print the values alone"
        )
    }
}

/// The registry at `path`, checked with the poison keys of `store`.
pub(crate) fn load_verified(path: &Path, store: &KeyStore) -> anyhow::Result<PoisonSet> {
    let set = PoisonSet::load(path)?;
    verify(&set, store).with_context(|| format!("poison registry {}", path.display()))?;
    Ok(set)
}
