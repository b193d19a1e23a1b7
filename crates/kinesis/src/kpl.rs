//! De-aggregation of records written by the Kinesis Producer Library.
//!
//! The KPL packs many user records into one Kinesis record: four magic
//! bytes, a protobuf `AggregatedRecord`, and the MD5 of the protobuf bytes.
//! Like the Kinesis Client Library, a record that does not carry the magic
//! bytes, or whose digest does not match, is an ordinary record; one that
//! matches but does not decode is passed on whole, so it reaches the error
//! table with its raw bytes rather than being dropped.
//!
//! Sub-records keep the sequence number and arrival time of the record
//! that carried them; checkpoints stay per Kinesis record, so a batch never
//! holds part of an aggregate (a replica adds a response's records
//! together).

use md5::{Digest, Md5};
use prost::Message;

use crate::reader::KinesisRecord;

const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_LEN: usize = 16;

/// The KPL's message format (its `messages.proto`).
#[derive(Clone, PartialEq, Message)]
pub struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    pub partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<SubRecord>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SubRecord {
    #[prost(uint64, required, tag = "1")]
    pub partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    pub explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "vec", required, tag = "3")]
    pub data: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<Tag>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Tag {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// The protobuf bytes of an aggregated record, when `data` is one.
fn aggregated_body(data: &[u8]) -> Option<&[u8]> {
    if data.len() < MAGIC.len() + DIGEST_LEN || data[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (body, digest) = data[MAGIC.len()..].split_at(data.len() - MAGIC.len() - DIGEST_LEN);
    (Md5::digest(body).as_slice() == digest).then_some(body)
}

/// The user records a Kinesis record carries: itself when it is not a KPL
/// aggregate.
pub fn deaggregate(record: KinesisRecord) -> Vec<KinesisRecord> {
    let Some(body) = aggregated_body(&record.data) else {
        return vec![record];
    };
    let Ok(aggregate) = AggregatedRecord::decode(body) else {
        tracing::debug!(sequence = %record.sequence_number, "KPL aggregate does not decode; passed on whole");
        return vec![record];
    };
    aggregate
        .records
        .into_iter()
        .map(|sub| KinesisRecord {
            partition_key: usize::try_from(sub.partition_key_index)
                .ok()
                .and_then(|i| aggregate.partition_key_table.get(i))
                .cloned()
                .unwrap_or_else(|| record.partition_key.clone()),
            sequence_number: record.sequence_number.clone(),
            arrival_ms: record.arrival_ms,
            data: sub.data,
        })
        .collect()
}

/// Packs records the way the KPL does: for tests and the benchmark.
pub fn aggregate(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut keys: Vec<String> = Vec::new();
    let subs = records
        .iter()
        .map(|(key, data)| {
            let index = keys.iter().position(|k| k == key).unwrap_or_else(|| {
                keys.push((*key).to_owned());
                keys.len() - 1
            });
            SubRecord {
                partition_key_index: index as u64,
                explicit_hash_key_index: None,
                data: data.to_vec(),
                tags: Vec::new(),
            }
        })
        .collect();
    let body = AggregatedRecord {
        partition_key_table: keys,
        explicit_hash_key_table: Vec::new(),
        records: subs,
    }
    .encode_to_vec();
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&Md5::digest(&body));
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn carrier(data: Vec<u8>) -> KinesisRecord {
        KinesisRecord {
            data,
            partition_key: "outer".into(),
            sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
            arrival_ms: Some(1_700_000_000_000),
        }
    }

    #[test]
    fn an_aggregate_yields_its_records_with_their_keys() {
        let packed = aggregate(&[
            ("a", b"{\"n\":1}"),
            ("b", b"{\"n\":2}"),
            ("a", b"{\"n\":3}"),
        ]);
        let records = deaggregate(carrier(packed));
        let got: Vec<(&str, &[u8])> = records
            .iter()
            .map(|r| (r.partition_key.as_str(), r.data.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", &b"{\"n\":1}"[..]),
                ("b", b"{\"n\":2}"),
                ("a", b"{\"n\":3}")
            ]
        );
        assert!(records
            .iter()
            .all(|r| r.sequence_number == carrier(vec![]).sequence_number
                && r.arrival_ms == Some(1_700_000_000_000)));
    }

    #[test]
    fn ordinary_records_pass_unchanged() {
        let plain = carrier(b"{\"id\": 1}".to_vec());
        assert_eq!(deaggregate(plain.clone()), vec![plain]);
    }

    #[test]
    fn a_wrong_digest_means_an_ordinary_record() {
        let mut packed = aggregate(&[("a", b"x")]);
        let last = packed.len() - 1;
        packed[last] ^= 1;
        let record = carrier(packed);
        assert_eq!(deaggregate(record.clone()), vec![record]);
    }

    #[test]
    fn a_matching_digest_over_garbage_is_passed_on_whole() {
        let body = [0xFFu8, 0xFF, 0xFF];
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&body);
        data.extend_from_slice(&Md5::digest(body));
        let record = carrier(data);
        assert_eq!(deaggregate(record.clone()), vec![record]);
    }

    #[test]
    fn an_unknown_key_index_falls_back_to_the_carriers_key() {
        let body = AggregatedRecord {
            partition_key_table: vec![],
            explicit_hash_key_table: vec![],
            records: vec![SubRecord {
                partition_key_index: 7,
                explicit_hash_key_index: None,
                data: b"d".to_vec(),
                tags: vec![],
            }],
        }
        .encode_to_vec();
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&body);
        data.extend_from_slice(&Md5::digest(&body));
        let records = deaggregate(carrier(data));
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].partition_key, "outer");
    }

    proptest! {
        #[test]
        fn aggregation_round_trips(records in proptest::collection::vec(("[a-z]{1,8}", proptest::collection::vec(any::<u8>(), 0..64)), 1..20)) {
            let borrowed: Vec<(&str, &[u8])> = records.iter().map(|(k, d)| (k.as_str(), d.as_slice())).collect();
            let out = deaggregate(carrier(aggregate(&borrowed)));
            let got: Vec<(String, Vec<u8>)> = out.into_iter().map(|r| (r.partition_key, r.data)).collect();
            prop_assert_eq!(got, records);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_lose_nothing(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let out = deaggregate(carrier(data.clone()));
            prop_assert!(!out.is_empty() || aggregated_body(&data).is_some());
        }
    }
}
