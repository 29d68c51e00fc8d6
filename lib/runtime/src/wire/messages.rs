//! JSON messages carried inside two-part frames, with Dynamo's exact field names.

use serde::{Deserialize, Serialize};

use super::Codec;
use crate::error::StatorError;

/// `connection_info.transport` value of the TCP call-home response server.
pub const TCP_SERVER_TRANSPORT: &str = "tcp_server";

/// Shape of the request side of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestType {
    /// One request message.
    SingleIn,
    /// A request stream the worker dials separately.
    ManyIn,
}

/// Shape of the response side of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    /// A response stream (the only kind in use).
    ManyOut,
}

/// Where the worker dials back: `{"transport": "tcp_server", "info": "<json>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// Transport kind ([`TCP_SERVER_TRANSPORT`]).
    pub transport: String,
    /// Transport-specific details, itself a JSON document ([`TcpStreamConnectionInfo`]).
    pub info: String,
}

/// Header of the request payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestControlMessage {
    /// Request id (the context id).
    pub id: String,
    /// `single_in` or `many_in`.
    pub request_type: RequestType,
    /// Always `many_out`.
    pub response_type: ResponseType,
    /// Codec of the body and of the response items; absent means JSON.
    #[serde(default)]
    pub payload_codec: Codec,
    /// Where to dial the response stream.
    pub connection_info: ConnectionInfo,
    /// Free-form metadata (trace context, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Client send time, nanoseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend_send_ts_ns: Option<u64>,
    /// Where to dial the request stream (`many_in` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_stream_connection_info: Option<ConnectionInfo>,
}

/// Direction of a call-home stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamType {
    /// Worker → client response items.
    Response,
    /// Client → worker request items.
    Request,
}

/// Parsed `connection_info.info` of the TCP call-home server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpStreamConnectionInfo {
    /// `ip:port` of the response-stream server.
    pub address: String,
    /// Unique subject the server matches the call-home connection by.
    pub subject: String,
    /// Request id.
    pub context: String,
    /// Direction.
    pub stream_type: StreamType,
}

/// First frame (header-only) on a call-home connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallHomeHandshake {
    /// Subject from [`TcpStreamConnectionInfo`].
    pub subject: String,
    /// Direction.
    pub stream_type: StreamType,
}

/// Second frame (header-only): whether `generate()` succeeded on the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseStreamPrologue {
    /// Error text when the engine refused the request before streaming.
    pub error: Option<String>,
    /// The same error, typed, so its class survives the hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typed_error: Option<StatorError>,
}

/// One data frame of the response stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkStreamWrapper<U> {
    /// The item (absent in the final frame).
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub data: Option<U>,
    /// True exactly in the final frame.
    pub complete_final: bool,
}

/// Control frames (header-only, JSON string): client → worker `stop`/`kill`, worker → client
/// `sentinel` after the final data frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlMessage {
    /// Stop generating gracefully.
    Stop,
    /// Stop at once and drop what is left.
    Kill,
    /// End of the response stream.
    Sentinel,
}

impl ControlMessage {
    /// The JSON header bytes (`"stop"`, `"kill"`, `"sentinel"`).
    pub fn header(self) -> &'static [u8] {
        match self {
            Self::Stop => b"\"stop\"",
            Self::Kill => b"\"kill\"",
            Self::Sentinel => b"\"sentinel\"",
        }
    }
}
