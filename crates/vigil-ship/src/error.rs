//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Why a pipeline could not start or stop cleanly.
///
/// Each message says what failed, where, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request to the running pipeline (key rotation, checkpoint) failed.
    #[error("the event pipeline could not do what was asked: {reason}")]
    Control {
        /// What went wrong.
        reason: String,
    },

    /// No origin was set; every event needs one.
    #[error(
        "the event pipeline has no origin: set one with `PipelineBuilder::origin`, \
         a name unique among vigil instances such as the host name"
    )]
    NoOrigin,

    /// No sink was configured, so every event would be discarded.
    #[error(
        "the event pipeline has no sink, so every event would be discarded: \
         configure at least one sink, or an audit log"
    )]
    NoSinks,

    /// A sink has an empty name, or two sinks share one.
    #[error("sink name {name:?} is empty or used twice: give every sink a unique, non-empty name")]
    SinkName {
        /// The offending name.
        name: String,
    },

    /// A file sink's file could not be opened for appending.
    #[error(
        "sink `{sink}`: cannot open {} for appending: {source}; check that the directory \
         exists and that vigil may create and write files in it",
        path.display()
    )]
    OpenFile {
        /// The sink's name.
        sink: String,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// A file sink's existing file may be read or written by group or others.
    #[error(
        "sink `{sink}`: {} has mode {mode:04o}, so users other than its owner may read or \
         change the security log; run `chmod 600 {}` and start again",
        path.display(),
        path.display()
    )]
    FileMode {
        /// The sink's name.
        sink: String,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The worker thread could not be started.
    #[error(
        "cannot start the event pipeline's worker thread: {source}; the system is out of \
         threads or memory, check its limits (`ulimit -u`, cgroup pids.max)"
    )]
    Spawn {
        /// What the operating system said.
        source: io::Error,
    },

    /// The worker thread panicked. Records it had already formatted were
    /// flushed while it unwound; events still queued were lost.
    #[error(
        "the event pipeline's worker thread panicked ({message}); events still queued were \
         lost. This is a bug in vigil: please report it with the log above"
    )]
    WorkerPanicked {
        /// The panic message.
        message: String,
    },
}
