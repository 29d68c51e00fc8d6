//! `GET /v1/models` and `GET /v1/models/{id}` bodies.

use serde::{Deserialize, Serialize};

/// `object` of a model list.
pub const LIST_OBJECT: &str = "list";
/// `object` of a model.
pub const MODEL_OBJECT: &str = "model";
/// `owned_by` Dynamo reports for every served model.
pub const DEFAULT_OWNER: &str = "nvidia";

/// One served model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelObject {
    /// The served model name.
    pub id: String,
    /// Always [`MODEL_OBJECT`].
    pub object: String,
    /// Unix seconds when the model appeared.
    pub created: u64,
    /// Owner ([`DEFAULT_OWNER`]).
    pub owned_by: String,
    /// Context length the model's workers published (0 = unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
}

impl ModelObject {
    /// A model entry owned by [`DEFAULT_OWNER`].
    pub fn new(id: impl Into<String>, created: u64, context_window: u32) -> Self {
        Self {
            id: id.into(),
            object: MODEL_OBJECT.to_owned(),
            created,
            owned_by: DEFAULT_OWNER.to_owned(),
            context_window: Some(context_window),
        }
    }
}

/// The model list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    /// Always [`LIST_OBJECT`].
    pub object: String,
    /// The models.
    pub data: Vec<ModelObject>,
}

impl ModelList {
    /// A list of `data`.
    pub fn new(data: Vec<ModelObject>) -> Self {
        Self {
            object: LIST_OBJECT.to_owned(),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_matches_the_reference_bytes() {
        let list = ModelList::new(vec![ModelObject::new(
            "qwen2.5-0.5b-mock",
            1_795_322_621,
            0,
        )]);
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"{"object":"list","data":[{"id":"qwen2.5-0.5b-mock","object":"model","created":1795322621,"owned_by":"nvidia","context_window":0}]}"#
        );
    }
}
