//! The pipeline sections of `tokenizer.json` (normalizer, pre-tokenizer, post-processor,
//! decoder) checked against what [`super::BpeTokenizer`] reproduces exactly; anything else is
//! reported as unsupported so the caller can fall back to Hugging Face `tokenizers`.

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::normalize::Normalizer;
use super::split::SplitPattern;

/// One item of a `TemplateProcessing` single-sequence template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplatePart {
    /// The encoded text.
    Sequence,
    /// Special token ids added with `add_special_tokens`.
    Ids(Vec<u32>),
}

fn kind(value: &Value) -> Option<&str> {
    value.get("type")?.as_str()
}

fn flag(value: &Value, name: &str) -> Result<bool, String> {
    value.get(name).and_then(Value::as_bool).ok_or_else(|| {
        format!(
            "{} without an explicit {name:?}",
            kind(value).unwrap_or("?")
        )
    })
}

/// The normalizer: none or NFC.
pub(crate) fn normalizer(value: Option<&Value>) -> Result<Normalizer, String> {
    match value {
        None | Some(Value::Null) => Ok(Normalizer::None),
        Some(v) if kind(v) == Some("NFC") => Ok(Normalizer::Nfc),
        Some(v) => Err(format!("normalizer {v}")),
    }
}

/// A `ByteLevel` pre-tokenizer: its split (GPT-2's pattern or none) if it adds no prefix space.
fn byte_level_pre_tokenizer(value: &Value) -> Result<SplitPattern, String> {
    if kind(value) != Some("ByteLevel") {
        return Err(format!("pre-tokenizer {value}"));
    }
    if flag(value, "add_prefix_space")? {
        return Err("ByteLevel pre-tokenizer with add_prefix_space".to_owned());
    }
    // `use_regex` defaults to true in Hugging Face.
    let use_regex = value
        .get("use_regex")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    Ok(if use_regex {
        SplitPattern::Gpt2
    } else {
        SplitPattern::Whole
    })
}

/// The pre-tokenizer: `ByteLevel`, or `Sequence[Split(known regex, Isolated), ByteLevel]`.
pub(crate) fn pre_tokenizer(value: Option<&Value>) -> Result<SplitPattern, String> {
    let value = value.ok_or("no pre-tokenizer (not byte-level)")?;
    if kind(value) == Some("ByteLevel") {
        return byte_level_pre_tokenizer(value);
    }
    let parts = value
        .get("pretokenizers")
        .and_then(Value::as_array)
        .filter(|_| kind(value) == Some("Sequence"))
        .ok_or_else(|| format!("pre-tokenizer {value}"))?;
    let [split, byte_level] = parts.as_slice() else {
        return Err(format!("pre-tokenizer {value}"));
    };
    if byte_level_pre_tokenizer(byte_level)? != SplitPattern::Whole {
        return Err("Split followed by a regex ByteLevel".to_owned());
    }
    let regex = split
        .get("pattern")
        .and_then(|p| p.get("Regex"))
        .and_then(Value::as_str);
    let isolated = split.get("behavior").and_then(Value::as_str) == Some("Isolated");
    let inverted = split.get("invert").and_then(Value::as_bool) != Some(false);
    match regex {
        Some(regex) if kind(split) == Some("Split") && isolated && !inverted => {
            SplitPattern::from_regex(regex).ok_or_else(|| format!("split pattern {regex:?}"))
        }
        _ => Err(format!("pre-tokenizer step {split}")),
    }
}

/// The decoder: `ByteLevel` only.
pub(crate) fn decoder(value: Option<&Value>) -> Result<(), String> {
    match value {
        Some(v) if kind(v) == Some("ByteLevel") => Ok(()),
        Some(v) => Err(format!("decoder {v}")),
        None => Err("no decoder".to_owned()),
    }
}

/// The post-processor: none, `ByteLevel` (ids unchanged), `TemplateProcessing`, or a
/// `Sequence` of those; returns the single-sequence template if there is one.
pub(crate) fn post_processor(value: Option<&Value>) -> Result<Option<Vec<TemplatePart>>, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match kind(value) {
        Some("ByteLevel") => Ok(None),
        Some("TemplateProcessing") => template(value).map(Some),
        Some("Sequence") => {
            let steps = value
                .get("processors")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("post-processor {value}"))?;
            let mut found = None;
            for step in steps {
                if let Some(t) = post_processor(Some(step))? {
                    if found.is_some() {
                        return Err("two templates in one post-processor".to_owned());
                    }
                    found = Some(t);
                }
            }
            Ok(found)
        }
        _ => Err(format!("post-processor {value}")),
    }
}

fn template(value: &Value) -> Result<Vec<TemplatePart>, String> {
    let bad = || format!("template {value}");
    let specials: FxHashMap<&str, Vec<u32>> = value
        .get("special_tokens")
        .and_then(Value::as_object)
        .ok_or_else(bad)?
        .iter()
        .map(|(name, token)| {
            let ids = token
                .get("ids")
                .and_then(Value::as_array)
                .ok_or_else(bad)?
                .iter()
                .map(|id| {
                    id.as_u64()
                        .and_then(|id| u32::try_from(id).ok())
                        .ok_or_else(bad)
                })
                .collect::<Result<Vec<u32>, String>>()?;
            Ok((name.as_str(), ids))
        })
        .collect::<Result<_, String>>()?;
    let single = value
        .get("single")
        .and_then(Value::as_array)
        .ok_or_else(bad)?;
    single
        .iter()
        .map(|piece| {
            if let Some(sequence) = piece.get("Sequence") {
                if sequence.get("id").and_then(Value::as_str) == Some("A") {
                    return Ok(TemplatePart::Sequence);
                }
            } else if let Some(special) = piece.get("SpecialToken") {
                let name = special.get("id").and_then(Value::as_str).ok_or_else(bad)?;
                return specials
                    .get(name)
                    .map(|ids| TemplatePart::Ids(ids.clone()))
                    .ok_or_else(bad);
            }
            Err(bad())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{TemplatePart, post_processor, pre_tokenizer};
    use crate::bpe::split::{GPT2, SplitPattern};

    #[test]
    fn reads_templates_and_rejects_unknown_steps() {
        let template = json!({"type": "Sequence", "processors": [
            {"type": "ByteLevel", "trim_offsets": false},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [],
             "special_tokens": {"<s>": {"id": "<s>", "ids": [7], "tokens": ["<s>"]}}}]});
        assert_eq!(
            post_processor(Some(&template)).unwrap(),
            Some(vec![TemplatePart::Ids(vec![7]), TemplatePart::Sequence])
        );
        assert!(post_processor(Some(&json!({"type": "BertProcessing"}))).is_err());
        let gpt2 = json!({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true});
        assert_eq!(pre_tokenizer(Some(&gpt2)).unwrap(), SplitPattern::Gpt2);
        let split = json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": GPT2}, "behavior": "Removed", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]});
        assert!(pre_tokenizer(Some(&split)).is_err());
    }
}
