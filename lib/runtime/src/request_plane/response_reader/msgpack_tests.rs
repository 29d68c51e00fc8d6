//! The fast reader against `rmp_serde`: whatever it accepts must decode to `rmp_serde`'s value.

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::from_slice;

/// A stream item shaped like the frontend's (`NetworkStreamWrapper<Annotated<LLMEngineOutput>>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Wrapper {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Annotated>,
    complete_final: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Annotated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Output>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<Box<Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Output {
    #[serde(default)]
    token_ids: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokens: Option<Vec<Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cum_log_probs: Option<f64>,
    #[serde(default)]
    finish_reason: Option<Finish>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stop_reason: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit: Option<Unit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extra_args: Option<Box<Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Finish {
    Eos,
    Length,
    Error(String),
    #[serde(alias = "abort")]
    Cancelled,
    Range {
        start: i64,
        end: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Stop {
    Text(String),
    TokenId(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Unit;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn finish() -> impl Strategy<Value = Finish> {
    prop_oneof![
        Just(Finish::Eos),
        Just(Finish::Length),
        Just(Finish::Cancelled),
        ".{0,20}".prop_map(Finish::Error),
        (any::<i64>(), any::<i64>()).prop_map(|(start, end)| Finish::Range { start, end }),
    ]
}

fn output() -> impl Strategy<Value = Output> {
    (
        prop::collection::vec(any::<u32>(), 0..6),
        prop::option::of(prop::collection::vec(prop::option::of(".{0,8}"), 0..4)),
        prop::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
        prop::option::of(finish()),
        prop::option::of(prop_oneof![
            ".{0,8}".prop_map(Stop::Text),
            any::<u32>().prop_map(Stop::TokenId)
        ]),
        prop::option::of(any::<u32>()),
        prop::option::of(Just(Unit)),
        prop::option::of(json_value().prop_map(Box::new)),
    )
        .prop_map(
            |(
                token_ids,
                tokens,
                cum_log_probs,
                finish_reason,
                stop_reason,
                index,
                unit,
                extra_args,
            )| {
                Output {
                    token_ids,
                    tokens,
                    cum_log_probs,
                    finish_reason,
                    stop_reason,
                    index,
                    unit,
                    extra_args,
                }
            },
        )
}

fn wrapper() -> impl Strategy<Value = Wrapper> {
    (
        prop::option::of((
            prop::option::of(output()),
            prop::option::of(".{0,8}"),
            prop::option::of(json_value().prop_map(Box::new)),
        )),
        any::<bool>(),
    )
        .prop_map(|(data, complete_final)| Wrapper {
            data: data.map(|(data, event, error)| Annotated { data, event, error }),
            complete_final,
        })
}

/// Whatever the fast reader accepts, `rmp_serde` accepts with the same value.
fn agrees<T: DeserializeOwned + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    if let Ok(fast) = from_slice::<T>(bytes) {
        let reference = rmp_serde::from_slice::<T>(bytes);
        prop_assert!(
            reference.is_ok(),
            "fast accepted what rmp_serde refuses: {bytes:?}"
        );
        prop_assert_eq!(fast, reference.unwrap());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn items_decode_exactly(item in wrapper()) {
        // Compared with rmp_serde's decode, not `item`: `Some(Value::Null)` reads back as `None`.
        let bytes = rmp_serde::to_vec_named(&item).unwrap();
        prop_assert_eq!(from_slice::<Wrapper>(&bytes).unwrap(), rmp_serde::from_slice(&bytes).unwrap());
    }

    #[test]
    fn json_values_decode_like_rmp_serde(value in json_value()) {
        let bytes = rmp_serde::to_vec_named(&value).unwrap();
        let fast: Value = from_slice(&bytes).unwrap();
        prop_assert_eq!(fast, rmp_serde::from_slice::<Value>(&bytes).unwrap());
    }

    #[test]
    fn damaged_items_never_disagree(
        item in wrapper(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = rmp_serde::to_vec_named(&item).unwrap();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        agrees::<Wrapper>(&bytes)?;
        agrees::<Value>(&bytes)?;
        agrees::<Wrapper>(&bytes[..cut.index(bytes.len() + 1)])?;
    }

    #[test]
    fn arbitrary_bytes_never_disagree(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        agrees::<Wrapper>(&bytes)?;
        agrees::<Value>(&bytes)?;
        agrees::<Output>(&bytes)?;
    }
}

#[test]
fn unusual_encodings_are_left_to_rmp_serde() {
    // A variant tag given by index, a bin value and an ext value.
    let by_index = [0x81, 0x00, 0xc0];
    assert!(from_slice::<Finish>(&by_index).is_err());
    assert!(from_slice::<Value>(&[0xc4, 0x01, 0xff]).is_err());
    assert!(from_slice::<Value>(&[0xd4, 0x01, 0x02]).is_err());
    // Ignored fields of any kind are skipped, as rmp_serde does.
    let item = [
        0x82, 0xa1, b'x', 0xd4, 0x01, 0x02, 0xae, b'c', b'o', b'm', b'p', b'l', b'e', b't', b'e',
        b'_', b'f', b'i', b'n', b'a', b'l', 0xc3,
    ];
    let fast = from_slice::<Wrapper>(&item).unwrap();
    assert_eq!(fast, rmp_serde::from_slice::<Wrapper>(&item).unwrap());
    assert!(fast.complete_final);
}

#[test]
fn deep_nesting_is_left_to_rmp_serde() {
    let mut bytes = vec![0x91; 200];
    bytes.push(0xc0);
    assert!(from_slice::<Value>(&bytes).is_err());
    assert!(rmp_serde::from_slice::<Value>(&bytes).is_ok());
}
