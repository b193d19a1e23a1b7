//! Everything Sluice knows about ClickHouse: its types, RowBinary encoding
//! (pure), table DDL (pure), and the thin client that talks to a server.

pub mod ddl;
pub mod rowbinary;
pub mod sink;
pub mod types;

pub use rowbinary::{encode, EncodeError, Value, Wide};
pub use sink::{Endpoint, Failure, Sink, SinkError, TableColumn};
pub use types::{ChType, TypeParseError};
