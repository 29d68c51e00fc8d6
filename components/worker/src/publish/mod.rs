//! What a worker tells the rest of the system: its model deployment card (a discovery `Model`
//! record) and, for the mocker, KV events on `kv-events` and load on `kv_metrics`.

mod card;
mod events;

pub use card::{CardSettings, build_card, model_record};
pub use events::{
    KV_EVENTS_TOPIC, KV_METRICS_TOPIC, LOAD_REFRESH, forward_kv_events, kv_event_source,
    publish_load,
};
