//! cty, the value model of Terraform's plugin protocol, and its two wire
//! forms: msgpack (`DynamicValue.msgpack`, what Terraform sends for config,
//! plans and state) and JSON (`RawState.json`, the stored state handed to
//! upgrades and imports).
//!
//! Neither wire form is self-describing: an object, a map and a block all
//! arrive as a msgpack map, a list and a set both as an array, so decoding is
//! driven by the schema's [`Type`]. The conventions are go-cty's (`cty/msgpack`
//! and `cty/json`), which Terraform itself uses on the other end: unknown is
//! msgpack extension 0, an object is a map holding every attribute of its type,
//! and a number that is neither an exact int64 nor an exact float64 travels as
//! a decimal string.
//!
//! Pure: no I/O, so every rule here is covered by unit tests.

// The provider's handlers use this as a library and pick up parts of it as
// resources land; the tests cover all of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rmpv::Value as Mp;

/// go-cty writes unknown values as extension 0; Terraform 1.6+ may instead
/// send a refined unknown (one known to be non-null, a string prefix, a
/// number range...) as extension 12. Refinements only narrow what the value
/// may become, so the provider can treat both as plain unknown.
const EXT_UNKNOWN: i8 = 0;
const EXT_REFINED_UNKNOWN: i8 = 12;

/// Nesting limit handed to the msgpack reader. Schemas nest a handful of
/// levels deep; the limit only stops a malformed message from recursing
/// until the stack overflows.
const MAX_MSGPACK_DEPTH: usize = 256;

/// Longest plain decimal a [`Number`] may print as. Every float64 fits in
/// about 1,080 characters; the limit stops `1e999999999` from becoming a
/// gigabyte of zeros.
const MAX_DECIMAL_LEN: i64 = 4096;

/// The integer range msgpack carries as an int: int64 and uint64 together.
const INT_MIN: i128 = i64::MIN as i128;
const INT_MAX: i128 = u64::MAX as i128;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// A cty type, as a schema attribute declares it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
// `DynamicPseudoType` is go-cty's name, kept so the docs can be searched.
#[allow(clippy::enum_variant_names)]
pub enum Type {
    Bool,
    Number,
    String,
    /// Terraform's `any`. A value of this type carries its real type on the
    /// wire; the provider's schema never declares one, so only null and
    /// unknown values are supported and anything else is an error rather
    /// than a guess.
    DynamicPseudoType,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
}

impl Type {
    pub fn list(element: Type) -> Type {
        Type::List(Box::new(element))
    }

    pub fn set(element: Type) -> Type {
        Type::Set(Box::new(element))
    }

    pub fn map(element: Type) -> Type {
        Type::Map(Box::new(element))
    }

    pub fn object<K: Into<String>>(attributes: impl IntoIterator<Item = (K, Type)>) -> Type {
        Type::Object(
            attributes
                .into_iter()
                .map(|(name, ty)| (name.into(), ty))
                .collect(),
        )
    }

    /// The type's JSON form (go-cty's `ctyjson.MarshalType`), which is what
    /// the schema's `Attribute.type` bytes hold.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        let pair = |kind: &str, inner: J| J::Array(vec![J::from(kind), inner]);
        match self {
            Type::Bool => J::from("bool"),
            Type::Number => J::from("number"),
            Type::String => J::from("string"),
            Type::DynamicPseudoType => J::from("dynamic"),
            Type::List(element) => pair("list", element.to_json()),
            Type::Set(element) => pair("set", element.to_json()),
            Type::Map(element) => pair("map", element.to_json()),
            Type::Object(attributes) => pair(
                "object",
                J::Object(
                    attributes
                        .iter()
                        .map(|(name, ty)| (name.clone(), ty.to_json()))
                        .collect(),
                ),
            ),
        }
    }

    /// `Attribute.type` for the schema: compact JSON, no whitespace.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Display of a serde_json::Value is compact JSON and cannot fail,
        // unlike serde_json::to_vec, whose error case is unreachable here.
        self.to_json().to_string().into_bytes()
    }

    /// Reads a type in its JSON form. Tuples and optional attributes are
    /// rejected: the provider's schemas use neither, so meeting one means the
    /// bytes are not ours.
    pub fn from_json(json: &serde_json::Value) -> Result<Type, CtyError> {
        use serde_json::Value as J;
        let invalid = |what: String| Err(CtyError::TypeJson(what));
        match json {
            J::String(name) => match name.as_str() {
                "bool" => Ok(Type::Bool),
                "number" => Ok(Type::Number),
                "string" => Ok(Type::String),
                "dynamic" => Ok(Type::DynamicPseudoType),
                other => invalid(format!("unknown primitive type {other:?}")),
            },
            J::Array(parts) => match parts.split_first() {
                Some((kind, rest)) => match (kind.as_str(), rest) {
                    (Some("list"), [element]) => Ok(Type::list(Type::from_json(element)?)),
                    (Some("set"), [element]) => Ok(Type::set(Type::from_json(element)?)),
                    (Some("map"), [element]) => Ok(Type::map(Type::from_json(element)?)),
                    (Some("object"), [J::Object(attributes)]) => Ok(Type::Object(
                        attributes
                            .iter()
                            .map(|(name, ty)| Ok((name.clone(), Type::from_json(ty)?)))
                            .collect::<Result<_, CtyError>>()?,
                    )),
                    (Some("object"), [J::Object(_), _]) => {
                        invalid("optional object attributes are not supported".to_owned())
                    }
                    (Some("tuple"), _) => invalid("tuple types are not supported".to_owned()),
                    _ => invalid(format!("unrecognised type {json}")),
                },
                None => invalid("an empty array is not a type".to_owned()),
            },
            other => invalid(format!("unrecognised type {other}")),
        }
    }

    pub fn from_json_bytes(bytes: &[u8]) -> Result<Type, CtyError> {
        let json: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| CtyError::TypeJson(e.to_string()))?;
        Type::from_json(&json)
    }
}

/// Terraform's type-constraint syntax, so errors read like the
/// configuration language.
impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::DynamicPseudoType => f.write_str("any"),
            Type::List(element) => write!(f, "list({element})"),
            Type::Set(element) => write!(f, "set({element})"),
            Type::Map(element) => write!(f, "map({element})"),
            Type::Object(attributes) => {
                f.write_str("object({")?;
                for (i, (name, ty)) in attributes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}={ty}")?;
                }
                f.write_str("})")
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------

/// A cty number: Terraform keeps arbitrary-precision decimals, and a value
/// the provider hands back must be the very number it was given, or
/// Terraform reports "Provider produced inconsistent result". `0.1` from a
/// configuration is not a float64 (the nearest float64 is
/// 0.1000000000000000055…), so Terraform sends it as the string `"0.1"`;
/// storing it as `f64` and answering with a float64 would change the value.
///
/// So a number is kept in one canonical form, which makes derived equality
/// numeric equality:
/// - an integer in int64 ∪ uint64 (encoded as a msgpack int),
/// - else a float64 that is exactly the value (encoded as a float64),
/// - else the exact decimal (encoded as a decimal string).
///
/// NaN is not a number cty can hold and is refused; ±infinity is kept.
#[derive(Clone, PartialEq)]
pub struct Number(Repr);

#[derive(Debug, Clone, PartialEq)]
enum Repr {
    /// Within `INT_MIN..=INT_MAX`.
    Int(i128),
    /// Not NaN, and not an integer within the `Int` range.
    Float(f64),
    /// `digits × 10^exponent`; `digits` has no leading or trailing zeros, and
    /// the value is neither an `Int` nor exactly a float64.
    Decimal {
        negative: bool,
        digits: String,
        exponent: i64,
    },
}

// Sound because NaN is never stored.
impl Eq for Number {}

/// Why a decimal string is not a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid number {input:?}: {reason}")]
pub struct ParseNumberError {
    /// The input, cut short so a huge string cannot flood a diagnostic.
    pub input: String,
    pub reason: &'static str,
}

impl Number {
    /// The float's exact binary value; `None` for NaN. Integral values in
    /// range become integers, so `from_f64(2.0) == Number::from(2)`.
    pub fn from_f64(f: f64) -> Option<Number> {
        if f.is_nan() {
            return None;
        }
        if f.trunc() == f && f >= INT_MIN as f64 && f < INT_MAX as f64 + 1.0 {
            // Integral and in range, so the conversion is exact (and -0.0
            // becomes 0, as go-cty's Int64 makes it).
            return Some(Number(Repr::Int(f as i128)));
        }
        Some(Number(Repr::Float(f)))
    }

    /// The decimal the float prints as (its shortest round-trip form), which
    /// is what a JSON API meant by `0.1`: such a value then equals the same
    /// literal in configuration, as Terraform compares them. `None` for NaN.
    pub fn from_f64_decimal(f: f64) -> Option<Number> {
        if !f.is_finite() {
            return Number::from_f64(f);
        }
        // Rust prints finite floats in plain notation, shortest round-trip
        // digits, which always parses back.
        format!("{f}").parse().ok()
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            Repr::Int(i) => i64::try_from(i).ok(),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self.0 {
            Repr::Int(i) => u64::try_from(i).ok(),
            _ => None,
        }
    }

    /// The nearest float64: exact for floats, rounded for big integers and
    /// decimals.
    pub fn as_f64(&self) -> f64 {
        match &self.0 {
            Repr::Int(i) => *i as f64,
            Repr::Float(f) => *f,
            Repr::Decimal {
                negative,
                digits,
                exponent,
            } => {
                let sign = if *negative { "-" } else { "" };
                // Digits and an exponent always parse; NaN is unreachable.
                format!("{sign}{digits}e{exponent}")
                    .parse()
                    .unwrap_or(f64::NAN)
            }
        }
    }

    fn to_msgpack(&self) -> Mp {
        match &self.0 {
            Repr::Int(i) => match i64::try_from(*i) {
                Ok(signed) => Mp::from(signed),
                // Above i64::MAX, so within u64 by the Int invariant.
                Err(_) => Mp::from(u64::try_from(*i).unwrap_or(u64::MAX)),
            },
            Repr::Float(f) => Mp::F64(*f),
            Repr::Decimal { .. } => Mp::from(self.to_string()),
        }
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number(Repr::Int(i.into()))
    }
}

impl From<u64> for Number {
    fn from(u: u64) -> Number {
        Number(Repr::Int(u.into()))
    }
}

impl From<i32> for Number {
    fn from(i: i32) -> Number {
        Number(Repr::Int(i.into()))
    }
}

impl From<u32> for Number {
    fn from(u: u32) -> Number {
        Number(Repr::Int(u.into()))
    }
}

/// A number from a JSON API reads as the literal it was written as (see
/// [`Number::from_f64_decimal`]), so it equals the same literal in
/// configuration.
impl From<serde_json::Number> for Number {
    fn from(n: serde_json::Number) -> Number {
        // serde_json prints integers exactly and floats (always finite) as
        // their shortest round-trip form, both of which parse; the fallbacks
        // are unreachable.
        n.to_string()
            .parse()
            .ok()
            .or_else(|| n.as_f64().and_then(Number::from_f64))
            .unwrap_or(Number(Repr::Int(0)))
    }
}

/// Accepts what Go's `big.Float` parses in base 10 (and so what Terraform
/// may send): an optional sign, digits with an optional point, an optional
/// exponent, or `inf`/`infinity`.
impl FromStr for Number {
    type Err = ParseNumberError;

    fn from_str(s: &str) -> Result<Number, ParseNumberError> {
        parse_number(s).map_err(|reason| ParseNumberError {
            input: s.chars().take(64).collect(),
            reason,
        })
    }
}

fn parse_number(s: &str) -> Result<Number, &'static str> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        let f = if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        return Ok(Number(Repr::Float(f)));
    }
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => {
            let text = &rest[at + 1..];
            // i64's parser takes an optional sign and digits, nothing else.
            let exponent = text
                .parse::<i64>()
                .map_err(|_| "the exponent is not an integer in range")?;
            (&rest[..at], exponent)
        }
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err("no digits");
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return Err("expected digits, an optional point and an optional exponent");
    }
    let Some((digits, exponent)) = canonical_digits(int_part, frac_part, exponent)? else {
        return Ok(Number(Repr::Int(0)));
    };
    let len = digits.len() as i64;
    let plain_len = if exponent >= 0 {
        len.saturating_add(exponent)
    } else {
        len.max(exponent.saturating_neg()).saturating_add(2)
    };
    if plain_len > MAX_DECIMAL_LEN {
        return Err("too many digits");
    }

    if exponent >= 0 && len + exponent <= 20 {
        // At most 20 digits: fits u128 with room to spare.
        let mut magnitude: u128 = digits.parse().map_err(|_| "no digits")?;
        for _ in 0..exponent {
            magnitude *= 10;
        }
        let magnitude = magnitude as i128;
        let value = if negative { -magnitude } else { magnitude };
        if (INT_MIN..=INT_MAX).contains(&value) {
            return Ok(Number(Repr::Int(value)));
        }
    }
    let sign = if negative { "-" } else { "" };
    if let Ok(f) = format!("{sign}{digits}e{exponent}").parse::<f64>() {
        if f.is_finite() && f64_is_exactly(f, &digits, exponent) {
            return Ok(Number(Repr::Float(f)));
        }
    }
    Ok(Number(Repr::Decimal {
        negative,
        digits,
        exponent,
    }))
}

/// `(digits, exponent)` with `int_part.frac_part × 10^exponent` equal to
/// `digits × 10^exponent'` and `digits` free of leading and trailing zeros;
/// `None` for zero.
fn canonical_digits(
    int_part: &str,
    frac_part: &str,
    exponent: i64,
) -> Result<Option<(String, i64)>, &'static str> {
    let all: String = int_part.chars().chain(frac_part.chars()).collect();
    let significant = all.trim_start_matches('0');
    let digits = significant.trim_end_matches('0');
    if digits.is_empty() {
        return Ok(None);
    }
    let trailing_zeros = (significant.len() - digits.len()) as i64;
    let exponent = exponent
        .checked_sub(frac_part.len() as i64)
        .and_then(|e| e.checked_add(trailing_zeros))
        .ok_or("the exponent is out of range")?;
    Ok(Some((digits.to_owned(), exponent)))
}

/// Whether `f` is exactly `digits × 10^exponent`. Every finite float64 has a
/// terminating decimal expansion of at most 1,074 fractional digits, and
/// Rust's fixed-precision formatting prints it exactly.
fn f64_is_exactly(f: f64, digits: &str, exponent: i64) -> bool {
    let exact = format!("{:.1074}", f.abs());
    let (int_part, frac_part) = exact.split_once('.').unwrap_or((&exact, ""));
    matches!(
        canonical_digits(int_part, frac_part, 0),
        Ok(Some((d, e))) if d == digits && e == exponent
    )
}

/// Plain decimal notation (go's `Text('f', -1)`), which Terraform parses back
/// to the same value. A float prints as its shortest round-trip digits,
/// which reads better in diagnostics than its full binary expansion.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Int(i) => write!(f, "{i}"),
            Repr::Float(x) if x.is_infinite() => {
                f.write_str(if *x < 0.0 { "-Inf" } else { "+Inf" })
            }
            Repr::Float(x) => write!(f, "{x}"),
            Repr::Decimal {
                negative,
                digits,
                exponent,
            } => {
                if *negative {
                    f.write_str("-")?;
                }
                if *exponent >= 0 {
                    f.write_str(digits)?;
                    for _ in 0..*exponent {
                        f.write_str("0")?;
                    }
                    return Ok(());
                }
                let point = digits.len() as i64 + exponent;
                if point > 0 {
                    let (whole, fraction) = digits.split_at(point as usize);
                    write!(f, "{whole}.{fraction}")
                } else {
                    f.write_str("0.")?;
                    for _ in 0..-point {
                        f.write_str("0")?;
                    }
                    f.write_str(digits)
                }
            }
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

/// A cty value. Untyped: the schema's [`Type`] says what it is, and
/// [`encode`] checks the two agree.
///
/// Equality is cty's where the representation is looser than cty: set
/// elements compare in any order, and an object attribute that is absent
/// equals one that is null (an object always has all its type's attributes;
/// absent ones are encoded as null).
#[derive(Debug, Clone, Default)]
pub enum Value {
    #[default]
    Null,
    /// Not known until apply. May stand in for a value of any type.
    Unknown,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
}

static NULL: Value = Value::Null;

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) | (Value::Unknown, Value::Unknown) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Set(a), Value::Set(b)) => same_elements(a, b),
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => {
                a.iter().all(|(k, v)| lookup(b, k) == v) && b.iter().all(|(k, v)| lookup(a, k) == v)
            }
            _ => false,
        }
    }
}

impl Eq for Value {}

fn lookup<'a>(m: &'a BTreeMap<String, Value>, k: &str) -> &'a Value {
    m.get(k).unwrap_or(&NULL)
}

/// Multiset equality. Quadratic, but sets in a schema hold a handful of
/// elements and `Value` has no order or hash to do better with.
fn same_elements(a: &[Value], b: &[Value]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    a.iter().all(|x| {
        let found = b.iter().enumerate().position(|(i, y)| !used[i] && x == y);
        match found {
            Some(i) => {
                used[i] = true;
                true
            }
            None => false,
        }
    })
}

impl Value {
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn number(n: impl Into<Number>) -> Value {
        Value::Number(n.into())
    }

    pub fn object<K: Into<String>>(attributes: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(
            attributes
                .into_iter()
                .map(|(name, value)| (name.into(), value))
                .collect(),
        )
    }

    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(
            entries
                .into_iter()
                .map(|(key, value)| (key.into(), value))
                .collect(),
        )
    }

    pub fn list(elements: impl IntoIterator<Item = Value>) -> Value {
        Value::List(elements.into_iter().collect())
    }

    pub fn set(elements: impl IntoIterator<Item = Value>) -> Value {
        Value::Set(elements.into_iter().collect())
    }

    /// An object's attribute or a map's element, and null for anything else
    /// (absent, or the receiver null, unknown or not an object), so nested
    /// optional blocks read as `v.get("source").get("kafka")` without a check
    /// at every level. Check [`Value::is_known`] first where unknown matters.
    pub fn get(&self, name: &str) -> &Value {
        match self {
            Value::Object(m) | Value::Map(m) => m.get(name).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    /// The object with `name` set to `value`. A receiver that is not an
    /// object (typically null) starts from an empty object, so nested values
    /// can be built from `Value::Null`.
    pub fn with(self, name: impl Into<String>, value: Value) -> Value {
        let mut attributes = match self {
            Value::Object(m) => m,
            _ => BTreeMap::new(),
        };
        attributes.insert(name.into(), value);
        Value::Object(attributes)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether this value itself is unknown (its elements may still be).
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }

    /// Whether no part of the value is unknown: only then can it be sent to
    /// the API.
    pub fn is_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
            Value::List(elements) | Value::Set(elements) => elements.iter().all(Value::is_known),
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_known),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The number, if it is an integer within int64.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// The number as the nearest float64 (see [`Number::as_f64`]).
    pub fn as_f64(&self) -> Option<f64> {
        self.as_number().map(Number::as_f64)
    }

    /// A list's or a set's elements.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(elements) | Value::Set(elements) => Some(elements),
            _ => None,
        }
    }

    /// A map's entries or an object's attributes.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// A short description for error messages.
    fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown => "an unknown value",
            Value::Bool(_) => "a bool",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::List(_) => "a list",
            Value::Set(_) => "a set",
            Value::Map(_) => "a map",
            Value::Object(_) => "an object",
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Number(i.into())
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Value {
        Value::Number(n)
    }
}

/// `None` is null: an optional API field maps straight onto an optional
/// attribute.
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

// ---------------------------------------------------------------------------
// Paths and errors
// ---------------------------------------------------------------------------

/// Where in a value something went wrong, so a diagnostic can point at the
/// attribute (tfplugin6's `AttributePath` has the same three steps).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Path(pub Vec<PathStep>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Attr(String),
    /// A list element, or a set element by its position on the wire.
    Index(usize),
    Key(String),
}

/// `.source.kafka.brokers[0]`, `.labels["team"]`.
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.0 {
            match step {
                PathStep::Attr(name) => write!(f, ".{name}")?,
                PathStep::Index(i) => write!(f, "[{i}]")?,
                PathStep::Key(key) => write!(f, "[{key:?}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CtyError {
    #[error("{}expected {expected}, got {found}", at(.path))]
    Mismatch {
        path: Path,
        expected: Type,
        found: String,
    },
    #[error("{}unsupported attribute {name:?}: the object type has no such attribute", at(.path))]
    UnsupportedAttribute { path: Path, name: String },
    #[error("{}duplicate key {key:?}", at(.path))]
    DuplicateKey { path: Path, key: String },
    #[error("{}{source}", at(.path))]
    InvalidNumber {
        path: Path,
        source: ParseNumberError,
    },
    #[error("{}a value of type any must be null or unknown: the provider supports no dynamically typed values", at(.path))]
    Dynamic { path: Path },
    #[error("malformed msgpack: {0}")]
    Msgpack(String),
    #[error("{0} unexpected bytes after the msgpack value")]
    TrailingBytes(usize),
    #[error("invalid type JSON: {0}")]
    TypeJson(String),
}

impl CtyError {
    /// The attribute the error is about, for the diagnostic's
    /// `attribute` field; `None` when the message as a whole is broken.
    pub fn path(&self) -> Option<&Path> {
        match self {
            CtyError::Mismatch { path, .. }
            | CtyError::UnsupportedAttribute { path, .. }
            | CtyError::DuplicateKey { path, .. }
            | CtyError::InvalidNumber { path, .. }
            | CtyError::Dynamic { path } => Some(path),
            CtyError::Msgpack(_) | CtyError::TrailingBytes(_) | CtyError::TypeJson(_) => None,
        }
    }
}

/// The message prefix naming the path; none at the root, where the path
/// would print as nothing.
fn at(path: &Path) -> String {
    if path.0.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// The path walked so far, pushed and popped on the way down and copied
/// only into an error.
struct Walk(Vec<PathStep>);

impl Walk {
    fn path(&self) -> Path {
        Path(self.0.clone())
    }

    fn mismatch(&self, expected: &Type, found: impl Into<String>) -> CtyError {
        CtyError::Mismatch {
            path: self.path(),
            expected: expected.clone(),
            found: found.into(),
        }
    }

    fn step<T>(&mut self, step: PathStep, f: impl FnOnce(&mut Walk) -> T) -> T {
        self.0.push(step);
        let result = f(self);
        self.0.pop();
        result
    }
}

// ---------------------------------------------------------------------------
// msgpack
// ---------------------------------------------------------------------------

/// Decodes a `DynamicValue.msgpack` as a value of `ty`. Lenient where
/// Terraform versions differ (refined unknowns, an object missing
/// attributes reads them as null), strict where a mismatch means the schema
/// and the message disagree (an attribute the type lacks is an error).
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, CtyError> {
    let mut reader = bytes;
    let mp = rmpv::decode::read_value_with_max_depth(&mut reader, MAX_MSGPACK_DEPTH)
        .map_err(|e| CtyError::Msgpack(e.to_string()))?;
    if !reader.is_empty() {
        return Err(CtyError::TrailingBytes(reader.len()));
    }
    decode_value(mp, ty, &mut Walk(Vec::new()))
}

fn describe_msgpack(mp: &Mp) -> String {
    match mp {
        Mp::Nil => "nil".to_owned(),
        Mp::Boolean(_) => "a boolean".to_owned(),
        Mp::Integer(_) => "an integer".to_owned(),
        Mp::F32(_) | Mp::F64(_) => "a float".to_owned(),
        Mp::String(_) => "a string".to_owned(),
        Mp::Binary(_) => "binary data".to_owned(),
        Mp::Array(_) => "an array".to_owned(),
        Mp::Map(_) => "a map".to_owned(),
        Mp::Ext(code, _) => format!("msgpack extension type {code}"),
    }
}

/// A msgpack map's key, which cty requires to be a string.
fn map_key(key: Mp, ty: &Type, walk: &Walk) -> Result<String, CtyError> {
    match key {
        Mp::String(s) => s
            .into_str()
            .ok_or_else(|| walk.mismatch(ty, "a map key that is not valid UTF-8")),
        other => Err(walk.mismatch(
            ty,
            format!("a map with {} as a key", describe_msgpack(&other)),
        )),
    }
}

fn decode_value(mp: Mp, ty: &Type, walk: &mut Walk) -> Result<Value, CtyError> {
    match mp {
        Mp::Nil => return Ok(Value::Null),
        Mp::Ext(EXT_UNKNOWN | EXT_REFINED_UNKNOWN, _) => return Ok(Value::Unknown),
        _ => {}
    }
    match (ty, mp) {
        (Type::Bool, Mp::Boolean(b)) => Ok(Value::Bool(b)),
        (Type::Number, Mp::Integer(i)) => match (i.as_i64(), i.as_u64()) {
            (Some(signed), _) => Ok(Value::number(signed)),
            (None, Some(unsigned)) => Ok(Value::number(unsigned)),
            (None, None) => Err(walk.mismatch(ty, "an integer out of range")),
        },
        (Type::Number, Mp::F32(f)) => Number::from_f64(f.into())
            .map(Value::Number)
            .ok_or_else(|| walk.mismatch(ty, "NaN")),
        (Type::Number, Mp::F64(f)) => Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| walk.mismatch(ty, "NaN")),
        (Type::Number, Mp::String(s)) => {
            let s = s
                .into_str()
                .ok_or_else(|| walk.mismatch(ty, "a string that is not valid UTF-8"))?;
            s.parse()
                .map(Value::Number)
                .map_err(|source| CtyError::InvalidNumber {
                    path: walk.path(),
                    source,
                })
        }
        (Type::String, Mp::String(s)) => s
            .into_str()
            .map(Value::String)
            .ok_or_else(|| walk.mismatch(ty, "a string that is not valid UTF-8")),
        (Type::List(element) | Type::Set(element), Mp::Array(items)) => {
            let elements = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| walk.step(PathStep::Index(i), |w| decode_value(item, element, w)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(match ty {
                Type::Set(_) => Value::Set(elements),
                _ => Value::List(elements),
            })
        }
        (Type::Map(element), Mp::Map(entries)) => {
            let mut map = BTreeMap::new();
            for (key, item) in entries {
                let key = map_key(key, ty, walk)?;
                if map.contains_key(&key) {
                    return Err(CtyError::DuplicateKey {
                        path: walk.path(),
                        key,
                    });
                }
                let value = walk.step(PathStep::Key(key.clone()), |w| {
                    decode_value(item, element, w)
                })?;
                map.insert(key, value);
            }
            Ok(Value::Map(map))
        }
        (Type::Object(attributes), Mp::Map(entries)) => {
            let mut object = BTreeMap::new();
            for (key, item) in entries {
                let name = map_key(key, ty, walk)?;
                let Some(attribute_type) = attributes.get(&name) else {
                    return Err(CtyError::UnsupportedAttribute {
                        path: walk.path(),
                        name,
                    });
                };
                if object.contains_key(&name) {
                    return Err(CtyError::DuplicateKey {
                        path: walk.path(),
                        key: name,
                    });
                }
                let value = walk.step(PathStep::Attr(name.clone()), |w| {
                    decode_value(item, attribute_type, w)
                })?;
                object.insert(name, value);
            }
            for name in attributes.keys() {
                if !object.contains_key(name) {
                    object.insert(name.clone(), Value::Null);
                }
            }
            Ok(Value::Object(object))
        }
        (Type::DynamicPseudoType, _) => Err(CtyError::Dynamic { path: walk.path() }),
        (_, other) => Err(walk.mismatch(ty, describe_msgpack(&other))),
    }
}

/// Encodes a value of `ty` as msgpack for a `DynamicValue`. The value must
/// match the type exactly: a mismatch is a provider bug, reported with its
/// path rather than sent to Terraform to fail there less clearly.
pub fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, CtyError> {
    let mp = encode_value(value, ty, &mut Walk(Vec::new()))?;
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &mp).map_err(|e| CtyError::Msgpack(e.to_string()))?;
    Ok(bytes)
}

fn encode_value(value: &Value, ty: &Type, walk: &mut Walk) -> Result<Mp, CtyError> {
    match (ty, value) {
        (_, Value::Null) => Ok(Mp::Nil),
        // go-cty's encoding: fixext1, type 0, one zero byte.
        (_, Value::Unknown) => Ok(Mp::Ext(EXT_UNKNOWN, vec![0])),
        (Type::Bool, Value::Bool(b)) => Ok(Mp::Boolean(*b)),
        (Type::Number, Value::Number(n)) => Ok(n.to_msgpack()),
        (Type::String, Value::String(s)) => Ok(Mp::from(s.as_str())),
        (Type::List(element), Value::List(elements))
        | (Type::Set(element), Value::Set(elements)) => elements
            .iter()
            .enumerate()
            .map(|(i, e)| walk.step(PathStep::Index(i), |w| encode_value(e, element, w)))
            .collect::<Result<Vec<_>, _>>()
            .map(Mp::Array),
        (Type::Map(element), Value::Map(entries)) => entries
            .iter()
            .map(|(key, e)| {
                let encoded =
                    walk.step(PathStep::Key(key.clone()), |w| encode_value(e, element, w))?;
                Ok((Mp::from(key.as_str()), encoded))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Mp::Map),
        (Type::Object(attributes), Value::Object(object)) => {
            if let Some(name) = object.keys().find(|name| !attributes.contains_key(*name)) {
                return Err(CtyError::UnsupportedAttribute {
                    path: walk.path(),
                    name: name.clone(),
                });
            }
            // Every attribute of the type, in name order as go-cty writes
            // them; absent ones as null.
            attributes
                .iter()
                .map(|(name, attribute_type)| {
                    let attribute = object.get(name).unwrap_or(&NULL);
                    let encoded = walk.step(PathStep::Attr(name.clone()), |w| {
                        encode_value(attribute, attribute_type, w)
                    })?;
                    Ok((Mp::from(name.as_str()), encoded))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Mp::Map)
        }
        (Type::DynamicPseudoType, _) => Err(CtyError::Dynamic { path: walk.path() }),
        (_, other) => Err(walk.mismatch(ty, other.describe())),
    }
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/// Reads stored state (`RawState.json`) as a value of `ty`, with go-cty's
/// JSON rules: a string is accepted for a bool (`"true"`, `"1"`...) or a
/// number, and a number or bool for a string, because state written under an
/// older schema may hold an attribute whose type has since changed.
///
/// Attributes the type does not declare are dropped rather than refused:
/// state written by an older provider version may hold attributes since
/// removed, and an upgrade must still read it (terraform-plugin-framework
/// ignores them the same way). Missing attributes read as null.
///
/// Numbers go through `serde_json`, which holds them as int64, uint64 or
/// float64; a float is read as the decimal it prints as (`0.1` stays the
/// decimal 0.1, as go-cty reads it), but a literal with more than 17
/// significant digits loses precision, which go-cty's reader would keep.
pub fn from_json(json: &serde_json::Value, ty: &Type) -> Result<Value, CtyError> {
    json_value(json, ty, &mut Walk(Vec::new()))
}

fn describe_json(json: &serde_json::Value) -> &'static str {
    use serde_json::Value as J;
    match json {
        J::Null => "null",
        J::Bool(_) => "a JSON boolean",
        J::Number(_) => "a JSON number",
        J::String(_) => "a JSON string",
        J::Array(_) => "a JSON array",
        J::Object(_) => "a JSON object",
    }
}

fn json_value(json: &serde_json::Value, ty: &Type, walk: &mut Walk) -> Result<Value, CtyError> {
    use serde_json::Value as J;
    let number = |text: &str, walk: &Walk| {
        text.parse()
            .map(Value::Number)
            .map_err(|source| CtyError::InvalidNumber {
                path: walk.path(),
                source,
            })
    };
    match (ty, json) {
        (_, J::Null) => Ok(Value::Null),
        (Type::Bool, J::Bool(b)) => Ok(Value::Bool(*b)),
        (Type::Bool, J::String(s)) => match s.as_str() {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(walk.mismatch(ty, format!("the string {s:?}"))),
        },
        // The literal go-cty wrote, for any float64 it could have written.
        (Type::Number, J::Number(n)) => Ok(Value::Number(n.clone().into())),
        (Type::Number, J::String(s)) => number(s, walk),
        (Type::String, J::String(s)) => Ok(Value::string(s)),
        (Type::String, J::Number(n)) => Ok(Value::string(n.to_string())),
        (Type::String, J::Bool(b)) => Ok(Value::string(b.to_string())),
        (Type::List(element) | Type::Set(element), J::Array(items)) => {
            let elements = items
                .iter()
                .enumerate()
                .map(|(i, item)| walk.step(PathStep::Index(i), |w| json_value(item, element, w)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(match ty {
                Type::Set(_) => Value::Set(elements),
                _ => Value::List(elements),
            })
        }
        (Type::Map(element), J::Object(entries)) => entries
            .iter()
            .map(|(key, item)| {
                let value =
                    walk.step(PathStep::Key(key.clone()), |w| json_value(item, element, w))?;
                Ok((key.clone(), value))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(Value::Map),
        (Type::Object(attributes), J::Object(entries)) => attributes
            .iter()
            .map(|(name, attribute_type)| {
                let value = match entries.get(name) {
                    Some(item) => walk.step(PathStep::Attr(name.clone()), |w| {
                        json_value(item, attribute_type, w)
                    })?,
                    None => Value::Null,
                };
                Ok((name.clone(), value))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(Value::Object),
        (Type::DynamicPseudoType, _) => Err(CtyError::Dynamic { path: walk.path() }),
        (_, other) => Err(walk.mismatch(ty, describe_json(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn n(s: &str) -> Number {
        s.parse().unwrap()
    }

    fn mp_bytes(mp: &Mp) -> Vec<u8> {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, mp).unwrap();
        bytes
    }

    fn round_trip(value: &Value, ty: &Type) -> Value {
        decode(&encode(value, ty).unwrap(), ty).unwrap()
    }

    /// The shape of a pipe resource: nested blocks, a list, a map, a set.
    fn pipe_type() -> Type {
        Type::object([
            ("name", Type::String),
            ("replicas", Type::Number),
            ("paused", Type::Bool),
            ("labels", Type::map(Type::String)),
            ("columns", Type::set(Type::String)),
            (
                "source",
                Type::object([(
                    "kafka",
                    Type::object([
                        ("brokers", Type::list(Type::String)),
                        ("topic", Type::String),
                        ("partitions", Type::list(Type::Number)),
                    ]),
                )]),
            ),
            (
                "mappings",
                Type::list(Type::object([("from", Type::String), ("to", Type::String)])),
            ),
        ])
    }

    // -- exact bytes --------------------------------------------------------

    #[test]
    fn unknown_is_fixext1_type_0_with_a_zero_byte() {
        for ty in [
            Type::String,
            Type::Number,
            pipe_type(),
            Type::list(Type::Bool),
        ] {
            assert_eq!(encode(&Value::Unknown, &ty).unwrap(), [0xd4, 0x00, 0x00]);
        }
    }

    #[test]
    fn null_is_nil() {
        assert_eq!(encode(&Value::Null, &pipe_type()).unwrap(), [0xc0]);
        assert_eq!(decode(&[0xc0], &pipe_type()).unwrap(), Value::Null);
    }

    #[test]
    fn small_object_bytes_hold_every_attribute_in_name_order() {
        let ty = Type::object([("c", Type::Bool), ("a", Type::String), ("b", Type::Number)]);
        let value = Value::object([("a", Value::string("x")), ("b", Value::number(1))]);
        let bytes = encode(&value, &ty).unwrap();
        assert_eq!(
            bytes,
            [0x83, 0xa1, b'a', 0xa1, b'x', 0xa1, b'b', 0x01, 0xa1, b'c', 0xc0]
        );
        assert_eq!(
            decode(&bytes, &ty).unwrap(),
            Value::object([
                ("a", Value::string("x")),
                ("b", Value::number(1)),
                ("c", Value::Null),
            ])
        );
    }

    #[test]
    fn numbers_encode_as_compact_ints_floats_or_decimal_strings() {
        let cases: [(Number, Vec<u8>); 8] = [
            (Number::from(5), vec![0x05]),
            (Number::from(-1), vec![0xff]),
            (Number::from(300), vec![0xcd, 0x01, 0x2c]),
            (Number::from_f64(2.0).unwrap(), vec![0x02]),
            (
                Number::from(u64::MAX),
                vec![0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            (
                Number::from(i64::MIN),
                vec![0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
            ),
            (
                Number::from_f64(1.5).unwrap(),
                [vec![0xcb], 1.5f64.to_be_bytes().to_vec()].concat(),
            ),
            (n("0.1"), vec![0xa3, b'0', b'.', b'1']),
        ];
        for (number, bytes) in cases {
            assert_eq!(
                encode(&Value::Number(number.clone()), &Type::Number).unwrap(),
                bytes,
                "{number:?}"
            );
        }
    }

    #[test]
    fn booleans_and_strings_encode_natively() {
        assert_eq!(encode(&Value::Bool(true), &Type::Bool).unwrap(), [0xc3]);
        assert_eq!(encode(&Value::Bool(false), &Type::Bool).unwrap(), [0xc2]);
        assert_eq!(
            encode(&Value::string("hé"), &Type::String).unwrap(),
            [0xa3, b'h', 0xc3, 0xa9]
        );
    }

    // -- round trips --------------------------------------------------------

    #[test]
    fn primitives_round_trip() {
        let cases = [
            (Value::Bool(true), Type::Bool),
            (Value::Bool(false), Type::Bool),
            (Value::number(0), Type::Number),
            (Value::number(-42), Type::Number),
            (Value::number(u64::MAX), Type::Number),
            (Value::Number(n("3.25")), Type::Number),
            (Value::Number(n("-0.1")), Type::Number),
            (
                Value::Number(n("123456789012345678901234567890.5")),
                Type::Number,
            ),
            (Value::Number(n("1e300")), Type::Number),
            (
                Value::Number(Number::from_f64(f64::INFINITY).unwrap()),
                Type::Number,
            ),
            (Value::string(""), Type::String),
            (Value::string("brokers:9092"), Type::String),
        ];
        for (value, ty) in cases {
            assert_eq!(round_trip(&value, &ty), value, "{ty}");
            assert_eq!(round_trip(&Value::Null, &ty), Value::Null);
            assert_eq!(round_trip(&Value::Unknown, &ty), Value::Unknown);
        }
    }

    #[test]
    fn collections_round_trip() {
        let strings = || {
            Value::list([
                Value::string("a"),
                Value::Null,
                Value::Unknown,
                Value::string("b"),
            ])
        };
        assert_eq!(round_trip(&strings(), &Type::list(Type::String)), strings());
        let set = Value::set([Value::number(1), Value::number(2), Value::Unknown]);
        let decoded = round_trip(&set, &Type::set(Type::Number));
        assert!(matches!(decoded, Value::Set(_)));
        assert_eq!(decoded, set);
        let map = Value::map([
            ("team", Value::string("data")),
            ("tier", Value::Null),
            ("owner", Value::Unknown),
        ]);
        assert_eq!(round_trip(&map, &Type::map(Type::String)), map);
        for (empty, ty) in [
            (Value::list([]), Type::list(Type::String)),
            (Value::set([]), Type::set(Type::String)),
            (Value::map::<&str>([]), Type::map(Type::String)),
        ] {
            assert_eq!(round_trip(&empty, &ty), empty);
        }
        let nested = Value::list([
            Value::list([Value::number(1)]),
            Value::list([]),
            Value::Null,
            Value::Unknown,
        ]);
        assert_eq!(
            round_trip(&nested, &Type::list(Type::list(Type::Number))),
            nested
        );
    }

    #[test]
    fn nested_object_round_trips_with_nulls_and_unknowns() {
        let value = Value::Null
            .with("name", Value::string("orders"))
            .with("replicas", Value::Unknown)
            .with("paused", Value::Bool(false))
            .with(
                "labels",
                Value::map([("team", Value::string("data")), ("x", Value::Null)]),
            )
            .with("columns", Value::set([Value::string("id"), Value::Unknown]))
            .with(
                "source",
                Value::Null.with(
                    "kafka",
                    Value::Null
                        .with(
                            "brokers",
                            Value::list([Value::string("k1:9092"), Value::string("k2:9092")]),
                        )
                        .with("topic", Value::Unknown)
                        .with("partitions", Value::Null),
                ),
            )
            .with(
                "mappings",
                Value::list([
                    Value::object([("from", Value::string("a")), ("to", Value::string("b"))]),
                    Value::object([("from", Value::string("c")), ("to", Value::Unknown)]),
                    Value::Null,
                ]),
            );
        let decoded = round_trip(&value, &pipe_type());
        assert_eq!(decoded, value);
        assert_eq!(
            decoded.get("source").get("kafka").get("brokers"),
            &Value::list([Value::string("k1:9092"), Value::string("k2:9092")])
        );
        // Absent attributes come back as explicit nulls.
        let sparse = Value::object([("name", Value::string("orders"))]);
        let decoded = round_trip(&sparse, &pipe_type());
        assert_eq!(decoded.as_map().unwrap().len(), 7);
        assert!(decoded.get("source").is_null());
        assert_eq!(decoded, sparse);
    }

    // -- decoding numbers ---------------------------------------------------

    #[test]
    fn numbers_decode_from_every_msgpack_int_width() {
        let cases: [(&[u8], Number); 12] = [
            (&[0x07], Number::from(7)),
            (&[0xe0], Number::from(-32)),
            (&[0xcc, 0xff], Number::from(255)),
            (&[0xcd, 0xff, 0xff], Number::from(65535)),
            (&[0xce, 0xff, 0xff, 0xff, 0xff], Number::from(u32::MAX)),
            (
                &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                Number::from(u64::MAX),
            ),
            (&[0xcf, 0, 0, 0, 0, 0, 0, 0, 1], Number::from(1)),
            (&[0xd0, 0x80], Number::from(-128)),
            (&[0xd1, 0x80, 0x00], Number::from(-32768)),
            (&[0xd2, 0x80, 0, 0, 0], Number::from(i32::MIN)),
            (&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], Number::from(i64::MIN)),
            (&[0xd3, 0, 0, 0, 0, 0, 0, 0, 5], Number::from(5)),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                decode(bytes, &Type::Number).unwrap(),
                Value::Number(expected),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn numbers_decode_from_floats() {
        let f64_bytes = |f: f64| [vec![0xcb], f.to_be_bytes().to_vec()].concat();
        assert_eq!(
            decode(&f64_bytes(0.1), &Type::Number).unwrap(),
            Value::Number(Number::from_f64(0.1).unwrap())
        );
        // An integral float is the integer.
        assert_eq!(
            decode(&f64_bytes(3.0), &Type::Number).unwrap(),
            Value::number(3)
        );
        assert_eq!(
            decode(&f64_bytes(-0.0), &Type::Number).unwrap(),
            Value::number(0)
        );
        let f32_bytes = [vec![0xca], 2.5f32.to_be_bytes().to_vec()].concat();
        assert_eq!(
            decode(&f32_bytes, &Type::Number).unwrap(),
            Value::Number(n("2.5"))
        );
        // 1e20 is beyond uint64 but exactly a float64, and stays one.
        let decoded = decode(&f64_bytes(1e20), &Type::Number).unwrap();
        assert_eq!(encode(&decoded, &Type::Number).unwrap(), f64_bytes(1e20));
        assert!(matches!(
            decode(&f64_bytes(f64::NAN), &Type::Number),
            Err(CtyError::Mismatch { .. })
        ));
    }

    #[test]
    fn numbers_decode_from_decimal_strings_and_keep_them_exact() {
        let string = |s: &str| mp_bytes(&Mp::from(s));
        for text in [
            "123456789012345678901234567890",
            "0.1",
            "-3.14159265358979323846264338327950288",
            "0.000000000000000000000000000001",
            "18446744073709551617",
        ] {
            let decoded = decode(&string(text), &Type::Number).unwrap();
            assert_eq!(decoded.as_number().unwrap().to_string(), text);
            // Sent back as the same string, so Terraform sees the same value.
            assert_eq!(encode(&decoded, &Type::Number).unwrap(), string(text));
        }
        // Strings that are ints or exact floats become those.
        assert_eq!(
            decode(&string("42"), &Type::Number).unwrap(),
            Value::number(42)
        );
        assert_eq!(
            decode(&string("1e3"), &Type::Number).unwrap(),
            Value::number(1000)
        );
        assert_eq!(
            decode(&string("-7.000"), &Type::Number).unwrap(),
            Value::number(-7)
        );
        assert_eq!(
            decode(&string("0.5"), &Type::Number).unwrap(),
            Value::Number(Number::from_f64(0.5).unwrap())
        );
        assert_eq!(
            encode(
                &decode(&string("0.5"), &Type::Number).unwrap(),
                &Type::Number
            )
            .unwrap(),
            mp_bytes(&Mp::F64(0.5))
        );
        let err = decode(&string("12abc"), &Type::Number).unwrap_err();
        assert!(matches!(err, CtyError::InvalidNumber { .. }), "{err}");
    }

    // -- numbers ------------------------------------------------------------

    #[test]
    fn number_equality_is_numeric() {
        assert_eq!(n("1.50"), n("1.5"));
        assert_eq!(n("00012"), Number::from(12));
        assert_eq!(n("+12e0"), Number::from(12));
        assert_eq!(n("1.2e1"), Number::from(12));
        assert_eq!(n(".5"), Number::from_f64(0.5).unwrap());
        assert_eq!(n("5."), Number::from(5));
        assert_eq!(n("-0"), Number::from(0));
        assert_eq!(n("0e99999"), Number::from(0));
        assert_eq!(n("18446744073709551615"), Number::from(u64::MAX));
        assert_eq!(n("-9223372036854775808"), Number::from(i64::MIN));
        assert_eq!(n("1e20"), Number::from_f64(1e20).unwrap());
        assert_eq!(n("-inf"), Number::from_f64(f64::NEG_INFINITY).unwrap());
        // 0.1 the decimal and 0.1 the float64 are different numbers.
        assert_ne!(n("0.1"), Number::from_f64(0.1).unwrap());
        assert_eq!(n("0.1"), Number::from_f64_decimal(0.1).unwrap());
        assert_eq!(
            n("0.1000000000000000055511151231257827021181583404541015625"),
            Number::from_f64(0.1).unwrap()
        );
        assert_eq!(Number::from_f64(f64::NAN), None);
    }

    #[test]
    fn numbers_from_json_api_fields_are_their_literals() {
        let from = |j: serde_json::Value| match j {
            serde_json::Value::Number(n) => Number::from(n),
            other => panic!("{other}"),
        };
        assert_eq!(from(json!(0.1)), n("0.1"));
        assert_eq!(from(json!(3)), Number::from(3));
        assert_eq!(from(json!(-3)), Number::from(-3));
        assert_eq!(from(json!(u64::MAX)), Number::from(u64::MAX));
        assert_eq!(from(json!(2.0)), Number::from(2));
        assert_eq!(from(json!(1e300)), n("1e300"));
    }

    #[test]
    fn number_parse_errors_and_limits() {
        for bad in [
            "", "-", ".", "e5", "1e", "1e+", "1.2.3", "0x10", "1_000", " 1", "nan",
        ] {
            assert!(bad.parse::<Number>().is_err(), "{bad:?}");
        }
        assert!("1e99999999999999999999".parse::<Number>().is_err());
        assert!("1e5000".parse::<Number>().is_err());
        assert!("1e-5000".parse::<Number>().is_err());
        let err = "x".repeat(1000).parse::<Number>().unwrap_err();
        assert_eq!(err.input.len(), 64);
    }

    #[test]
    fn number_accessors() {
        assert_eq!(Number::from(-3).as_i64(), Some(-3));
        assert_eq!(Number::from(-3).as_u64(), None);
        assert_eq!(Number::from(u64::MAX).as_i64(), None);
        assert_eq!(Number::from(u64::MAX).as_u64(), Some(u64::MAX));
        assert_eq!(n("2.5").as_i64(), None);
        assert_eq!(n("2.5").as_f64(), 2.5);
        assert_eq!(n("0.1").as_f64(), 0.1);
        assert_eq!(n("1e400").as_f64(), f64::INFINITY);
        assert_eq!(Number::from(7).as_f64(), 7.0);
        assert_eq!(n("-0.00125").to_string(), "-0.00125");
        assert_eq!(n("125e3").to_string(), "125000");
        // The decimal 1e30, not the float64 nearest to it.
        assert_eq!(n("1e30").to_string(), format!("1{}", "0".repeat(30)));
        assert_ne!(n("1e30"), Number::from_f64(1e30).unwrap());
        assert_eq!(n("1e30").as_f64(), 1e30);
        assert_eq!(Number::from_f64(0.1).unwrap().to_string(), "0.1");
        assert_eq!(n("-inf").to_string(), "-Inf");
        assert_eq!(format!("{:?}", n("1.5")), "Number(1.5)");
    }

    // -- unknowns and extensions ---------------------------------------------

    #[test]
    fn any_extension_0_or_12_decodes_as_unknown() {
        let refined = mp_bytes(&Mp::Ext(
            12,
            mp_bytes(&Mp::Map(vec![(Mp::from(1), Mp::Boolean(true))])),
        ));
        for bytes in [
            vec![0xd4, 0x00, 0x00],
            vec![0xd4, 0x00, 0x07],
            vec![0xc7, 0x00, 0x00],
            refined,
        ] {
            assert_eq!(
                decode(&bytes, &Type::String).unwrap(),
                Value::Unknown,
                "{bytes:02x?}"
            );
            assert_eq!(decode(&bytes, &pipe_type()).unwrap(), Value::Unknown);
        }
        let err = decode(&[0xd4, 0x05, 0x00], &Type::String).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected string, got msgpack extension type 5"
        );
    }

    #[test]
    fn unknown_inside_an_object_decodes_in_place() {
        let ty = Type::object([("id", Type::String), ("n", Type::Number)]);
        let bytes = [0x82, 0xa2, b'i', b'd', 0xd4, 0, 0, 0xa1, b'n', 0x02];
        let value = decode(&bytes, &ty).unwrap();
        assert!(value.get("id").is_unknown());
        assert_eq!(value.get("n").as_i64(), Some(2));
        assert!(!value.is_known());
    }

    #[test]
    fn dynamic_values_must_be_null_or_unknown() {
        let ty = Type::DynamicPseudoType;
        assert_eq!(round_trip(&Value::Null, &ty), Value::Null);
        assert_eq!(round_trip(&Value::Unknown, &ty), Value::Unknown);
        let err = encode(&Value::string("x"), &ty).unwrap_err();
        assert_eq!(
            err,
            CtyError::Dynamic {
                path: Path::default()
            }
        );
        let holder = Type::object([("extra", ty)]);
        let bytes = mp_bytes(&Mp::Map(vec![(
            Mp::from("extra"),
            Mp::Array(vec![Mp::from("\"string\""), Mp::from("x")]),
        )]));
        let err = decode(&bytes, &holder).unwrap_err();
        assert!(
            err.to_string().starts_with(".extra: a value of type any"),
            "{err}"
        );
    }

    // -- errors -------------------------------------------------------------

    #[test]
    fn decode_mismatch_names_the_path_and_the_expected_type() {
        let ty = pipe_type();
        let bytes = mp_bytes(&Mp::Map(vec![(
            Mp::from("source"),
            Mp::Map(vec![(
                Mp::from("kafka"),
                Mp::Map(vec![(
                    Mp::from("brokers"),
                    Mp::Array(vec![Mp::from("k1:9092"), Mp::from(9092)]),
                )]),
            )]),
        )]));
        let err = decode(&bytes, &ty).unwrap_err();
        assert_eq!(
            err.to_string(),
            ".source.kafka.brokers[1]: expected string, got an integer"
        );
        let path = err.path().unwrap();
        assert_eq!(
            path.0,
            [
                PathStep::Attr("source".into()),
                PathStep::Attr("kafka".into()),
                PathStep::Attr("brokers".into()),
                PathStep::Index(1),
            ]
        );

        let bytes = mp_bytes(&Mp::Map(vec![(Mp::from("source"), Mp::from("kafka"))]));
        assert_eq!(
            decode(&bytes, &ty).unwrap_err().to_string(),
            ".source: expected object({kafka=object({brokers=list(string), partitions=list(number), topic=string})}), got a string"
        );
        let bytes = mp_bytes(&Mp::Map(vec![(
            Mp::from("labels"),
            Mp::Map(vec![(Mp::from("team"), Mp::Boolean(true))]),
        )]));
        assert_eq!(
            decode(&bytes, &ty).unwrap_err().to_string(),
            ".labels[\"team\"]: expected string, got a boolean"
        );
        assert_eq!(
            decode(&[0x01], &Type::list(Type::Number))
                .unwrap_err()
                .to_string(),
            "expected list(number), got an integer"
        );
    }

    #[test]
    fn decode_refuses_unsupported_attributes_and_duplicates() {
        let ty = pipe_type();
        let bytes = mp_bytes(&Mp::Map(vec![(
            Mp::from("source"),
            Mp::Map(vec![(Mp::from("kinesis"), Mp::Nil)]),
        )]));
        let err = decode(&bytes, &ty).unwrap_err();
        assert_eq!(
            err,
            CtyError::UnsupportedAttribute {
                path: Path(vec![PathStep::Attr("source".into())]),
                name: "kinesis".into(),
            }
        );
        assert_eq!(
            err.to_string(),
            ".source: unsupported attribute \"kinesis\": the object type has no such attribute"
        );
        let twice = mp_bytes(&Mp::Map(vec![
            (Mp::from("name"), Mp::from("a")),
            (Mp::from("name"), Mp::from("b")),
        ]));
        assert!(matches!(
            decode(&twice, &ty),
            Err(CtyError::DuplicateKey { key, .. }) if key == "name"
        ));
        let twice = mp_bytes(&Mp::Map(vec![
            (Mp::from("k"), Mp::from("a")),
            (Mp::from("k"), Mp::from("b")),
        ]));
        assert!(matches!(
            decode(&twice, &Type::map(Type::String)),
            Err(CtyError::DuplicateKey { .. })
        ));
        let int_key = mp_bytes(&Mp::Map(vec![(Mp::from(1), Mp::from("a"))]));
        assert_eq!(
            decode(&int_key, &Type::map(Type::String))
                .unwrap_err()
                .to_string(),
            "expected map(string), got a map with an integer as a key"
        );
    }

    #[test]
    fn decode_refuses_malformed_and_trailing_bytes() {
        assert!(matches!(
            decode(&[], &Type::String),
            Err(CtyError::Msgpack(_))
        ));
        assert!(matches!(
            decode(&[0xa3, b'a'], &Type::String),
            Err(CtyError::Msgpack(_))
        ));
        assert_eq!(
            decode(&[0xc0, 0xc0, 0xc0], &Type::String),
            Err(CtyError::TrailingBytes(2))
        );
        assert_eq!(
            decode(&[0xa2, 0xff, 0xfe], &Type::String)
                .unwrap_err()
                .to_string(),
            "expected string, got a string that is not valid UTF-8"
        );
        // Nesting far beyond any schema stops at the depth limit instead of
        // the stack.
        let mut deep = vec![0x91; 100_000];
        deep.push(0xc0);
        assert!(matches!(
            decode(&deep, &Type::list(Type::String)),
            Err(CtyError::Msgpack(_))
        ));
    }

    #[test]
    fn encode_mismatch_names_the_path() {
        let ty = pipe_type();
        let value = Value::Null.with(
            "source",
            Value::Null.with(
                "kafka",
                Value::Null.with("brokers", Value::list([Value::number(1)])),
            ),
        );
        assert_eq!(
            encode(&value, &ty).unwrap_err().to_string(),
            ".source.kafka.brokers[0]: expected string, got a number"
        );
        let value = Value::Null.with("source", Value::Null.with("kinesis", Value::Null));
        assert_eq!(
            encode(&value, &ty).unwrap_err(),
            CtyError::UnsupportedAttribute {
                path: Path(vec![PathStep::Attr("source".into())]),
                name: "kinesis".into(),
            }
        );
        // A list is not a set, and a map is not an object.
        let value = Value::Null.with("columns", Value::list([]));
        assert_eq!(
            encode(&value, &ty).unwrap_err().to_string(),
            ".columns: expected set(string), got a list"
        );
        let value = Value::Null.with("labels", Value::object([("a", Value::string("b"))]));
        assert_eq!(
            encode(&value, &ty).unwrap_err().to_string(),
            ".labels: expected map(string), got an object"
        );
        assert_eq!(
            encode(&Value::Bool(true), &Type::String)
                .unwrap_err()
                .to_string(),
            "expected string, got a bool"
        );
    }

    // -- type JSON ----------------------------------------------------------

    #[test]
    fn type_json_bytes() {
        let cases = [
            (Type::String, r#""string""#),
            (Type::Number, r#""number""#),
            (Type::Bool, r#""bool""#),
            (Type::DynamicPseudoType, r#""dynamic""#),
            (Type::list(Type::String), r#"["list","string"]"#),
            (Type::set(Type::Number), r#"["set","number"]"#),
            (
                Type::map(Type::list(Type::Bool)),
                r#"["map",["list","bool"]]"#,
            ),
            (Type::object::<&str>([]), r#"["object",{}]"#),
            (
                Type::object([
                    ("b", Type::list(Type::String)),
                    ("a", Type::object([("x", Type::Number)])),
                ]),
                r#"["object",{"a":["object",{"x":"number"}],"b":["list","string"]}]"#,
            ),
        ];
        for (ty, json) in cases {
            assert_eq!(String::from_utf8(ty.to_json_bytes()).unwrap(), json);
            assert_eq!(Type::from_json_bytes(json.as_bytes()).unwrap(), ty);
        }
    }

    #[test]
    fn type_json_rejects_what_the_provider_does_not_use() {
        for bad in [
            r#""str""#,
            r#"["tuple",["string"]]"#,
            r#"["object",{"a":"string"},["a"]]"#,
            r#"["list"]"#,
            r#"["list","string","extra"]"#,
            r#"[]"#,
            r#"42"#,
            r#"not json"#,
        ] {
            assert!(
                matches!(
                    Type::from_json_bytes(bad.as_bytes()),
                    Err(CtyError::TypeJson(_))
                ),
                "{bad}"
            );
        }
    }

    // -- JSON values --------------------------------------------------------

    #[test]
    fn from_json_reads_state_by_type() {
        let state = json!({
            "name": "orders",
            "replicas": 3,
            "paused": null,
            "labels": {"team": "data"},
            "columns": ["id", "ts"],
            "source": {"kafka": {"brokers": ["k1:9092"], "topic": "t", "partitions": [0, 1.5, 0.1]}},
            "removed_in_v2": "ignored",
        });
        let value = from_json(&state, &pipe_type()).unwrap();
        let expected = Value::Null
            .with("name", Value::string("orders"))
            .with("replicas", Value::number(3))
            .with("labels", Value::map([("team", Value::string("data"))]))
            .with(
                "columns",
                Value::set([Value::string("ts"), Value::string("id")]),
            )
            .with(
                "source",
                Value::Null.with(
                    "kafka",
                    Value::object([
                        ("brokers", Value::list([Value::string("k1:9092")])),
                        ("topic", Value::string("t")),
                        (
                            "partitions",
                            Value::list([
                                Value::number(0),
                                Value::Number(n("1.5")),
                                Value::Number(n("0.1")),
                            ]),
                        ),
                    ]),
                ),
            );
        assert_eq!(value, expected);
        // Every attribute of the type is present; absent ones as null.
        assert!(value.as_map().unwrap().contains_key("mappings"));
        assert!(!value.as_map().unwrap().contains_key("removed_in_v2"));
        // A JSON 0.1 is the decimal 0.1, as in msgpack from Terraform.
        let partitions = value.get("source").get("kafka").get("partitions");
        assert_eq!(
            encode(partitions, &Type::list(Type::Number)).unwrap(),
            [0x93, 0x00, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xa3, b'0', b'.', b'1']
        );
        assert_eq!(from_json(&json!(null), &pipe_type()).unwrap(), Value::Null);
    }

    #[test]
    fn from_json_converts_primitives_as_go_cty_does() {
        assert_eq!(
            from_json(&json!("true"), &Type::Bool).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            from_json(&json!("0"), &Type::Bool).unwrap(),
            Value::Bool(false)
        );
        assert_eq!(
            from_json(&json!("12.5"), &Type::Number).unwrap(),
            Value::Number(n("12.5"))
        );
        assert_eq!(
            from_json(&json!(u64::MAX), &Type::Number).unwrap(),
            Value::number(u64::MAX)
        );
        assert_eq!(
            from_json(&json!(7), &Type::String).unwrap(),
            Value::string("7")
        );
        assert_eq!(
            from_json(&json!(false), &Type::String).unwrap(),
            Value::string("false")
        );
        assert_eq!(
            from_json(&json!("yes"), &Type::Bool)
                .unwrap_err()
                .to_string(),
            "expected bool, got the string \"yes\""
        );
        assert!(matches!(
            from_json(&json!("many"), &Type::Number),
            Err(CtyError::InvalidNumber { .. })
        ));
    }

    #[test]
    fn from_json_mismatch_names_the_path() {
        let err = from_json(
            &json!({"source": {"kafka": {"brokers": "k1:9092"}}}),
            &pipe_type(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            ".source.kafka.brokers: expected list(string), got a JSON string"
        );
        let err = from_json(&json!({"mappings": [{"from": []}]}), &pipe_type()).unwrap_err();
        assert_eq!(
            err.to_string(),
            ".mappings[0].from: expected string, got a JSON array"
        );
        let err = from_json(&json!({"labels": {"a b": {}}}), &pipe_type()).unwrap_err();
        assert_eq!(
            err.to_string(),
            ".labels[\"a b\"]: expected string, got a JSON object"
        );
    }

    #[test]
    fn json_and_msgpack_agree() {
        let state = json!({
            "name": "orders",
            "replicas": 2,
            "labels": {"a": "b"},
            "mappings": [{"from": "x", "to": "y"}],
        });
        let from_state = from_json(&state, &pipe_type()).unwrap();
        assert_eq!(round_trip(&from_state, &pipe_type()), from_state);
    }

    // -- helpers ------------------------------------------------------------

    #[test]
    fn value_helpers() {
        let v = Value::object([
            ("name", Value::from("orders")),
            ("paused", Value::from(true)),
            ("replicas", Value::from(3i64)),
            ("labels", Value::map([("team", Value::from("data"))])),
            ("tags", Value::from(None::<&str>)),
        ]);
        assert_eq!(v.get("name").as_str(), Some("orders"));
        assert_eq!(v.get("paused").as_bool(), Some(true));
        assert_eq!(v.get("replicas").as_i64(), Some(3));
        assert_eq!(v.get("labels").get("team").as_str(), Some("data"));
        assert!(v.get("tags").is_null());
        assert!(v.get("missing").is_null());
        assert!(v.get("missing").get("deeper").is_null());
        assert!(Value::Unknown.get("x").is_null());
        assert_eq!(v.get("name").as_bool(), None);
        assert_eq!(v.get("paused").as_str(), None);
        assert_eq!(v.get("name").as_i64(), None);
        assert_eq!(Value::from(Some("x")), Value::string("x"));
        assert_eq!(
            Value::list([Value::number(1)]).as_list(),
            Some(&[Value::number(1)][..])
        );
        assert_eq!(Value::string("x").as_list(), None);
        assert_eq!(Value::Number(n("2.5")).as_number(), Some(&n("2.5")));
        assert_eq!(Value::default(), Value::Null);
        assert_eq!(Value::Number(n("0.25")).as_f64(), Some(0.25));
        assert_eq!(Value::string("1").as_f64(), None);
        assert_eq!(
            Value::set([Value::Null]).as_list(),
            Some(&[Value::Null][..])
        );
    }

    #[test]
    fn with_sets_or_replaces_an_attribute() {
        let v = Value::object([("a", Value::number(1))])
            .with("b", Value::number(2))
            .with("a", Value::number(3));
        assert_eq!(
            v,
            Value::object([("a", Value::number(3)), ("b", Value::number(2))])
        );
        assert_eq!(
            Value::string("x").with("a", Value::Null),
            Value::object([("a", Value::Null)])
        );
    }

    #[test]
    fn is_known_looks_all_the_way_down() {
        assert!(Value::Null.is_known());
        assert!(!Value::Unknown.is_known());
        assert!(pipe_example_known().is_known());
        let deep_unknown = Value::Null.with(
            "source",
            Value::Null.with(
                "kafka",
                Value::Null.with("brokers", Value::list([Value::Unknown])),
            ),
        );
        assert!(!deep_unknown.is_known());
        assert!(!Value::set([Value::number(1), Value::Unknown]).is_known());
        assert!(!Value::map([("k", Value::Unknown)]).is_known());
        assert!(Value::list([]).is_known());
    }

    fn pipe_example_known() -> Value {
        Value::Null
            .with("name", Value::string("orders"))
            .with("labels", Value::map([("k", Value::string("v"))]))
            .with("columns", Value::set([Value::string("id")]))
    }

    #[test]
    fn equality_follows_cty() {
        // Sets are unordered.
        assert_eq!(
            Value::set([Value::number(1), Value::number(2)]),
            Value::set([Value::number(2), Value::number(1)])
        );
        assert_ne!(
            Value::set([Value::number(1), Value::number(1)]),
            Value::set([Value::number(1), Value::number(2)])
        );
        assert_ne!(
            Value::set([Value::number(1)]),
            Value::set([Value::number(1), Value::number(1)])
        );
        // Lists are not.
        assert_ne!(
            Value::list([Value::number(1), Value::number(2)]),
            Value::list([Value::number(2), Value::number(1)])
        );
        // An absent object attribute is null; a map key is not.
        assert_eq!(
            Value::object([("a", Value::Null)]),
            Value::object::<&str>([])
        );
        assert_ne!(
            Value::object([("a", Value::Unknown)]),
            Value::object::<&str>([])
        );
        assert_ne!(Value::map([("a", Value::Null)]), Value::map::<&str>([]));
        // Kinds never compare equal across.
        assert_ne!(Value::list([]), Value::set([]));
        assert_ne!(Value::map::<&str>([]), Value::object::<&str>([]));
        assert_ne!(Value::Null, Value::Unknown);
    }

    #[test]
    fn path_display() {
        let path = Path(vec![
            PathStep::Attr("labels".into()),
            PathStep::Key("a\"b".into()),
            PathStep::Index(3),
        ]);
        assert_eq!(path.to_string(), ".labels[\"a\\\"b\"][3]");
        assert_eq!(Path::default().to_string(), "");
    }

    // -- properties ---------------------------------------------------------

    fn type_strategy() -> impl Strategy<Value = Type> {
        let leaf = prop_oneof![Just(Type::Bool), Just(Type::Number), Just(Type::String)];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(Type::list),
                inner.clone().prop_map(Type::set),
                inner.clone().prop_map(Type::map),
                prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4).prop_map(Type::Object),
            ]
        })
    }

    fn number_strategy() -> BoxedStrategy<Number> {
        prop_oneof![
            any::<i64>().prop_map(Number::from),
            any::<u64>().prop_map(Number::from),
            any::<f64>().prop_filter_map("NaN", Number::from_f64),
            "-?[0-9]{1,30}(\\.[0-9]{1,30})?(e-?[0-9]{1,3})?"
                .prop_filter_map("in range", |s| s.parse().ok()),
        ]
        .boxed()
    }

    fn value_strategy(ty: &Type) -> BoxedStrategy<Value> {
        let known = match ty {
            Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
            Type::Number => number_strategy().prop_map(Value::Number).boxed(),
            Type::String => any::<String>().prop_map(Value::String).boxed(),
            Type::DynamicPseudoType => Just(Value::Null).boxed(),
            Type::List(element) => prop::collection::vec(value_strategy(element), 0..4)
                .prop_map(Value::List)
                .boxed(),
            Type::Set(element) => prop::collection::vec(value_strategy(element), 0..4)
                .prop_map(Value::Set)
                .boxed(),
            Type::Map(element) => {
                prop::collection::btree_map(".{0,4}", value_strategy(element), 0..4)
                    .prop_map(Value::Map)
                    .boxed()
            }
            Type::Object(attributes) => {
                let names: Vec<String> = attributes.keys().cloned().collect();
                let values: Vec<BoxedStrategy<Value>> =
                    attributes.values().map(value_strategy).collect();
                (values, any::<bool>())
                    .prop_map(move |(values, leave_out_nulls)| {
                        Value::Object(
                            names
                                .iter()
                                .cloned()
                                .zip(values)
                                .filter(|(_, v)| !(leave_out_nulls && v.is_null()))
                                .collect(),
                        )
                    })
                    .boxed()
            }
        };
        prop_oneof![1 => Just(Value::Null), 1 => Just(Value::Unknown), 6 => known].boxed()
    }

    fn typed_value() -> impl Strategy<Value = (Type, Value)> {
        type_strategy().prop_flat_map(|ty| {
            let value = value_strategy(&ty);
            (Just(ty), value)
        })
    }

    proptest! {
        #[test]
        fn msgpack_round_trips((ty, value) in typed_value()) {
            let bytes = encode(&value, &ty).unwrap();
            let decoded = decode(&bytes, &ty).unwrap();
            prop_assert_eq!(&decoded, &value);
            // Decoding is canonical: re-encoding gives the same bytes.
            prop_assert_eq!(encode(&decoded, &ty).unwrap(), bytes);
        }

        #[test]
        fn type_json_round_trips(ty in type_strategy()) {
            prop_assert_eq!(Type::from_json_bytes(&ty.to_json_bytes()).unwrap(), ty);
        }

        #[test]
        fn numbers_print_and_parse_back(number in number_strategy()) {
            let reparsed: Number = number.to_string().parse().unwrap();
            // Floats print as their shortest round-trip digits: the same
            // float64, though not always the same exact number.
            prop_assert_eq!(reparsed.as_f64(), number.as_f64());
            if !matches!(number.0, Repr::Float(_)) {
                prop_assert_eq!(reparsed, number);
            }
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64), ty in type_strategy()) {
            let _ = decode(&bytes, &ty);
        }
    }
}
