//! `kv-events` payloads as Dynamo 1.6.1 publishes them: a byte capture from
//! `python -m dynamo.mocker` (ZMQ direct mode, block size 16) decodes to the same events.

use stator_kv_router::protocols::{
    KvCacheEvent, KvCacheEventData, KvCacheStoreData, KvCacheStoredBlockData, KvEventsPayload,
    StorageTier,
};
use stator_tokens::{LocalBlockHash, SequenceHash};

/// The envelope payload of one message captured on 2026-11-22: a msgpack array with one
/// `RouterEvent` map (field names, `storage_tier`, `residency_domain`, `mm_extra_info`).
const DYNAMO_MOCKER_PAYLOAD: &str = "9184a9776f726b65725f6964cfa57ef5d16ec5e4aaac73746f726167655f74696572a6646576696365b07265736964656e63795f646f6d61696ea6776f726b6572a56576656e7483a86576656e745f69640ca46461746181a673746f72656483ab706172656e745f68617368cf5f774122da01765fae73746172745f706f736974696f6ec0a6626c6f636b739283aa626c6f636b5f68617368cf39a755e0b305221aab746f6b656e735f68617368cf0ef0fadd59e2437bad6d6d5f65787472615f696e666fc083aa626c6f636b5f68617368cf1597c6d4e6bc5fc7ab746f6b656e735f68617368cfd8ef31e3c680b023ad6d6d5f65787472615f696e666fc0a764705f72616e6b00";

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

#[test]
fn a_dynamo_mocker_batch_decodes() {
    let payload: KvEventsPayload =
        rmp_serde::from_slice(&unhex(DYNAMO_MOCKER_PAYLOAD)).expect("decodes");
    let events = payload.into_events();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.worker_id, 11_925_239_143_179_084_970);
    assert_eq!(event.storage_tier, StorageTier::Device);
    assert_eq!(
        event.event,
        KvCacheEvent {
            event_id: 12,
            dp_rank: 0,
            data: KvCacheEventData::Stored(KvCacheStoreData {
                parent_hash: Some(SequenceHash(6_879_038_573_773_944_415)),
                start_position: None,
                blocks: vec![
                    KvCacheStoredBlockData {
                        block_hash: SequenceHash(4_154_383_604_837_065_242),
                        tokens_hash: LocalBlockHash(1_076_636_139_544_265_595),
                    },
                    KvCacheStoredBlockData {
                        block_hash: SequenceHash(1_555_930_813_986_267_079),
                        tokens_hash: LocalBlockHash(15_631_767_685_983_940_643),
                    },
                ],
            }),
        }
    );
}

#[test]
fn our_batches_round_trip_as_an_array() {
    let payload: KvEventsPayload =
        rmp_serde::from_slice(&unhex(DYNAMO_MOCKER_PAYLOAD)).expect("decodes");
    let events = payload.into_events();
    let ours = rmp_serde::to_vec_named(&events).expect("encodes");
    // msgpack fixarray of one element, as in Dynamo's capture.
    assert_eq!(ours[0], 0x91);
    let back: KvEventsPayload = rmp_serde::from_slice(&ours).expect("decodes");
    assert_eq!(back.into_events(), events);
}
