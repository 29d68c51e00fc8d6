//! Stator's distributed runtime: discovery, request plane, event plane, engines and routing.

pub mod discovery;
pub mod distributed;
pub mod engine;
pub mod error;
pub mod event_plane;
pub mod names;
pub mod request_plane;
pub mod router;
pub mod system_status;
pub mod wire;
