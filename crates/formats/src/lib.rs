//! Turning source records into ClickHouse rows.

pub mod convert;
mod json;
pub mod row;

pub use convert::{convert, zero_value, ConvertError};
pub use row::{ColumnSource, ErrorCode, RecordError, RecordMeta, RowPlan, VirtualColumn};
