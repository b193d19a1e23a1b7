//! The Kafka source of a pipe replica.

pub mod config;
pub mod consumer;
pub mod probe;
pub mod source;

pub use config::{consumer_settings, ConfigError};
pub use consumer::{ConsumerStats, GroupMember, PartitionKey};
pub use rdkafka::error::KafkaError;
pub use rdkafka::message::{BorrowedMessage, Headers, Message};
pub use source::KafkaSource;
