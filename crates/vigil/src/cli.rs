//! The `vigil` command line.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vigil_event::{Category, Emitter, Event, Format, Overflow, catalog};
use vigil_ship::{Pipeline, SinkSpec, Target};

use crate::config::{self, Config, SinkKind};

/// Exit status for tampered, malformed or rejected input.
pub(crate) const EXIT_BAD_INPUT: u8 = 1;
/// Exit status for usage, configuration and I/O errors.
pub(crate) const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "vigil",
    version,
    about = "A security-logging proxy for PostgreSQL",
    long_about = "vigil sits between applications and PostgreSQL and turns what it sees into \
                  security events with stable codes, exported to SIEMs as JSON, CEF, RFC 5424 \
                  syslog or OCSF.\n\nRun `vigil demo` to see the events, `vigil events` for the \
                  catalog.",
    after_help = "Exit status: 0 success, 1 bad input, 2 usage or configuration error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the event catalog: every event's code, name, category and severity.
    Events {
        /// Print a JSON array, for machines.
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// Print the Markdown of docs/events.md.
        #[arg(long)]
        markdown: bool,
    },
    /// Check or print configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The tour: a throwaway PostgreSQL, vigil in front of it, a scripted
    /// session, its events, and the audit log verified. With --sample,
    /// --format or --config: sample events through the configured sinks.
    Demo {
        /// Emit the sample events instead of running the tour.
        #[arg(long)]
        sample: bool,
        /// Configuration file; without it, events go to standard output as text.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Write to standard output in this one format instead of the configured sinks.
        #[arg(long, value_name = "FMT", value_parser = Format::NAMES)]
        format: Option<String>,
    },
    /// Seal events into an audit directory, or print its latest checkpoint.
    #[command(subcommand)]
    Audit(crate::audit_cmd::AuditCommand),
    /// Verify a sealed audit log: exit 0 verified, 1 tampered, 2 usage or I/O error.
    Verify(crate::audit_cmd::VerifyArgs),
    /// Generate, list, rotate keys and print the public checkpoint key.
    #[command(subcommand)]
    Keys(crate::keys_cmd::KeysCommand),
    /// Make poison records (honeytokens) and list the registry.
    #[command(subcommand)]
    Poison(crate::poison_cmd::PoisonCommand),
    /// Print an inclusion proof of one sealed entry against a checkpoint.
    Prove(crate::audit_cmd::ProveArgs),
    /// Check a proof from `vigil prove` with the public key alone, without the log.
    VerifyProof(crate::audit_cmd::VerifyProofArgs),
    /// Run the proxy: listen for PostgreSQL clients and log what they do.
    Serve(crate::serve::ServeArgs),
    /// Re-export events: read vigil JSON lines on standard input, write them in FMT.
    Convert {
        /// Output format.
        #[arg(long, value_name = "FMT", value_parser = Format::NAMES)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate FILE without starting anything; exit 2 with file:line: key on error.
    Check {
        /// The configuration file.
        file: PathBuf,
    },
    /// Print a commented example configuration.
    Example,
}

/// Runs the command line; returns the process exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Events { json, markdown } => events(json, markdown),
        Command::Config(ConfigCommand::Check { file }) => config_check(&file),
        Command::Config(ConfigCommand::Example) => print(config::example().as_bytes()),
        Command::Demo {
            config,
            format,
            sample,
        } => {
            if config.is_none() && format.is_none() && !sample && crate::tour::postgres_available()
            {
                crate::tour::run(Format::Text)
            } else {
                if config.is_none() && format.is_none() && !sample {
                    eprintln!(
                        "vigil: PostgreSQL's server binaries (initdb) were not found, so this \
                         shows sample events instead of the live tour; install the postgresql \
                         package for the tour"
                    );
                }
                demo(config.as_deref(), format.as_deref())
            }
        }
        Command::Convert { to } => convert(&to),
        Command::Serve(args) => crate::serve::run(args),
        Command::Keys(cmd) => crate::keys_cmd::run(cmd),
        Command::Poison(cmd) => crate::poison_cmd::run(cmd),
        Command::Audit(cmd) => crate::audit_cmd::run(cmd),
        Command::Verify(args) => crate::audit_cmd::verify(args),
        Command::Prove(args) => crate::audit_cmd::prove(args),
        Command::VerifyProof(args) => crate::audit_cmd::verify_proof(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn print(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        // A closed pipe (`vigil events | head`) is the reader's choice.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(anyhow::anyhow!("cannot write to standard output: {e}")),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

fn events(json: bool, markdown: bool) -> anyhow::Result<ExitCode> {
    if markdown {
        return print(catalog::markdown().as_bytes());
    }
    if json {
        let all: Vec<serde_json::Value> = catalog::ALL
            .iter()
            .map(|k| {
                let d = k.def();
                serde_json::json!({
                    "code": d.code,
                    "name": d.name,
                    "category": d.category.as_str(),
                    "severity": d.severity.as_str(),
                    "outcome": d.outcome.as_str(),
                    "ocsf_class_uid": d.ocsf.class_uid,
                    "ocsf_activity_id": d.ocsf.activity_id,
                    "description": d.description,
                })
            })
            .collect();
        let mut s = serde_json::to_string_pretty(&all)?;
        s.push('\n');
        return print(s.as_bytes());
    }
    let width = catalog::ALL
        .iter()
        .map(|k| k.name().len())
        .max()
        .unwrap_or(0);
    let mut s = format!(
        "{:<5} {:<width$} {:<10} {:<8} DESCRIPTION\n",
        "CODE", "NAME", "CATEGORY", "SEVERITY"
    );
    for cat in Category::ALL {
        for k in catalog::ALL.iter().filter(|k| k.category() == cat) {
            s.push_str(&format!(
                "{:<5} {:<width$} {:<10} {:<8} {}\n",
                k.code(),
                k.name(),
                cat.as_str(),
                k.severity().as_str(),
                k.def().description
            ));
        }
    }
    print(s.as_bytes())
}

fn load_config(path: &Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|e| {
        eprintln!("vigil: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}

fn config_check(path: &Path) -> anyhow::Result<ExitCode> {
    let cfg = match load_config(path) {
        Ok(cfg) => cfg,
        Err(code) => return Ok(code),
    };
    let n = cfg.sinks.len();
    let audit = match &cfg.audit {
        Some(a) => format!(", sealed into {}", a.dir.display()),
        None => String::new(),
    };
    println!(
        "ok: {}: {n} sink{}{audit}",
        path.display(),
        if n == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

/// The sinks the pipeline writes to directly: standard output and error,
/// and with `files`, file sinks. (`vigil serve` delivers files and network
/// sinks from the sealed audit log instead.)
pub(crate) fn sink_specs(cfg: &Config, files: bool) -> Vec<SinkSpec> {
    cfg.sinks
        .iter()
        .filter_map(|s| {
            let target = match &s.kind {
                SinkKind::Stdout => Target::Stdout,
                SinkKind::Stderr => Target::Stderr,
                SinkKind::File { path } if files => Target::File(path.clone()),
                _ => return None,
            };
            Some(SinkSpec {
                name: s.name.clone(),
                target,
                format: s.format.clone(),
                filter: s.filter.clone(),
            })
        })
        .collect()
}

fn demo(config: Option<&Path>, format: Option<&str>) -> anyhow::Result<ExitCode> {
    let cfg = match config {
        Some(path) => match load_config(path) {
            Ok(cfg) => cfg,
            Err(code) => return Ok(code),
        },
        None => Config::default(),
    };
    let sinks = match format {
        Some(name) => vec![SinkSpec {
            name: "stdout".into(),
            target: Target::Stdout,
            format: stdout_format(name)?,
            filter: vigil_event::Filter::all(),
        }],
        None => sink_specs(&cfg, true),
    };
    let mut builder = Pipeline::builder()
        .origin(&cfg.service.origin)
        .capacity(cfg.pipeline.queue_capacity)
        .overflow(cfg.pipeline.overflow);
    for sink in sinks {
        builder = builder.sink(sink);
    }
    // With an [audit] section, every event is sealed before the sinks see
    // it; key loads are reported, then sealed once the log is open.
    let (key_events, key_rx) = Emitter::channel(1024, Overflow::Drop);
    if let (Some(audit), None) = (&cfg.audit, format) {
        let seal = crate::audit_cmd::seal_config(audit, &cfg.service.origin);
        match crate::audit_cmd::open_audit(&audit.key_dir, seal, &key_events) {
            Ok((_store, sealer)) => builder = builder.audit(sealer),
            Err(e) => {
                show_on_stderr(&key_rx);
                eprintln!("vigil: {e:#}");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
        }
    }
    let (pipeline, emitter) = builder.start()?;
    while let Some(q) = key_rx.try_recv() {
        emitter.emit(q.event);
    }
    for event in crate::demo::events() {
        emitter.emit(event);
    }
    drop(emitter);
    let stats = pipeline.shutdown()?;
    if stats.dropped > 0 {
        eprintln!("vigil: {} events dropped (queue full)", stats.dropped);
    }
    Ok(ExitCode::SUCCESS)
}

/// Shows the events queued on `rx` on standard error as text: the ones
/// reported before a failure, when there is no pipeline to take them.
pub(crate) fn show_on_stderr(rx: &vigil_event::Receiver) {
    while let Some(q) = rx.try_recv() {
        show_event(&q.event);
    }
}

/// Shows one event on standard error as text.
pub(crate) fn show_event(event: &Event) {
    let mut line = Vec::new();
    Format::Text.write(event, &mut line);
    eprintln!("{}", String::from_utf8_lossy(&line));
}

/// The named format as written to standard output.
fn stdout_format(name: &str) -> anyhow::Result<Format> {
    Format::from_name(name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown format {name:?}; expected one of {}",
            Format::NAMES.join(", ")
        )
    })
}

fn convert(to: &str) -> anyhow::Result<ExitCode> {
    let format = stdout_format(to)?;
    let stdin = io::stdin().lock();
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut buf = Vec::with_capacity(1024);
    let mut rejected = 0u64;
    for (i, line) in stdin.split(b'\n').enumerate() {
        let line = line.map_err(|e| anyhow::anyhow!("cannot read standard input: {e}"))?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match Event::from_json(line) {
            Ok(event) => {
                buf.clear();
                format.write(&event, &mut buf);
                buf.push(b'\n');
                if let Err(e) = out.write_all(&buf) {
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        return Ok(ExitCode::SUCCESS);
                    }
                    anyhow::bail!("cannot write to standard output: {e}");
                }
            }
            Err(e) => {
                rejected += 1;
                eprintln!("vigil convert: stdin:{}: {e}; line skipped", i + 1);
            }
        }
    }
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            anyhow::bail!("cannot write to standard output: {e}")
        }
        _ => {}
    }
    if rejected > 0 {
        eprintln!("vigil convert: {rejected} line(s) rejected");
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }
    Ok(ExitCode::SUCCESS)
}
