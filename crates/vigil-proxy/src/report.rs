//! Where the proxy's events go: counted in the metrics, then queued for the
//! audit log and the sinks.

use std::sync::Arc;

use vigil_event::{Emitter, Event};

use crate::metrics::Metrics;

/// Emits events and counts them by code.
#[derive(Clone, Debug)]
pub struct Reporter {
    emitter: Emitter,
    metrics: Arc<Metrics>,
}

impl Reporter {
    /// Reports through `emitter`, counting in `metrics`.
    pub fn new(emitter: Emitter, metrics: Arc<Metrics>) -> Self {
        Reporter { emitter, metrics }
    }

    /// Counts and queues `event`.
    pub fn emit(&self, event: Event) {
        self.metrics.event(event.kind);
        self.emitter.emit(event);
    }

    /// The metrics the proxy updates.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}
