//! The Kinesis source: a client from the pipe's settings, shard readers,
//! and the pure logic deciding which shards a replica holds and reads.

pub mod client;
pub mod fanout;
pub mod kpl;
pub mod leases;
pub mod probe;
pub mod reader;
pub mod schedule;
pub mod source;

pub use aws_sdk_kinesis::Client;
pub use client::{client, ConfigError};
pub use reader::{list_shards, KinesisRecord, ShardEvent, ShardReader, StartAt, Tagged};
pub use source::KinesisSource;
