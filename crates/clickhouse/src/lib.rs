//! Everything Sluice knows about ClickHouse: the pure part (types,
//! RowBinary, key expressions, DDL) from `sluice-clickhouse-types`, and the
//! thin client that talks to a server.

pub mod sink;

pub use sink::{Endpoint, Failure, Sink, SinkError, TableColumn};
pub use sluice_clickhouse_types::{ddl, expr, rowbinary, types};
pub use sluice_clickhouse_types::{encode, ChType, EncodeError, TypeParseError, Value, Wide};
