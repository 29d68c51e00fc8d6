//! The request context: identity, graceful stop, hard kill, linked children.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// Cheap-to-clone handle on one request's lifecycle.
///
/// `stop_generating` asks the engine to finish early while keeping what it already produced;
/// `kill` also stops and tells everyone to drop what is left. Both are sticky and propagate to
/// linked children.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    stop: CancellationToken,
    kill: CancellationToken,
    children: Mutex<Vec<Context>>,
}

impl Context {
    /// A new context with a random (UUID v4) id.
    pub fn new() -> Self {
        Self::with_id(
            uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .to_string(),
        )
    }

    /// A new context with the given id.
    pub fn with_id(id: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                id: id.into(),
                stop: CancellationToken::new(),
                kill: CancellationToken::new(),
                children: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The request id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Asks for a graceful stop (idempotent).
    pub fn stop_generating(&self) {
        self.inner.stop.cancel();
        for child in self.inner.children.lock().iter() {
            child.stop_generating();
        }
    }

    /// Stops at once; remaining output is dropped (idempotent). Implies a stop.
    pub fn kill(&self) {
        self.inner.kill.cancel();
        self.inner.stop.cancel();
        for child in self.inner.children.lock().iter() {
            child.kill();
        }
    }

    /// Whether a stop (or kill) was requested.
    pub fn is_stopped(&self) -> bool {
        self.inner.stop.is_cancelled()
    }

    /// Whether a kill was requested.
    pub fn is_killed(&self) -> bool {
        self.inner.kill.is_cancelled()
    }

    /// Resolves once a stop (or kill) was requested.
    pub async fn stopped(&self) {
        self.inner.stop.cancelled().await;
    }

    /// Resolves once a kill was requested.
    pub async fn killed(&self) {
        self.inner.kill.cancelled().await;
    }

    /// Links `child` so that stopping or killing `self` does the same to it. A child linked
    /// after the fact immediately inherits the current state.
    pub fn link_child(&self, child: Context) {
        // Checking under the lock pairs with stop/kill setting the flag before locking: the
        // child either sees the flag here or is in the list they walk.
        let mut children = self.inner.children.lock();
        if self.is_killed() {
            child.kill();
        } else if self.is_stopped() {
            child.stop_generating();
        }
        children.push(child);
    }

    /// Whether two handles refer to the same request.
    pub fn same_as(&self, other: &Context) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.inner.id)
            .field("stopped", &self.is_stopped())
            .field("killed", &self.is_killed())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_implies_stop_and_reaches_children() {
        let parent = Context::with_id("p");
        let child = Context::new();
        let grandchild = Context::new();
        parent.link_child(child.clone());
        child.link_child(grandchild.clone());
        assert!(!child.is_stopped());
        parent.kill();
        assert!(parent.is_stopped() && parent.is_killed());
        assert!(child.is_killed() && grandchild.is_killed());
        assert_eq!(parent.id(), "p");
    }

    #[test]
    fn stop_is_not_kill() {
        let parent = Context::new();
        let child = Context::new();
        parent.link_child(child.clone());
        parent.stop_generating();
        assert!(child.is_stopped());
        assert!(!child.is_killed());
    }

    #[test]
    fn late_child_inherits_state() {
        let parent = Context::new();
        parent.stop_generating();
        let child = Context::new();
        parent.link_child(child.clone());
        assert!(child.is_stopped() && !child.is_killed());
        parent.kill();
        let late = Context::new();
        parent.link_child(late.clone());
        assert!(late.is_killed());
    }

    #[tokio::test]
    async fn awaitable_signals() {
        let ctx = Context::new();
        let waiter = {
            let ctx = ctx.clone();
            tokio::spawn(async move { ctx.killed().await })
        };
        ctx.kill();
        waiter.await.expect("waiter task");
        ctx.stopped().await;
    }
}
