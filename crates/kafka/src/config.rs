//! librdkafka settings for a pipe's consumer. Pure, so every authentication
//! and offset combination is tested without a broker.
//!
//! Transport: SASL (PLAIN, SCRAM) always runs over TLS, as every managed
//! Kafka requires; `NONE` is plaintext unless a CA certificate is given, in
//! which case it is TLS; MUTUAL_TLS is TLS with the client certificate.

use std::collections::BTreeMap;

use sluice_model::{KafkaAuthentication, KafkaSource, OffsetStrategy, ReplicaSize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pipe's Kafka credentials are incomplete: {0}")]
pub struct ConfigError(pub String);

/// How long the broker keeps a silent member in the group. A dead worker's
/// replicas move only after it has been silent for the scheduler's
/// `WORKER_SILENCE` (checked in the worker), so the new member joins after
/// the dead one left: see `consumer_settings`.
pub const SESSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

/// How soon a new topic or partition is read (see `consumer_settings`).
pub const METADATA_REFRESH: std::time::Duration = std::time::Duration::from_secs(3);

/// The settings, as librdkafka's key/value pairs. Secrets are included, so
/// never log the result.
pub fn consumer_settings(
    source: &KafkaSource,
    group_id: &str,
    client_id: &str,
    size: ReplicaSize,
) -> Result<BTreeMap<&'static str, String>, ConfigError> {
    let mut s = BTreeMap::new();
    s.insert("bootstrap.servers", source.brokers.clone());
    s.insert("group.id", group_id.to_owned());
    s.insert("client.id", client_id.to_owned());
    s.insert("enable.auto.commit", "false".into());
    s.insert("enable.auto.offset.store", "false".into());
    s.insert("partition.assignment.strategy", "cooperative-sticky".into());
    s.insert(
        "auto.offset.reset",
        match source.offset.strategy {
            OffsetStrategy::FromLatest => "latest",
            // from_timestamp partitions get explicit offsets before the group
            // starts; anything left (new partitions) starts at the beginning.
            OffsetStrategy::FromBeginning | OffsetStrategy::FromTimestamp => "earliest",
        }
        .into(),
    );
    s.insert(
        "isolation.level",
        if source.read_committed {
            "read_committed"
        } else {
            "read_uncommitted"
        }
        .into(),
    );
    // Larger messages than the size allows are still fetched, so they can go
    // to the error table instead of stalling the partition.
    s.insert(
        "fetch.message.max.bytes",
        (size.max_kafka_message_bytes() + (1 << 20)).to_string(),
    );
    // librdkafka's prefetch queue counts toward the replica's memory, on
    // top of the batch: 16 MiB keeps the pipeline fed (a quarter second at
    // 60 MB/s) without eating the batch budget.
    s.insert("queued.max.messages.kbytes", "16384".into());
    // Shorter than the time the scheduler waits before moving a dead
    // worker's replicas, so by then the broker has already dropped the dead
    // member from the group and the newcomer's join starts a fresh
    // rebalance. With a longer timeout the newcomer joins while the dead
    // member still "owns" its partitions, and some brokers (tansu 0.6)
    // never rebalance after expiring it. 6 s is the broker-side default
    // minimum (group.min.session.timeout.ms); a heartbeat every 2 s leaves
    // two to lose. Heartbeats come from librdkafka's own thread, so long
    // inserts do not starve them.
    s.insert(
        "session.timeout.ms",
        SESSION_TIMEOUT.as_millis().to_string(),
    );
    s.insert("heartbeat.interval.ms", "2000".into());
    // Consumer lag and fetch-queue size for the replica's metrics.
    s.insert("statistics.interval.ms", "5000".into());
    // Inserts are retried while ClickHouse is down; stay in the group through
    // long retries (the batch is bounded, the wait is not).
    s.insert("max.poll.interval.ms", "900000".into());
    // A topic that does not exist yet, or partitions added to one, are
    // seen at the next metadata refresh: librdkafka's 5 minutes would leave
    // a pipe started before its topic idle that long.
    s.insert(
        "topic.metadata.refresh.interval.ms",
        METADATA_REFRESH.as_millis().to_string(),
    );

    let credentials = source.credentials.clone().unwrap_or_default();
    let tls = source.ca_certificate.is_some()
        || !matches!(source.authentication, KafkaAuthentication::None);
    let sasl = match source.authentication {
        KafkaAuthentication::None | KafkaAuthentication::MutualTls => None,
        KafkaAuthentication::Plain => Some("PLAIN"),
        KafkaAuthentication::ScramSha256 => Some("SCRAM-SHA-256"),
        KafkaAuthentication::ScramSha512 => Some("SCRAM-SHA-512"),
    };
    s.insert(
        "security.protocol",
        match (sasl.is_some(), tls) {
            (true, _) => "sasl_ssl",
            (false, true) => "ssl",
            (false, false) => "plaintext",
        }
        .into(),
    );
    if let Some(mechanism) = sasl {
        let username = credentials
            .username
            .ok_or_else(|| ConfigError("SASL needs a username".into()))?;
        let password = credentials
            .password
            .ok_or_else(|| ConfigError("SASL needs a password".into()))?;
        s.insert("sasl.mechanism", mechanism.into());
        s.insert("sasl.username", username);
        s.insert("sasl.password", password.expose().to_owned());
    }
    if source.authentication == KafkaAuthentication::MutualTls {
        let certificate = credentials
            .certificate
            .ok_or_else(|| ConfigError("MUTUAL_TLS needs a certificate".into()))?;
        let key = credentials
            .private_key
            .ok_or_else(|| ConfigError("MUTUAL_TLS needs a private key".into()))?;
        s.insert("ssl.certificate.pem", certificate);
        s.insert("ssl.key.pem", key.expose().to_owned());
    }
    if let Some(ca) = &source.ca_certificate {
        s.insert("ssl.ca.pem", ca.clone());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::{KafkaCredentials, KafkaOffset, Secret};

    fn source(auth: KafkaAuthentication) -> KafkaSource {
        KafkaSource {
            brokers: "b1:9092,b2:9092".into(),
            topics: vec!["t".into()],
            consumer_group: None,
            offset: KafkaOffset::default(),
            authentication: auth,
            credentials: None,
            ca_certificate: None,
            format: Default::default(),
            schema_registry: None,
            avro_schema: None,
            protobuf_schema: None,
            message_type: None,
            read_committed: false,
        }
    }

    #[test]
    fn plaintext_defaults() {
        let s = consumer_settings(
            &source(KafkaAuthentication::None),
            "g",
            "c",
            ReplicaSize::XS,
        )
        .unwrap();
        assert_eq!(s["security.protocol"], "plaintext");
        assert_eq!(s["enable.auto.commit"], "false");
        assert_eq!(s["partition.assignment.strategy"], "cooperative-sticky");
        assert_eq!(s["auto.offset.reset"], "earliest");
        assert_eq!(s["isolation.level"], "read_uncommitted");
        assert!(!s.contains_key("sasl.mechanism"));
    }

    #[test]
    fn sasl_and_tls() {
        let mut src = source(KafkaAuthentication::ScramSha512);
        assert!(consumer_settings(&src, "g", "c", ReplicaSize::XS).is_err());
        src.credentials = Some(KafkaCredentials {
            username: Some("u".into()),
            password: Some(Secret::new("p")),
            ..Default::default()
        });
        src.ca_certificate = Some("-----BEGIN CERTIFICATE-----".into());
        src.read_committed = true;
        src.offset.strategy = OffsetStrategy::FromLatest;
        let s = consumer_settings(&src, "g", "c", ReplicaSize::L).unwrap();
        assert_eq!(s["security.protocol"], "sasl_ssl");
        assert_eq!(s["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(s["sasl.password"], "p");
        assert!(s.contains_key("ssl.ca.pem"));
        assert_eq!(s["isolation.level"], "read_committed");
        assert_eq!(s["auto.offset.reset"], "latest");
    }

    #[test]
    fn mutual_tls() {
        let mut src = source(KafkaAuthentication::MutualTls);
        src.credentials = Some(KafkaCredentials {
            certificate: Some("CERT".into()),
            private_key: Some(Secret::new("KEY")),
            ..Default::default()
        });
        let s = consumer_settings(&src, "g", "c", ReplicaSize::XS).unwrap();
        assert_eq!(s["security.protocol"], "ssl");
        assert_eq!(s["ssl.certificate.pem"], "CERT");
        assert_eq!(s["ssl.key.pem"], "KEY");
    }

    #[test]
    fn a_ca_alone_means_tls() {
        let mut src = source(KafkaAuthentication::None);
        src.ca_certificate = Some("CA".into());
        let s = consumer_settings(&src, "g", "c", ReplicaSize::XS).unwrap();
        assert_eq!(s["security.protocol"], "ssl");
    }
}
