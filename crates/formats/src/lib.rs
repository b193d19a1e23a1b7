//! Turning source records into ClickHouse rows.

pub mod convert;
pub mod infer;
mod json;
pub mod row;

pub use convert::{convert, zero_value, ConvertError};
pub use infer::{fit_to_server, infer_columns, Inference, InferredColumn};
pub use row::{ColumnSource, ErrorCode, RecordError, RecordMeta, RowPlan, VirtualColumn};
