//! ClickHouse data types, parsed from their SQL spelling (as `DESCRIBE
//! TABLE` prints them and as users write them in a pipe's columns).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChType {
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    UInt128,
    UInt256,
    Int8,
    Int16,
    Int32,
    Int64,
    Int128,
    Int256,
    Float32,
    Float64,
    Decimal { precision: u8, scale: u8 },
    Bool,
    String,
    FixedString(usize),
    Date,
    Date32,
    DateTime(Option<String>),
    DateTime64(u8, Option<String>),
    Uuid,
    Ipv4,
    Ipv6,
    Enum8(Vec<(String, i8)>),
    Enum16(Vec<(String, i16)>),
    LowCardinality(Box<ChType>),
    Nullable(Box<ChType>),
    Array(Box<ChType>),
    Tuple(Vec<(Option<String>, ChType)>),
    Map(Box<ChType>, Box<ChType>),
    Json,
    Variant(Vec<ChType>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse ClickHouse type `{input}`: {reason}")]
pub struct TypeParseError {
    pub input: String,
    pub reason: String,
}

impl ChType {
    /// The type families this type is built from, outermost first, as
    /// `system.data_type_families` names them: what a server must have to
    /// hold the type.
    pub fn families(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        self.collect_families(&mut out);
        out
    }

    fn collect_families(&self, out: &mut Vec<&'static str>) {
        let name = match self {
            ChType::UInt8 => "UInt8",
            ChType::UInt16 => "UInt16",
            ChType::UInt32 => "UInt32",
            ChType::UInt64 => "UInt64",
            ChType::UInt128 => "UInt128",
            ChType::UInt256 => "UInt256",
            ChType::Int8 => "Int8",
            ChType::Int16 => "Int16",
            ChType::Int32 => "Int32",
            ChType::Int64 => "Int64",
            ChType::Int128 => "Int128",
            ChType::Int256 => "Int256",
            ChType::Float32 => "Float32",
            ChType::Float64 => "Float64",
            ChType::Decimal { .. } => "Decimal",
            ChType::Bool => "Bool",
            ChType::String => "String",
            ChType::FixedString(_) => "FixedString",
            ChType::Date => "Date",
            ChType::Date32 => "Date32",
            ChType::DateTime(_) => "DateTime",
            ChType::DateTime64(..) => "DateTime64",
            ChType::Uuid => "UUID",
            ChType::Ipv4 => "IPv4",
            ChType::Ipv6 => "IPv6",
            ChType::Enum8(_) => "Enum8",
            ChType::Enum16(_) => "Enum16",
            ChType::LowCardinality(_) => "LowCardinality",
            ChType::Nullable(_) => "Nullable",
            ChType::Array(_) => "Array",
            ChType::Tuple(_) => "Tuple",
            ChType::Map(..) => "Map",
            ChType::Json => "JSON",
            ChType::Variant(_) => "Variant",
        };
        if !out.contains(&name) {
            out.push(name);
        }
        match self {
            ChType::LowCardinality(t) | ChType::Nullable(t) | ChType::Array(t) => {
                t.collect_families(out)
            }
            ChType::Map(k, v) => {
                k.collect_families(out);
                v.collect_families(out);
            }
            ChType::Tuple(items) => items.iter().for_each(|(_, t)| t.collect_families(out)),
            ChType::Variant(items) => items.iter().for_each(|t| t.collect_families(out)),
            _ => {}
        }
    }

    /// The first family of this type a server lacks, given the rows of its
    /// `system.data_type_families` as (name, case_insensitive).
    pub fn first_missing_family(&self, server: &[(String, bool)]) -> Option<&'static str> {
        self.families().into_iter().find(|family| {
            !server.iter().any(|(name, case_insensitive)| {
                name == family || (*case_insensitive && name.eq_ignore_ascii_case(family))
            })
        })
    }

    pub fn parse(input: &str) -> Result<ChType, TypeParseError> {
        let mut parser = Parser {
            text: input,
            pos: 0,
        };
        let ty = parser.parse_type().map_err(|reason| TypeParseError {
            input: input.to_owned(),
            reason,
        })?;
        parser.skip_ws();
        if parser.pos != input.len() {
            return Err(TypeParseError {
                input: input.to_owned(),
                reason: format!("unexpected `{}`", &input[parser.pos..]),
            });
        }
        Ok(ty)
    }

    pub fn is_nullable(&self) -> bool {
        matches!(self, ChType::Nullable(_))
    }

    /// The type without LowCardinality, which changes storage, not values.
    pub fn value_type(&self) -> &ChType {
        match self {
            ChType::LowCardinality(inner) => inner.value_type(),
            other => other,
        }
    }

    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            ChType::UInt8
                | ChType::UInt16
                | ChType::UInt32
                | ChType::UInt64
                | ChType::UInt128
                | ChType::UInt256
                | ChType::Int8
                | ChType::Int16
                | ChType::Int32
                | ChType::Int64
                | ChType::Int128
                | ChType::Int256
        )
    }

    pub fn is_numeric(&self) -> bool {
        self.is_integer()
            || matches!(
                self,
                ChType::Float32 | ChType::Float64 | ChType::Decimal { .. }
            )
    }

    /// Types the 18.16 server (the one in the test stack) lacks; their
    /// encodings are checked against the chdb engine instead.
    pub fn needs_modern_server(&self) -> bool {
        match self {
            ChType::UInt128
            | ChType::UInt256
            | ChType::Int128
            | ChType::Int256
            | ChType::Bool
            | ChType::Date32
            | ChType::DateTime64(..)
            | ChType::Ipv4
            | ChType::Ipv6
            | ChType::Map(..)
            | ChType::Json
            | ChType::Variant(_) => true,
            ChType::Decimal { precision, .. } => *precision > 38,
            ChType::LowCardinality(t) | ChType::Nullable(t) | ChType::Array(t) => {
                t.needs_modern_server()
            }
            ChType::Tuple(items) => items.iter().any(|(_, t)| t.needs_modern_server()),
            _ => false,
        }
    }
}

impl fmt::Display for ChType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
        match self {
            ChType::UInt8 => f.write_str("UInt8"),
            ChType::UInt16 => f.write_str("UInt16"),
            ChType::UInt32 => f.write_str("UInt32"),
            ChType::UInt64 => f.write_str("UInt64"),
            ChType::UInt128 => f.write_str("UInt128"),
            ChType::UInt256 => f.write_str("UInt256"),
            ChType::Int8 => f.write_str("Int8"),
            ChType::Int16 => f.write_str("Int16"),
            ChType::Int32 => f.write_str("Int32"),
            ChType::Int64 => f.write_str("Int64"),
            ChType::Int128 => f.write_str("Int128"),
            ChType::Int256 => f.write_str("Int256"),
            ChType::Float32 => f.write_str("Float32"),
            ChType::Float64 => f.write_str("Float64"),
            ChType::Decimal { precision, scale } => write!(f, "Decimal({precision}, {scale})"),
            ChType::Bool => f.write_str("Bool"),
            ChType::String => f.write_str("String"),
            ChType::FixedString(n) => write!(f, "FixedString({n})"),
            ChType::Date => f.write_str("Date"),
            ChType::Date32 => f.write_str("Date32"),
            ChType::DateTime(None) => f.write_str("DateTime"),
            ChType::DateTime(Some(tz)) => write!(f, "DateTime({})", quoted(tz)),
            ChType::DateTime64(p, None) => write!(f, "DateTime64({p})"),
            ChType::DateTime64(p, Some(tz)) => write!(f, "DateTime64({p}, {})", quoted(tz)),
            ChType::Uuid => f.write_str("UUID"),
            ChType::Ipv4 => f.write_str("IPv4"),
            ChType::Ipv6 => f.write_str("IPv6"),
            ChType::Enum8(items) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|(n, v)| format!("{} = {v}", quoted(n)))
                    .collect();
                write!(f, "Enum8({})", items.join(", "))
            }
            ChType::Enum16(items) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|(n, v)| format!("{} = {v}", quoted(n)))
                    .collect();
                write!(f, "Enum16({})", items.join(", "))
            }
            ChType::LowCardinality(t) => write!(f, "LowCardinality({t})"),
            ChType::Nullable(t) => write!(f, "Nullable({t})"),
            ChType::Array(t) => write!(f, "Array({t})"),
            ChType::Tuple(items) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|(name, t)| match name {
                        Some(name) => format!("{name} {t}"),
                        None => t.to_string(),
                    })
                    .collect();
                write!(f, "Tuple({})", items.join(", "))
            }
            ChType::Map(k, v) => write!(f, "Map({k}, {v})"),
            ChType::Json => f.write_str("JSON"),
            ChType::Variant(items) => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "Variant({})", items.join(", "))
            }
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        while self.rest().starts_with(char::is_whitespace) {
            self.pos += self.rest().chars().next().map_or(1, char::len_utf8);
        }
    }

    fn eat(&mut self, token: char) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: char) -> Result<(), String> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(format!("expected `{token}` at `{}`", self.rest()))
        }
    }

    fn ident(&mut self) -> Result<&str, String> {
        self.skip_ws();
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err(format!("expected a name at `{}`", self.rest()));
        }
        let start = self.pos;
        self.pos += len;
        Ok(&self.text[start..self.pos])
    }

    fn number(&mut self) -> Result<i64, String> {
        self.skip_ws();
        let len = self
            .rest()
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
            .map_or(self.rest().len(), |(i, _)| i);
        let text = &self.rest()[..len];
        let value = text
            .parse()
            .map_err(|_| format!("expected a number at `{}`", self.rest()))?;
        self.pos += len;
        Ok(value)
    }

    fn quoted(&mut self) -> Result<String, String> {
        self.skip_ws();
        if !self.rest().starts_with('\'') {
            return Err(format!("expected a quoted string at `{}`", self.rest()));
        }
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        out.push(escaped);
                    }
                }
                '\'' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        Err("unterminated string".into())
    }

    fn small(&mut self, what: &str, max: i64) -> Result<u8, String> {
        let n = self.number()?;
        if (0..=max).contains(&n) {
            Ok(n as u8)
        } else {
            Err(format!("{what} must be between 0 and {max}"))
        }
    }

    fn parse_type(&mut self) -> Result<ChType, String> {
        let name = self.ident()?.to_owned();
        let simple = match name.as_str() {
            "UInt8" => Some(ChType::UInt8),
            "UInt16" => Some(ChType::UInt16),
            "UInt32" => Some(ChType::UInt32),
            "UInt64" => Some(ChType::UInt64),
            "UInt128" => Some(ChType::UInt128),
            "UInt256" => Some(ChType::UInt256),
            "Int8" => Some(ChType::Int8),
            "Int16" => Some(ChType::Int16),
            "Int32" => Some(ChType::Int32),
            "Int64" => Some(ChType::Int64),
            "Int128" => Some(ChType::Int128),
            "Int256" => Some(ChType::Int256),
            "Float32" => Some(ChType::Float32),
            "Float64" => Some(ChType::Float64),
            "Bool" | "Boolean" => Some(ChType::Bool),
            "String" => Some(ChType::String),
            "Date" => Some(ChType::Date),
            "Date32" => Some(ChType::Date32),
            "UUID" => Some(ChType::Uuid),
            "IPv4" => Some(ChType::Ipv4),
            "IPv6" => Some(ChType::Ipv6),
            _ => None,
        };
        if let Some(simple) = simple {
            return Ok(simple);
        }
        match name.as_str() {
            "DateTime" => {
                if self.eat('(') {
                    let tz = self.quoted()?;
                    self.expect(')')?;
                    Ok(ChType::DateTime(Some(tz)))
                } else {
                    Ok(ChType::DateTime(None))
                }
            }
            "DateTime64" => {
                self.expect('(')?;
                let precision = self.small("DateTime64 precision", 9)?;
                let tz = if self.eat(',') {
                    Some(self.quoted()?)
                } else {
                    None
                };
                self.expect(')')?;
                Ok(ChType::DateTime64(precision, tz))
            }
            "FixedString" => {
                self.expect('(')?;
                let n = self.number()?;
                self.expect(')')?;
                if !(1..=1 << 20).contains(&n) {
                    return Err("FixedString length must be between 1 and 1048576".into());
                }
                Ok(ChType::FixedString(n as usize))
            }
            "Decimal" => {
                self.expect('(')?;
                let precision = self.small("Decimal precision", 76)?;
                let scale = if self.eat(',') {
                    self.small("Decimal scale", 76)?
                } else {
                    0
                };
                self.expect(')')?;
                decimal(precision, scale)
            }
            "Decimal32" | "Decimal64" | "Decimal128" | "Decimal256" => {
                let precision = match name.as_str() {
                    "Decimal32" => 9,
                    "Decimal64" => 18,
                    "Decimal128" => 38,
                    _ => 76,
                };
                self.expect('(')?;
                let scale = self.small("Decimal scale", 76)?;
                self.expect(')')?;
                decimal(precision, scale)
            }
            "Enum8" | "Enum16" => {
                self.expect('(')?;
                let mut items = Vec::new();
                loop {
                    let label = self.quoted()?;
                    self.expect('=')?;
                    let value = self.number()?;
                    items.push((label, value));
                    if !self.eat(',') {
                        break;
                    }
                }
                self.expect(')')?;
                if name == "Enum8" {
                    items
                        .into_iter()
                        .map(|(l, v)| {
                            i8::try_from(v)
                                .map(|v| (l, v))
                                .map_err(|_| format!("Enum8 value {v} out of range"))
                        })
                        .collect::<Result<_, _>>()
                        .map(ChType::Enum8)
                } else {
                    items
                        .into_iter()
                        .map(|(l, v)| {
                            i16::try_from(v)
                                .map(|v| (l, v))
                                .map_err(|_| format!("Enum16 value {v} out of range"))
                        })
                        .collect::<Result<_, _>>()
                        .map(ChType::Enum16)
                }
            }
            "Nullable" | "LowCardinality" | "Array" => {
                self.expect('(')?;
                let inner = Box::new(self.parse_type()?);
                self.expect(')')?;
                Ok(match name.as_str() {
                    "Nullable" => ChType::Nullable(inner),
                    "LowCardinality" => ChType::LowCardinality(inner),
                    _ => ChType::Array(inner),
                })
            }
            "SimpleAggregateFunction" => {
                self.expect('(')?;
                self.ident()?;
                self.expect(',')?;
                let inner = self.parse_type()?;
                self.expect(')')?;
                Ok(inner)
            }
            "Map" => {
                self.expect('(')?;
                let key = self.parse_type()?;
                self.expect(',')?;
                let value = self.parse_type()?;
                self.expect(')')?;
                Ok(ChType::Map(Box::new(key), Box::new(value)))
            }
            "Tuple" => {
                self.expect('(')?;
                let mut items = Vec::new();
                loop {
                    // `name Type` or just `Type`: look ahead for a second word.
                    let save = self.pos;
                    let first = self.ident()?.to_owned();
                    self.skip_ws();
                    let named = self
                        .rest()
                        .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
                    if named {
                        items.push((Some(first), self.parse_type()?));
                    } else {
                        self.pos = save;
                        items.push((None, self.parse_type()?));
                    }
                    if !self.eat(',') {
                        break;
                    }
                }
                self.expect(')')?;
                Ok(ChType::Tuple(items))
            }
            "Variant" => {
                self.expect('(')?;
                let mut items = Vec::new();
                loop {
                    items.push(self.parse_type()?);
                    if !self.eat(',') {
                        break;
                    }
                }
                self.expect(')')?;
                if items.len() > 254 {
                    return Err("a Variant has at most 254 types".into());
                }
                Ok(ChType::Variant(items))
            }
            "JSON" | "Object" => {
                // JSON(max_dynamic_paths = ..., path Type, SKIP ...) and
                // Object('json'): parameters do not change how values are sent.
                if self.eat('(') {
                    let mut depth = 1;
                    while depth > 0 {
                        let c = self.rest().chars().next().ok_or("unbalanced parentheses")?;
                        self.pos += c.len_utf8();
                        match c {
                            '(' => depth += 1,
                            ')' => depth -= 1,
                            _ => {}
                        }
                    }
                }
                Ok(ChType::Json)
            }
            other => Err(format!("unsupported type `{other}`")),
        }
    }
}

fn decimal(precision: u8, scale: u8) -> Result<ChType, String> {
    if precision == 0 || scale > precision {
        return Err("Decimal needs 1 <= precision <= 76 and scale <= precision".into());
    }
    Ok(ChType::Decimal { precision, scale })
}

#[cfg(test)]
mod families {
    use super::*;

    #[test]
    fn nested_types_name_every_family_once() {
        let ty = ChType::parse("Map(String, Array(Nullable(DateTime64(3))))").unwrap();
        assert_eq!(
            ty.families(),
            ["Map", "String", "Array", "Nullable", "DateTime64"]
        );
        let old_server: Vec<(String, bool)> = ["Map", "String", "Array", "Nullable", "DateTime"]
            .iter()
            .map(|n| (n.to_string(), false))
            .collect();
        assert_eq!(ty.first_missing_family(&old_server), Some("DateTime64"));
        let server = vec![("uuid".to_owned(), true)];
        assert_eq!(ChType::Uuid.first_missing_family(&server), None);
        let server = vec![("uuid".to_owned(), false)];
        assert_eq!(ChType::Uuid.first_missing_family(&server), Some("UUID"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for text in [
            "UInt8",
            "Int256",
            "Nullable(DateTime64(3, 'UTC'))",
            "LowCardinality(Nullable(String))",
            "Array(Array(Int32))",
            "Map(String, Array(UInt64))",
            "Tuple(a String, b Nullable(Float64))",
            "Tuple(String, UInt8)",
            "Enum8('a' = 1, 'b\\'c' = -2)",
            "Decimal(18, 4)",
            "FixedString(16)",
            "DateTime('Europe/Berlin')",
            "Variant(String, UInt64, Array(String))",
            "JSON",
        ] {
            let ty = ChType::parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(ChType::parse(&ty.to_string()).unwrap(), ty, "{text}");
        }
        assert_eq!(
            ChType::parse("Decimal64(3)").unwrap(),
            ChType::Decimal {
                precision: 18,
                scale: 3
            }
        );
        assert_eq!(
            ChType::parse("SimpleAggregateFunction(sum, UInt64)").unwrap(),
            ChType::UInt64
        );
        assert_eq!(
            ChType::parse("JSON(max_dynamic_paths = 10, a.b UInt32)").unwrap(),
            ChType::Json
        );
        assert_eq!(ChType::parse("Boolean").unwrap(), ChType::Bool);
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "",
            "Strin",
            "Nullable(",
            "Array(UInt8",
            "Decimal(80, 2)",
            "UInt8 x",
            "Enum8('a' = 300)",
            "FixedString(0)",
        ] {
            assert!(ChType::parse(text).is_err(), "{text}");
        }
    }
}
