//! ClickHouse without I/O: its types, the RowBinary encoding of values
//! whose types are known only at run time, key expressions parsed into a
//! tree, and the DDL rendered from them. Pure, so the model crate validates
//! a pipe with the same parser the worker creates its table with.

pub mod ddl;
pub mod expr;
pub mod rowbinary;
pub mod types;

pub use rowbinary::{encode, EncodeError, Value, Wide};
pub use types::{ChType, TypeParseError};
