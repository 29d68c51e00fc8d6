//! A real-time driver: one thread per simulator that paces passes by their simulated
//! duration and talks to async code through `tokio::sync` channels (no runtime needed).
//!
//! The thread owns the [`Simulator`]. [`MockerHandle::submit`] checks a request, gives it a
//! fresh id and returns a stream of [`Update`]s (tokens, then one `Finished`). Dropping that
//! stream cancels the request at its next token. KV events arrive in batches on the receiver
//! returned by [`MockerHandle::spawn`], load on a watch channel. The thread exits once every
//! handle is dropped and no request is left.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use stator_kv_router::protocols::RouterEvent;
use stator_tokens::Token;
use tokio::sync::{mpsc, watch};

use crate::error::MockerError;
use crate::output::{FinishedRequest, LoadMetrics, StepOutput};
use crate::request::{MockRequest, RequestId};
use crate::simulator::Simulator;

/// How far the pacing clock may fall behind real time before the lag is forgiven. Passes
/// shorter than the OS sleep granularity are paid back from this lag, so the average pace
/// stays right; a longer stall does not turn into a burst afterwards.
const MAX_LAG: Duration = Duration::from_millis(20);

/// What a request's stream receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// One output token.
    Token(Token),
    /// The request ended (always the last update), with its usage.
    Finished(FinishedRequest),
}

/// A request accepted by the driver.
#[derive(Debug)]
pub struct Submitted {
    /// The id the driver gave it (use it to [`cancel`](MockerHandle::cancel)).
    pub id: RequestId,
    /// Its tokens, then one [`Update::Finished`].
    pub updates: mpsc::UnboundedReceiver<Update>,
}

enum Command {
    Add(MockRequest, mpsc::UnboundedSender<Update>),
    Cancel(RequestId),
}

/// A cloneable handle to a simulator running on its own thread.
#[derive(Debug, Clone)]
pub struct MockerHandle {
    commands: std_mpsc::Sender<Command>,
    load: watch::Receiver<LoadMetrics>,
    next_id: Arc<AtomicU64>,
    config: Arc<crate::MockerConfig>,
}

impl MockerHandle {
    /// Start a driver thread for `simulator`. Returns the handle and the receiver of KV event
    /// batches (one batch per pass that changed the cache).
    pub fn spawn(
        simulator: Simulator,
    ) -> std::io::Result<(Self, mpsc::UnboundedReceiver<Vec<RouterEvent>>)> {
        let (commands, command_rx) = std_mpsc::channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (load_tx, load) = watch::channel(simulator.load_metrics());
        let config = Arc::new(simulator.config().clone());
        let name = format!("mocker-{}-{}", simulator.worker_id(), simulator.dp_rank());
        thread::Builder::new().name(name).spawn(move || {
            Driver {
                simulator,
                streams: FxHashMap::default(),
                commands: command_rx,
                events: events_tx,
                load: load_tx,
            }
            .run();
        })?;
        let handle = Self {
            commands,
            load,
            next_id: Arc::new(AtomicU64::new(0)),
            config,
        };
        Ok((handle, events_rx))
    }

    /// Queue a request under a fresh id (`request.id` is replaced). Refused as by
    /// [`MockerConfig::check_request`](crate::MockerConfig::check_request).
    pub fn submit(&self, mut request: MockRequest) -> Result<Submitted, MockerError> {
        self.config.check_request(&request)?;
        request.id = RequestId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (updates_tx, updates) = mpsc::unbounded_channel();
        let id = request.id;
        self.commands
            .send(Command::Add(request, updates_tx))
            .map_err(|_| MockerError::Stopped)?;
        Ok(Submitted { id, updates })
    }

    /// Cancel a request; its stream gets `Finished` with reason `Cancelled` (if still live).
    pub fn cancel(&self, id: RequestId) {
        // A stopped driver has no requests left to cancel.
        let _ = self.commands.send(Command::Cancel(id));
    }

    /// The latest load, updated after every pass.
    pub fn load(&self) -> watch::Receiver<LoadMetrics> {
        self.load.clone()
    }
}

/// The state owned by the driver thread.
struct Driver {
    simulator: Simulator,
    streams: FxHashMap<RequestId, mpsc::UnboundedSender<Update>>,
    commands: std_mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<Vec<RouterEvent>>,
    load: watch::Sender<LoadMetrics>,
}

impl Driver {
    fn run(mut self) {
        let mut clock = Instant::now();
        loop {
            loop {
                match self.commands.try_recv() {
                    Ok(command) => self.apply(command),
                    Err(std_mpsc::TryRecvError::Disconnected) if self.simulator.is_idle() => {
                        return;
                    }
                    // Empty, or every handle is gone but requests are still running.
                    Err(_) => break,
                }
            }
            if self.simulator.is_idle() {
                match self.commands.recv() {
                    Ok(command) => self.apply(command),
                    Err(std_mpsc::RecvError) => return,
                }
                clock = Instant::now();
                continue;
            }
            let pass = self.simulator.step();
            let duration = pass.duration;
            self.dispatch(pass);
            clock += duration;
            let now = Instant::now();
            if clock > now {
                thread::sleep(clock - now);
            } else if now - clock > MAX_LAG {
                clock = now.checked_sub(MAX_LAG).unwrap_or(now);
            }
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Add(request, stream) => {
                let id = request.id;
                match self.simulator.add_request(request) {
                    Ok(()) => {
                        self.streams.insert(id, stream);
                    }
                    Err(error) => {
                        // Checked by the handle; ids are fresh, so this cannot happen.
                        tracing::error!(?id, %error, "mocker driver refused a checked request");
                    }
                }
                self.publish_load();
            }
            Command::Cancel(id) => self.cancel(id),
        }
    }

    fn cancel(&mut self, id: RequestId) {
        if let Some(usage) = self.simulator.cancel(id)
            && let Some(stream) = self.streams.remove(&id)
        {
            let _ = stream.send(Update::Finished(usage));
        }
        self.publish_load();
    }

    fn dispatch(&mut self, pass: StepOutput) {
        if !pass.events.is_empty() {
            // Nobody listening for events is not an error for the engine.
            let _ = self.events.send(pass.events);
        }
        let mut gone = Vec::new();
        for token in &pass.tokens {
            let delivered = self
                .streams
                .get(&token.request_id)
                .is_some_and(|s| s.send(Update::Token(token.token_id)).is_ok());
            if !delivered && token.finish.is_none() {
                gone.push(token.request_id);
            }
        }
        for usage in pass.finished {
            if let Some(stream) = self.streams.remove(&usage.request_id) {
                let _ = stream.send(Update::Finished(usage));
            }
        }
        // A dropped stream means the caller lost interest: free the request's blocks.
        for id in gone {
            self.streams.remove(&id);
            self.simulator.cancel(id);
        }
        self.publish_load();
    }

    fn publish_load(&self) {
        self.load.send_replace(self.simulator.load_metrics());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FinishReason, MockerConfig};

    fn handle() -> (MockerHandle, mpsc::UnboundedReceiver<Vec<RouterEvent>>) {
        let config = MockerConfig {
            block_size: 4,
            num_gpu_blocks: 64,
            speedup_ratio: 0.0,
            ..MockerConfig::default()
        };
        MockerHandle::spawn(Simulator::new(config, 5).unwrap()).unwrap()
    }

    fn collect(mut updates: mpsc::UnboundedReceiver<Update>) -> (Vec<Token>, FinishedRequest) {
        let mut tokens = Vec::new();
        loop {
            match updates.blocking_recv().expect("stream ends with Finished") {
                Update::Token(t) => tokens.push(t),
                Update::Finished(usage) => return (tokens, usage),
            }
        }
    }

    #[test]
    fn requests_stream_tokens_then_usage_and_events_flow() {
        let (handle, mut events) = handle();
        let first = handle
            .submit(MockRequest::new(RequestId(0), (0..12).collect(), 5))
            .unwrap();
        let second = handle
            .submit(MockRequest::new(RequestId(0), (0..12).collect(), 5))
            .unwrap();
        assert_ne!(first.id, second.id, "the driver assigns fresh ids");
        let (tokens, usage) = collect(first.updates);
        assert_eq!(tokens.len(), 5);
        assert_eq!(usage.reason, FinishReason::Length);
        let (_, usage) = collect(second.updates);
        assert_eq!(usage.output_tokens, 5);
        let batch = events
            .blocking_recv()
            .expect("stored events were published");
        assert!(!batch.is_empty());
        assert!(batch.iter().all(|e| e.worker_id == 5));
    }

    #[test]
    fn invalid_requests_are_refused_up_front() {
        let (handle, _events) = handle();
        let mut request = MockRequest::new(RequestId(0), vec![1, 2], 1);
        request.max_tokens = None;
        assert_eq!(
            handle.submit(request).unwrap_err(),
            MockerError::MissingMaxTokens
        );
    }

    #[test]
    fn cancel_and_dropped_streams_free_the_request() {
        let (handle, _events) = handle();
        let long = handle
            .submit(MockRequest::new(RequestId(0), vec![1; 8], 200))
            .unwrap();
        handle.cancel(long.id);
        let (tokens, usage) = collect(long.updates);
        assert_eq!(usage.reason, FinishReason::Cancelled);
        assert!(tokens.len() < 200);

        let dropped = handle
            .submit(MockRequest::new(RequestId(0), vec![2; 8], 200))
            .unwrap();
        drop(dropped.updates);
        // The driver notices at the request's next token and frees it; then it idles.
        let mut load = handle.load();
        let start = Instant::now();
        loop {
            let now = *load.borrow_and_update();
            if now.num_running + now.num_waiting == 0 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "never cancelled");
            thread::sleep(Duration::from_millis(5));
        }
    }
}
