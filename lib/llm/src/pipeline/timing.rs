//! Where a choice ran and how long its phases took (the `nvext.worker_id` and `nvext.timing`
//! a client asks for with `nvext.extra_fields`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stator_runtime::InstanceId;

/// The worker a choice was sent to, and when it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServedBy {
    pub(crate) instance_id: InstanceId,
    pub(crate) dp_rank: Option<u32>,
    /// Routing done (after any wait in the KV router's queue).
    pub(crate) sent: Instant,
}

/// A choice's clock: started when the pipeline took the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    received: Instant,
    received_at: SystemTime,
    served_by: ServedBy,
    first_token: Option<Instant>,
}

impl Timing {
    pub(crate) fn new(received: Instant, received_at: SystemTime, served_by: ServedBy) -> Self {
        Self {
            received,
            received_at,
            served_by,
            first_token: None,
        }
    }

    /// Notes the first generated token (later calls change nothing).
    pub(crate) fn first_token(&mut self) {
        self.first_token.get_or_insert_with(Instant::now);
    }

    /// The report at the end of the choice.
    pub(crate) fn report(&self) -> ChoiceReport {
        let now = Instant::now();
        ChoiceReport {
            instance_id: self.served_by.instance_id,
            dp_rank: self.served_by.dp_rank,
            received_unix_ms: self
                .received_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            routing: self.served_by.sent.saturating_duration_since(self.received),
            first_token: self
                .first_token
                .map(|t| t.saturating_duration_since(self.received)),
            total: now.saturating_duration_since(self.received),
        }
    }
}

/// Which worker ran a choice and how long it took, measured by the frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChoiceReport {
    /// The instance that served the choice (prefill and decode, in aggregated serving).
    pub instance_id: InstanceId,
    /// Its data-parallel rank, when the router chose one.
    pub dp_rank: Option<u32>,
    /// When the pipeline received the preprocessed request (Unix milliseconds).
    pub received_unix_ms: u64,
    /// From receipt to sending to the worker (KV routing, queueing).
    pub routing: Duration,
    /// From receipt to the first generated token, if one came.
    pub first_token: Option<Duration>,
    /// From receipt to the end of the choice.
    pub total: Duration,
}

impl ChoiceReport {
    /// From sending to the worker to the first token (the worker's queue plus prefill).
    pub fn prefill(&self) -> Option<Duration> {
        self.first_token
            .map(|first| first.saturating_sub(self.routing))
    }
}
