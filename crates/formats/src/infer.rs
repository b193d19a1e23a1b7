//! Columns for a new table, suggested from sample messages (the web
//! wizard's "create the table from samples").
//!
//! A suggestion is only worth making if the pipe can then ingest those same
//! messages into it, so the rules follow what the rest of this crate does
//! with a message: a message is read as `RowPlan::encode_message` reads it
//! (one or more objects, or rejected whole), a field is named by the path a
//! field mapping would use and that `row` resolves to that very value, and
//! a type is suggested only for values `convert` turns into it and
//! RowBinary can encode (ranges included). Where a narrower type would
//! fail for one of the samples, the suggestion falls back to `String`,
//! which takes any JSON value (as its JSON text).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use sluice_clickhouse_types::ChType;
use sonic_rs::{Object, Value};

use crate::json::timestamp_nanos;
use crate::json::{self, Kind, Num};
use crate::row::VirtualColumn;

/// sluice_model's `MAX_COLUMNS` (the model is not a dependency of this
/// crate): a table suggested with more columns could not be saved.
const MAX_COLUMNS: usize = 1000;

/// sluice_model's `MAX_IDENTIFIER_CHARS`, for the same reason.
const MAX_NAME_CHARS: usize = 255;

/// sluice_model's `MAX_SOURCE_FIELD_CHARS`: a longer path could not be a
/// field mapping's source.
const MAX_SOURCE_FIELD_CHARS: usize = 1024;

/// Objects nested deeper than this are kept whole, as JSON text: a wide
/// table of deep paths is harder to read than the object it came from.
const MAX_DEPTH: usize = 4;

const NANOS_PER_DAY: i128 = 86_400 * 1_000_000_000;

/// The days ClickHouse's Date can hold: RowBinary writes them as a u16.
const DATE_DAYS: std::ops::RangeInclusive<i128> = 0..=65_535;

/// The days of Date32 and of DateTime64 (1900-01-01 to 2299-12-31).
/// Neither the converter nor RowBinary checks DateTime64's range, but
/// ClickHouse does not keep instants outside it as they were sent.
const DATE32_DAYS: std::ops::RangeInclusive<i128> = -25_567..=120_529;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferredColumn {
    pub name: String,
    /// A type as `ChType::parse` reads it and ClickHouse writes it.
    pub column_type: String,
    /// The field mapping's source for the column: a path as `RowPlan`
    /// resolves it (the key itself at the top level, else keys joined by
    /// dots).
    pub source_field: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inference {
    pub columns: Vec<InferredColumn>,
    /// Samples the pipe would reject whole (not JSON, or holding something
    /// other than objects): they say nothing about the columns, but the
    /// wizard should tell the user they were left out.
    pub unparsed: usize,
}

/// The columns a table needs to take every field of `samples` (each a
/// JSONEachRow message), in the order the fields first appear.
pub fn infer_columns<'a>(samples: impl IntoIterator<Item = &'a [u8]>) -> Inference {
    let mut fields = Fields::default();
    let mut rows = 0;
    let mut unparsed = 0;
    for sample in samples {
        let Some(values) = objects(sample) else {
            unparsed += 1;
            continue;
        };
        for value in &values {
            if let Kind::Object(object) = json::kind(value) {
                fields.observe(object);
                rows += 1;
            }
        }
    }
    Inference {
        columns: fields.columns(rows),
        unparsed,
    }
}

/// The message's objects, or `None` when the pipe would send the whole
/// message to the error table: then none of its rows would land either.
fn objects(sample: &[u8]) -> Option<Vec<Value>> {
    let values = json::values(sample).collect::<Result<Vec<_>, _>>().ok()?;
    let all_objects = !values.is_empty()
        && values
            .iter()
            .all(|v| matches!(json::kind(v), Kind::Object(_)));
    all_objects.then_some(values)
}

/// What one row holds at a path.
enum Seen<'v> {
    Null,
    /// A value the column receives as it is.
    Value(&'v Value),
    /// An object whose fields became paths of their own.
    Object {
        empty: bool,
    },
}

/// One row's paths, each with the value `RowPlan` would read there.
#[derive(Default)]
struct Row<'v> {
    seen: Vec<(String, Seen<'v>, bool)>,
    index: HashMap<String, usize>,
}

impl<'v> Row<'v> {
    /// `literal`: the path is a top-level key. One with dots in it can
    /// spell the same path as nested keys; `RowPlan` looks the top-level
    /// key up first, so it wins.
    fn insert(&mut self, path: String, seen: Seen<'v>, literal: bool) {
        match self.index.entry(path) {
            Entry::Occupied(slot) => {
                let held = &mut self.seen[*slot.get()];
                if literal && !held.2 {
                    held.1 = seen;
                    held.2 = true;
                }
            }
            Entry::Vacant(slot) => {
                let path = slot.key().clone();
                slot.insert(self.seen.len());
                self.seen.push((path, seen, literal));
            }
        }
    }

    fn walk(&mut self, object: &'v Object, prefix: Option<&str>, depth: usize) {
        for (key, value) in in_order(object) {
            // Below the top level a path is split at its dots: a key with a
            // dot in it cannot be named (its object is kept whole instead).
            if prefix.is_some() && key.contains('.') {
                continue;
            }
            let path = match prefix {
                Some(prefix) => format!("{prefix}.{key}"),
                None => key.to_owned(),
            };
            let literal = prefix.is_none();
            match json::kind(value) {
                Kind::Null => self.insert(path, Seen::Null, literal),
                // A top-level key with a dot cannot lead a path either: the
                // path's first segment would be the part before the dot.
                Kind::Object(inner) if depth < MAX_DEPTH && !key.contains('.') => {
                    let seen = if inner.iter().any(|(k, _)| k.contains('.')) {
                        Seen::Value(value)
                    } else {
                        Seen::Object {
                            empty: inner.is_empty(),
                        }
                    };
                    self.insert(path.clone(), seen, literal);
                    self.walk(inner, Some(&path), depth + 1);
                }
                _ => self.insert(path, Seen::Value(value), literal),
            }
        }
    }
}

/// The object's fields in the order they first appear, each with its last
/// value: a repeated key reads as its last value, as everywhere else.
fn in_order(object: &Object) -> Vec<(&str, &Value)> {
    let mut fields: Vec<(&str, &Value)> = Vec::with_capacity(object.len());
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(object.len());
    for (key, value) in object.iter() {
        match index.entry(key) {
            Entry::Occupied(slot) => fields[*slot.get()].1 = value,
            Entry::Vacant(slot) => {
                slot.insert(fields.len());
                fields.push((key, value));
            }
        }
    }
    fields
}

/// Every path seen in any row, in order of first appearance.
#[derive(Default)]
struct Fields {
    fields: Vec<Field>,
    index: HashMap<String, usize>,
}

#[derive(Default)]
struct Field {
    path: String,
    /// Rows holding a value other than null here.
    present: usize,
    values: Values,
    /// Seen as something the column would take as it is.
    leaf: bool,
    /// Seen as an object with fields, which have paths of their own.
    parent: bool,
}

impl Fields {
    fn observe(&mut self, object: &Object) {
        let mut row = Row::default();
        row.walk(object, None, 1);
        for (path, seen, _) in row.seen {
            let field = match self.index.entry(path) {
                Entry::Occupied(slot) => &mut self.fields[*slot.get()],
                Entry::Vacant(slot) => {
                    let path = slot.key().clone();
                    slot.insert(self.fields.len());
                    self.fields.push(Field {
                        path,
                        ..Field::default()
                    });
                    let last = self.fields.len() - 1;
                    &mut self.fields[last]
                }
            };
            match seen {
                Seen::Null => {}
                Seen::Value(value) => {
                    field.present += 1;
                    field.leaf = true;
                    field.values.add(value);
                }
                Seen::Object { empty } => {
                    field.present += 1;
                    // Should the path also hold other values, its column
                    // receives the object too, as JSON text.
                    field.values.json_text = true;
                    field.parent |= !empty;
                }
            }
        }
    }

    fn columns(&self, rows: usize) -> Vec<InferredColumn> {
        let mut names = Names::default();
        self.fields
            .iter()
            .filter(|field| mappable(&field.path))
            .filter_map(|field| Some((field, field.column_type(rows)?)))
            .take(MAX_COLUMNS)
            .map(|(field, ty)| InferredColumn {
                name: names.unique(&field.path),
                column_type: ty.to_string(),
                source_field: field.path.clone(),
            })
            .collect()
    }
}

impl Field {
    /// `None` for an object only ever seen with fields: they are the
    /// columns.
    fn column_type(&self, rows: usize) -> Option<ChType> {
        if self.parent && !self.leaf {
            return None;
        }
        let ty = self.values.column_type();
        // A missing array converts to an empty one; ClickHouse has no
        // Nullable(Array).
        if self.present < rows && !matches!(ty, ChType::Array(_)) {
            return Some(ChType::Nullable(Box::new(ty)));
        }
        Some(ty)
    }
}

/// Whether a field mapping can name the path and `RowPlan` then reads it
/// from the message: a virtual column's name reads the record's metadata.
fn mappable(path: &str) -> bool {
    !path.is_empty()
        && path.chars().count() <= MAX_SOURCE_FIELD_CHARS
        && !path.chars().any(char::is_control)
        && VirtualColumn::parse(path).is_none()
}

/// The kinds of (non-null) values seen at a path, or in its arrays.
#[derive(Default)]
struct Values {
    bools: bool,
    integers: bool,
    negative: bool,
    beyond_i64: bool,
    floats: bool,
    strings: Option<Strings>,
    arrays: Option<Box<Elements>>,
    /// Objects (and arrays inside arrays): only String takes them.
    json_text: bool,
}

#[derive(Default)]
struct Elements {
    values: Values,
    nulls: bool,
}

impl Values {
    fn add(&mut self, value: &Value) {
        match json::kind(value) {
            Kind::Null => {}
            Kind::Bool(_) => self.bools = true,
            Kind::Number(Num::U64(u)) => {
                self.integers = true;
                self.beyond_i64 |= i64::try_from(u).is_err();
            }
            Kind::Number(Num::I64(_)) => {
                self.integers = true;
                self.negative = true;
            }
            Kind::Number(Num::F64(_)) => self.floats = true,
            Kind::String(s) => self
                .strings
                .get_or_insert_with(Strings::default)
                .add(s, value),
            Kind::Array(items) => {
                let elements = self.arrays.get_or_insert_with(Box::default);
                for item in items.iter() {
                    match json::kind(item) {
                        Kind::Null => elements.nulls = true,
                        Kind::Array(_) | Kind::Object(_) => elements.values.json_text = true,
                        _ => elements.values.add(item),
                    }
                }
            }
            Kind::Object(_) => self.json_text = true,
        }
    }

    fn column_type(&self) -> ChType {
        let kinds = [
            self.bools,
            self.integers || self.floats,
            self.strings.is_some(),
            self.arrays.is_some(),
            self.json_text,
        ];
        // None (only nulls, or empty arrays' elements) or several: String
        // is the one type that takes anything.
        if kinds.iter().filter(|&&k| k).count() != 1 {
            return ChType::String;
        }
        if self.bools {
            ChType::Bool
        } else if self.floats {
            ChType::Float64
        } else if self.integers {
            match (self.negative, self.beyond_i64) {
                (true, true) => ChType::Int128,
                (false, true) => ChType::UInt64,
                _ => ChType::Int64,
            }
        } else if let Some(strings) = &self.strings {
            strings.column_type()
        } else if let Some(elements) = &self.arrays {
            let inner = elements.values.column_type();
            ChType::Array(Box::new(if elements.nulls {
                ChType::Nullable(Box::new(inner))
            } else {
                inner
            }))
        } else {
            ChType::String
        }
    }
}

#[derive(Default)]
struct Strings {
    /// A string that is neither a date nor a date-time.
    other: bool,
    date_times: bool,
    /// The earliest and latest instants of the dates and date-times.
    range: Option<(i128, i128)>,
}

impl Strings {
    fn add(&mut self, s: &str, value: &Value) {
        if self.other {
            return;
        }
        match instant(s, value) {
            Some((nanos, date_time)) => {
                self.date_times |= date_time;
                let (low, high) = self.range.get_or_insert((nanos, nanos));
                *low = (*low).min(nanos);
                *high = (*high).max(nanos);
            }
            None => self.other = true,
        }
    }

    fn column_type(&self) -> ChType {
        let Some((low, high)) = self.range.filter(|_| !self.other) else {
            return ChType::String;
        };
        let (first_day, last_day) = (
            low.div_euclid(NANOS_PER_DAY),
            high.div_euclid(NANOS_PER_DAY),
        );
        let within = |days: &std::ops::RangeInclusive<i128>| {
            days.contains(&first_day) && days.contains(&last_day)
        };
        if self.date_times {
            // Dates convert to DateTime64 too (as midnight UTC), so a
            // field mixing both keeps them all.
            if within(&DATE32_DAYS) {
                ChType::DateTime64(3, None)
            } else {
                ChType::String
            }
        } else if within(&DATE_DAYS) {
            ChType::Date
        } else if within(&DATE32_DAYS) {
            // Birth dates and the like, before 1970.
            ChType::Date32
        } else {
            ChType::String
        }
    }
}

/// The instant a string names (nanoseconds since the epoch, UTC) and
/// whether it has a time of day, if it is an ISO-8601 date (`YYYY-MM-DD`)
/// or date-time (`YYYY-MM-DD hh:mm...`) the converter reads. Its other
/// readings (epoch numbers in strings, slashes) are not taken as a sign
/// of a date: `"1700000000"` is more likely an identifier.
fn instant(s: &str, value: &Value) -> Option<(i128, bool)> {
    let bytes = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let date = digits(0..4)
        && bytes.get(4) == Some(&b'-')
        && digits(5..7)
        && bytes.get(7) == Some(&b'-')
        && digits(8..10);
    if !date {
        return None;
    }
    if bytes.len() == 10 {
        // The Date converter reads the same `%Y-%m-%d` as this one.
        return timestamp_nanos(value).map(|nanos| (nanos, false));
    }
    let time = matches!(bytes.get(10), Some(b'T' | b't' | b' '))
        && digits(11..13)
        && bytes.get(13) == Some(&b':')
        && digits(14..16);
    if !time {
        return None;
    }
    timestamp_nanos(value).map(|nanos| (nanos, true))
}

/// Column names handed out so far, so that each is new.
#[derive(Default)]
struct Names {
    taken: HashSet<String>,
}

impl Names {
    /// A ClickHouse identifier that needs no quoting, derived from `path`.
    /// A leading digit gets `c_` rather than `_` before it: names starting
    /// with `_` read as virtual columns (`_key`, `_offset`).
    fn unique(&mut self, path: &str) -> String {
        let mut base: String = path
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
            base.insert_str(0, "c_");
        }
        // All ASCII by now: any byte is a character boundary.
        base.truncate(MAX_NAME_CHARS);
        let mut n = 1usize;
        loop {
            let name = if n == 1 {
                base.clone()
            } else {
                let suffix = format!("_{n}");
                let kept = base.len().min(MAX_NAME_CHARS - suffix.len());
                format!("{}{suffix}", &base[..kept])
            };
            if self.taken.insert(name.clone()) {
                return name;
            }
            n += 1;
        }
    }
}

/// The nearest type a server knows when it lacks some of the modern ones
/// inference may suggest (18.x has no Bool, DateTime64, Date32 or 128-bit
/// integers). `has` answers whether the server has a type family, as
/// `system.data_type_families` lists them. Every replacement is one the
/// converter fills from the same JSON values: booleans as 0/1, date-times
/// cut to the second, and values no narrower type holds as their text.
pub fn fit_to_server(ty: &ChType, has: &dyn Fn(&str) -> bool) -> ChType {
    let keep_or = |family: &str, fallback: ChType| {
        if has(family) {
            ty.clone()
        } else {
            fallback
        }
    };
    match ty {
        ChType::Bool => keep_or("Bool", ChType::UInt8),
        ChType::DateTime64(_, zone) => keep_or("DateTime64", ChType::DateTime(zone.clone())),
        ChType::Date32 => keep_or("Date32", ChType::String),
        ChType::Int128 => keep_or("Int128", ChType::String),
        ChType::UInt128 => keep_or("UInt128", ChType::String),
        ChType::Int256 => keep_or("Int256", ChType::String),
        ChType::UInt256 => keep_or("UInt256", ChType::String),
        ChType::Nullable(inner) => ChType::Nullable(Box::new(fit_to_server(inner, has))),
        ChType::Array(inner) => ChType::Array(Box::new(fit_to_server(inner, has))),
        ChType::LowCardinality(inner) => {
            ChType::LowCardinality(Box::new(fit_to_server(inner, has)))
        }
        // Without these a value is kept as its JSON text.
        ChType::Map(key, value) if has("Map") => ChType::Map(
            Box::new(fit_to_server(key, has)),
            Box::new(fit_to_server(value, has)),
        ),
        ChType::Variant(types) if has("Variant") => {
            ChType::Variant(types.iter().map(|t| fit_to_server(t, has)).collect())
        }
        ChType::Map(..) | ChType::Variant(_) => ChType::String,
        ChType::Json => keep_or("JSON", ChType::String),
        ChType::Tuple(items) => ChType::Tuple(
            items
                .iter()
                .map(|(name, t)| (name.clone(), fit_to_server(t, has)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{ErrorCode, RecordMeta, RowPlan};
    use crate::Decoder;
    use crate::{convert, json};

    fn infer(samples: &[&str]) -> Inference {
        let inference = infer_columns(samples.iter().map(|s| s.as_bytes()));
        assert_ingests(samples.iter().map(|s| s.as_bytes()), &inference);
        inference
    }

    /// (name, type, source) of each column.
    fn columns(samples: &[&str]) -> Vec<(String, String, String)> {
        infer(samples)
            .columns
            .into_iter()
            .map(|c| (c.name, c.column_type, c.source_field))
            .collect()
    }

    /// The type of the column read from `source`.
    fn type_of(samples: &[&str], source: &str) -> String {
        infer(samples)
            .columns
            .into_iter()
            .find(|c| c.source_field == source)
            .map(|c| c.column_type)
            .unwrap_or_else(|| panic!("no column for `{source}`"))
    }

    fn column(name: &str, ty: &str, source: &str) -> (String, String, String) {
        (name.to_owned(), ty.to_owned(), source.to_owned())
    }

    /// The point of it all: a pipe into the suggested table takes every
    /// parsed sample, and only those.
    fn assert_ingests<'a>(samples: impl IntoIterator<Item = &'a [u8]>, inference: &Inference) {
        let plan = RowPlan::new(
            inference
                .columns
                .iter()
                .map(|c| (c.name.clone(), ChType::parse(&c.column_type).unwrap()))
                .collect(),
            &inference
                .columns
                .iter()
                .map(|c| (c.source_field.clone(), c.name.clone()))
                .collect::<Vec<_>>(),
        );
        let mut rejected = 0;
        for sample in samples {
            let mut out = Vec::new();
            if let Err(error) = crate::json::JsonDecoder::new(plan.clone()).decode(
                sample,
                &RecordMeta::default(),
                &mut out,
            ) {
                assert_eq!(
                    error.code,
                    ErrorCode::DataParsingError,
                    "{error} for {}",
                    String::from_utf8_lossy(sample)
                );
                rejected += 1;
            }
        }
        assert_eq!(rejected, inference.unparsed);
    }

    #[test]
    fn scalar_types() {
        let samples = [
            r#"{"flag": true, "n": 1, "big": 1, "wide": 1, "x": 1.5, "mixed": 1, "s": "a"}"#,
            r#"{"flag": false, "n": -2, "big": 18446744073709551615, "wide": -1, "x": 2, "mixed": 2.5, "s": "b"}"#,
            r#"{"flag": true, "n": 3, "big": 3, "wide": 18446744073709551615, "x": 1e300, "mixed": 3, "s": ""}"#,
        ];
        assert_eq!(
            columns(&samples),
            [
                column("flag", "Bool", "flag"),
                column("n", "Int64", "n"),
                column("big", "UInt64", "big"),
                column("wide", "Int128", "wide"),
                column("x", "Float64", "x"),
                column("mixed", "Float64", "mixed"),
                column("s", "String", "s"),
            ]
        );
    }

    #[test]
    fn mixed_kinds_are_strings() {
        let samples = [
            r#"{"a": 1, "b": true, "c": "x", "d": [1], "e": {"k": 1}, "f": 1.5}"#,
            r#"{"a": "1", "b": 0, "c": false, "d": 2, "e": 3, "f": "2024-05-01"}"#,
        ];
        for source in ["a", "b", "c", "d", "e", "f"] {
            assert_eq!(type_of(&samples, source), "String", "{source}");
        }
    }

    #[test]
    fn nullable_when_null_or_missing_but_never_arrays() {
        let samples = [
            r#"{"a": 1, "b": 1, "c": [1], "n": null, "d": {"x": 1}}"#,
            r#"{"a": null, "b": 5, "c": null, "n": null, "d": null}"#,
            r#"{"a": 3, "b": 2}"#,
        ];
        assert_eq!(
            columns(&samples),
            [
                column("a", "Nullable(Int64)", "a"),
                column("b", "Int64", "b"),
                column("c", "Array(Int64)", "c"),
                column("n", "Nullable(String)", "n"),
                column("d_x", "Nullable(Int64)", "d.x"),
            ]
        );
    }

    #[test]
    fn nested_objects_are_flattened_to_four_levels() {
        let samples = [
            r#"{"user": {"name": "ann", "address": {"city": "Oslo", "geo": {"lat": 59.9, "deeper": {"x": 1}}}}}"#,
        ];
        assert_eq!(
            columns(&samples),
            [
                column("user_name", "String", "user.name"),
                column("user_address_city", "String", "user.address.city"),
                column("user_address_geo_lat", "Float64", "user.address.geo.lat"),
                column(
                    "user_address_geo_deeper",
                    "String",
                    "user.address.geo.deeper"
                ),
            ]
        );
        // The fifth level lands as the fourth's JSON text.
        let plan = RowPlan::new(
            vec![("deeper".to_owned(), ChType::String)],
            &[("user.address.geo.deeper".to_owned(), "deeper".to_owned())],
        );
        let mut out = Vec::new();
        crate::json::JsonDecoder::new(plan.clone())
            .decode(samples[0].as_bytes(), &RecordMeta::default(), &mut out)
            .unwrap();
        assert_eq!(out, b"\x07{\"x\":1}");
    }

    #[test]
    fn empty_objects_and_objects_also_seen_as_values_are_strings() {
        let samples = [
            r#"{"meta": {}, "a": {"b": 1}, "c": {"d": 1}}"#,
            r#"{"meta": {}, "a": 5, "c": null}"#,
        ];
        assert_eq!(
            columns(&samples),
            [
                column("meta", "String", "meta"),
                // The row where `a` is an object fills it with the JSON text.
                column("a", "String", "a"),
                column("a_b", "Nullable(Int64)", "a.b"),
                column("c_d", "Nullable(Int64)", "c.d"),
            ]
        );
    }

    #[test]
    fn date_and_time_strings() {
        let samples = [
            r#"{"t": "2024-05-01T10:00:00Z", "u": "2024-05-01 10:00:00.123", "d": "2024-05-01", "m": "2024-05-01", "born": "1950-02-03", "old": "1850-01-01", "bad": "2024-02-30", "far": "2400-01-01T00:00:00Z", "e": "1700000000"}"#,
            r#"{"t": "2024-05-02T10:00:00.5+02:00", "u": "2024-05-01T10:00", "d": "2149-06-06", "m": "2024-05-01T00:00:00Z", "born": "2000-01-01", "old": "2000-01-01", "bad": "2024-02-01", "far": "2024-01-01T00:00:00Z", "e": "1700000001"}"#,
        ];
        assert_eq!(
            columns(&samples)
                .into_iter()
                .map(|(_, ty, source)| (source, ty))
                .collect::<Vec<_>>(),
            [
                ("t", "DateTime64(3)"),
                ("u", "DateTime64(3)"),
                ("d", "Date"),
                ("m", "DateTime64(3)"),
                ("born", "Date32"),
                ("old", "String"),
                ("bad", "String"),
                ("far", "String"),
                ("e", "String"),
            ]
            .map(|(s, t)| (s.to_owned(), t.to_owned()))
        );
        assert_eq!(type_of(&[r#"{"d": "2149-06-07"}"#], "d"), "Date32");
        assert_eq!(type_of(&[r#"{"d": "2024-05-01x"}"#], "d"), "String");
        assert_eq!(
            type_of(&[r#"{"d": "2024-05-01T10:00:00Z"}"#, r#"{"e": 1}"#], "d"),
            "Nullable(DateTime64(3))"
        );
    }

    #[test]
    fn arrays() {
        let samples = [
            r#"{"i": [1, 2], "s": ["a"], "e": [], "m": [1, "a"], "n": [1, null], "o": [{"a": 1}], "l": [], "d": ["2024-05-01"], "b": [true], "f": [1, 2.5], "z": [null]}"#,
            r#"{"i": [], "s": [], "e": [], "m": [], "n": [2], "o": [[1]], "l": [3], "d": [], "b": [false], "f": [3], "z": []}"#,
        ];
        assert_eq!(
            columns(&samples)
                .into_iter()
                .map(|(_, ty, source)| (source, ty))
                .collect::<Vec<_>>(),
            [
                ("i", "Array(Int64)"),
                ("s", "Array(String)"),
                ("e", "Array(String)"),
                ("m", "Array(String)"),
                ("n", "Array(Nullable(Int64))"),
                ("o", "Array(String)"),
                ("l", "Array(Int64)"),
                ("d", "Array(Date)"),
                ("b", "Array(Bool)"),
                ("f", "Array(Float64)"),
                ("z", "Array(Nullable(String))"),
            ]
            .map(|(s, t)| (s.to_owned(), t.to_owned()))
        );
    }

    #[test]
    fn samples_that_are_not_objects_are_counted_and_skipped() {
        let inference = infer(&[
            "[1, 2]",
            "not json",
            "",
            "42",
            r#"{"a": 1} trailing"#,
            r#"{"a": 1} [2]"#,
            r#"{"a": 1}"#,
            "{\"a\": 2}\n{\"b\": \"x\"}\n",
        ]);
        assert_eq!(inference.unparsed, 6);
        // Three rows: `a` is missing from one, `b` from two.
        assert_eq!(
            inference.columns,
            [
                InferredColumn {
                    name: "a".into(),
                    column_type: "Nullable(Int64)".into(),
                    source_field: "a".into(),
                },
                InferredColumn {
                    name: "b".into(),
                    column_type: "Nullable(String)".into(),
                    source_field: "b".into(),
                },
            ]
        );
        assert_eq!(infer_columns([]), Inference::default());
    }

    #[test]
    fn columns_in_order_of_first_appearance() {
        let samples = [
            r#"{"z": 1, "a": {"y": 1}}"#,
            r#"{"m": 1, "z": 2, "a": {"x": 1, "y": 2}, "b": 1}"#,
        ];
        let sources: Vec<String> = columns(&samples).into_iter().map(|c| c.2).collect();
        assert_eq!(sources, ["z", "a.y", "m", "a.x", "b"]);
    }

    #[test]
    fn names_are_identifiers_and_unique() {
        let samples = [
            r#"{"user.name": 1, "user": {"name": 2}, "user_name": 3, "1st": 4, "prix €": 5, "a-b": 6, "a_b": 7, "a b": 8, "_id": 9}"#,
        ];
        let names: Vec<String> = columns(&samples).into_iter().map(|c| c.0).collect();
        assert_eq!(
            names,
            [
                // `user.name` and `user`'s `name` are one path.
                "user_name",
                "user_name_2",
                "c_1st",
                "prix__",
                "a_b",
                "a_b_2",
                "a_b_3",
                "_id",
            ]
        );
        let long = "x".repeat(300);
        let sample = format!(r#"{{"{long}": 1, "{long}y": 2}}"#);
        let names: Vec<String> = columns(&[&sample]).into_iter().map(|c| c.0).collect();
        assert_eq!(
            names,
            [long[..255].to_owned(), format!("{}_2", &long[..253])]
        );
    }

    #[test]
    fn dotted_keys_are_read_as_the_pipe_reads_them() {
        // A top-level key with dots is a path of its own, which the pipe
        // looks up before walking nested objects: it wins in its row.
        for first in [
            r#"{"a.b": "x", "a": {"b": 1, "c": 2}}"#,
            r#"{"a": {"b": 1, "c": 2}, "a.b": "x"}"#,
        ] {
            let samples = [first, r#"{"a": {"b": 3, "c": 4}}"#];
            assert_eq!(
                columns(&samples),
                [
                    column("a_b", "String", "a.b"),
                    column("a_c", "Int64", "a.c"),
                ]
            );
        }
        // Nested keys with dots cannot be named by a path: their object
        // is also kept whole, the other keys become columns as usual.
        let samples = [r#"{"a": {"x.y": 1, "z": 2}, "k.l": {"m": 1}}"#];
        assert_eq!(
            columns(&samples),
            [
                column("a", "String", "a"),
                column("a_z", "Int64", "a.z"),
                column("k_l", "String", "k.l"),
            ]
        );
    }

    #[test]
    fn repeated_keys_take_their_last_value() {
        assert_eq!(
            columns(&[r#"{"a": "x", "b": 1, "a": 2}"#]),
            [column("a", "Int64", "a"), column("b", "Int64", "b")]
        );
    }

    #[test]
    fn fields_no_mapping_can_name_are_left_out() {
        let samples =
            [r#"{"_key": 1, "_offset": "x", "": 2, "\u0001": 3, "_keys": 4, "": {"x": 5}}"#];
        assert_eq!(
            columns(&samples),
            // The repeated key `""` is an object (its last value) where it
            // first appears.
            [
                column("_x", "Int64", ".x"),
                column("_keys", "Int64", "_keys")
            ]
        );
    }

    #[test]
    fn at_most_a_thousand_columns() {
        let fields: Vec<String> = (0..1500).map(|i| format!("\"f{i}\": {i}")).collect();
        let sample = format!("{{{}}}", fields.join(", "));
        let columns = columns(&[&sample]);
        assert_eq!(columns.len(), 1000);
        assert_eq!(columns[0].0, "f0");
        assert_eq!(columns[999].0, "f999");
    }

    /// Keys a mapping may or may not be able to name, and that may or may
    /// not make the same column name.
    fn any_key() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "[a-c]{1,2}",
            "[a-b0-9_. é$-]{0,4}",
            prop::sample::select(vec!["_key", "_offset", "a.b", "1", "a_b", ""])
                .prop_map(str::to_owned),
        ]
    }

    fn any_scalar() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value as J;
        prop_oneof![
            Just(J::Null),
            any::<bool>().prop_map(J::Bool),
            any::<u64>().prop_map(J::from),
            any::<i64>().prop_map(J::from),
            (0u64..10).prop_map(J::from),
            any::<f64>()
                .prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(J::Number)),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}".prop_map(J::String),
            "(19|20|21|22|23)[0-9]{2}-0[1-9]-[0-2][0-9]".prop_map(J::String),
            "[12][0-9]{3}-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?)?(Z|[+-][01][0-9]:[0-5][0-9])?"
                .prop_map(J::String),
            ".{0,4}".prop_map(J::String),
        ]
    }

    fn flat_object() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value as J;
        let value = prop_oneof![
            4 => any_scalar(),
            1 => prop::collection::vec(any_scalar(), 0..4).prop_map(J::Array),
        ];
        prop::collection::btree_map(any_key(), value, 0..8)
            .prop_map(|m| J::Object(m.into_iter().collect()))
    }

    fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value as J;
        any_scalar().prop_recursive(7, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(J::Array),
                prop::collection::btree_map(any_key(), inner, 0..6)
                    .prop_map(|m| J::Object(m.into_iter().collect())),
            ]
        })
    }

    fn assert_valid(inference: &Inference) {
        let mut names = HashSet::new();
        for column in &inference.columns {
            let name = column.name.as_str();
            assert!(names.insert(name), "`{name}` twice");
            assert!(!name.is_empty() && name.len() <= MAX_NAME_CHARS, "{name}");
            assert!(
                name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'),
                "{name}"
            );
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{name}"
            );
            let ty = ChType::parse(&column.column_type).unwrap();
            assert_eq!(ty.to_string(), column.column_type);
            assert!(mappable(&column.source_field), "{}", column.source_field);
        }
        assert!(inference.columns.len() <= MAX_COLUMNS);
    }

    proptest::proptest! {
        #[test]
        fn flat_objects_convert_into_their_columns(
            rows in proptest::collection::vec(flat_object(), 1..6),
        ) {
            let samples: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
            let inference = infer_columns(samples.iter().map(|s| s.as_bytes()));
            assert_valid(&inference);
            proptest::prop_assert_eq!(inference.unparsed, 0);
            for sample in &samples {
                let values = objects(sample.as_bytes()).unwrap();
                let Kind::Object(object) = json::kind(&values[0]) else {
                    panic!("{sample} is an object");
                };
                let fields = json::Fields::new(object);
                let null = Value::new();
                for column in &inference.columns {
                    // Flat: every source is a top-level key.
                    let value = fields.get(&column.source_field).unwrap_or(&null);
                    let ty = ChType::parse(&column.column_type).unwrap();
                    let converted = convert(&ty, value);
                    proptest::prop_assert!(
                        converted.is_ok(),
                        "{:?} for {} in {sample}",
                        converted,
                        column.column_type
                    );
                }
            }
            assert_ingests(samples.iter().map(|s| s.as_bytes()), &inference);
        }

        #[test]
        fn any_samples_land_in_their_columns(
            samples in proptest::collection::vec(any_json(), 1..6),
        ) {
            let samples: Vec<String> = samples.iter().map(|r| r.to_string()).collect();
            let inference = infer_columns(samples.iter().map(|s| s.as_bytes()));
            assert_valid(&inference);
            assert_ingests(samples.iter().map(|s| s.as_bytes()), &inference);
        }
    }

    #[test]
    fn an_old_server_gets_types_it_knows() {
        let old = |family: &str| !matches!(family, "Bool" | "DateTime64" | "Date32" | "Int128");
        let fit = |t: &str| fit_to_server(&ChType::parse(t).expect("a type"), &old).to_string();
        assert_eq!(fit("Bool"), "UInt8");
        assert_eq!(fit("Nullable(DateTime64(3))"), "Nullable(DateTime)");
        assert_eq!(fit("Array(Nullable(Bool))"), "Array(Nullable(UInt8))");
        assert_eq!(fit("Date32"), "String");
        assert_eq!(fit("Int128"), "String");
        assert_eq!(fit("Nullable(Int64)"), "Nullable(Int64)");
        assert_eq!(fit("Map(String, Bool)"), "Map(String, UInt8)");
        assert_eq!(fit("Tuple(a Bool, b Int64)"), "Tuple(a UInt8, b Int64)");
        let older = |family: &str| old(family) && !matches!(family, "Map" | "Variant" | "JSON");
        let fit = |t: &str| fit_to_server(&ChType::parse(t).expect("a type"), &older).to_string();
        assert_eq!(fit("Map(String, Int64)"), "String");
        assert_eq!(fit("Variant(Int64, String)"), "String");
        assert_eq!(fit("JSON"), "String");
        let modern = |_: &str| true;
        assert_eq!(
            fit_to_server(&ChType::parse("DateTime64(3)").expect("a type"), &modern).to_string(),
            "DateTime64(3)"
        );
    }

    #[test]
    fn what_an_old_server_gets_still_converts() {
        let old = |family: &str| !matches!(family, "Bool" | "DateTime64" | "Date32" | "Int128");
        let samples = [
            r#"{"paid": true, "at": "2026-11-21T10:00:00.123Z", "big": -170141183460469231731687303715884105728}"#,
            r#"{"paid": false, "at": "2026-11-21 10:00:01", "big": 18446744073709551616}"#,
        ];
        let inference = infer_columns(samples.iter().map(|s| s.as_bytes()));
        for column in &inference.columns {
            let fitted = fit_to_server(&ChType::parse(&column.column_type).expect("a type"), &old);
            assert!(!fitted.needs_modern_server(), "{fitted}");
            for sample in samples {
                let value: serde_json::Value = serde_json::from_str(sample).expect("json");
                let text = value[column.source_field.as_str()].to_string();
                let parsed: sonic_rs::Value = sonic_rs::from_str(&text).expect("json");
                crate::convert(&fitted, &parsed)
                    .unwrap_or_else(|e| panic!("{} as {fitted}: {e}", column.source_field));
            }
        }
    }
}
