//! Messages parsed with sonic-rs, read with the semantics the decoder had
//! when it used serde_json's `Value` (without `preserve_order` or
//! `arbitrary_precision`), so that moving parsers changes no row:
//!
//! - objects read as sorted maps: a duplicated key takes its last value,
//!   and objects re-serialize with their keys sorted (sonic-rs keeps every
//!   pair, in input order, and `get` returns the first);
//! - nesting deeper than serde_json's limit (128) is a parsing error, which
//!   also keeps sonic-rs, whose parser recurses without a limit, from
//!   overflowing the stack;
//! - `-0`, `-0.0`, `-0e3` stay negative zeros (sonic-rs reads them as +0.0);
//! - numbers print as serde_json printed them (sonic-rs's float formatting
//!   gives the same text as serde_json's ryu; see the tests).
//!
//! What is not kept: serde_json's default float parsing is not correctly
//! rounded (about one double in ten, written with all its digits, came
//! back one unit in the last place off); sonic-rs's is, like ClickHouse's
//! own parser. Error messages name the same position in sonic-rs's words.

use std::fmt;

use sonic_rs::{Array, JsonNumberTrait, JsonValueTrait, Number, Object, Value, ValueRef};

/// serde_json's recursion limit: it refused the 128th nested array or object.
const MAX_DEPTH: usize = 128;

/// A JSON number as serde_json classified it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    U64(u64),
    /// Always negative: `-0` is `F64(-0.0)`.
    I64(i64),
    F64(f64),
}

impl Num {
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Num::U64(u) => i64::try_from(u).ok(),
            Num::I64(i) => Some(i),
            Num::F64(_) => None,
        }
    }

    pub fn as_u64(self) -> Option<u64> {
        match self {
            Num::U64(u) => Some(u),
            Num::I64(_) | Num::F64(_) => None,
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Num::U64(u) => u as f64,
            Num::I64(i) => i as f64,
            Num::F64(f) => f,
        }
    }

    pub fn is_f64(self) -> bool {
        matches!(self, Num::F64(_))
    }

    fn from_sonic(n: &Number) -> Num {
        if let Some(u) = n.as_u64() {
            Num::U64(u)
        } else if let Some(i) = n.as_i64() {
            Num::I64(i)
        } else {
            Num::F64(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// A number's JSON text (already validated by the parser) classified
    /// by serde_json's rules.
    fn from_text(text: &str) -> Num {
        if !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            let (negative, digits) = match text.strip_prefix('-') {
                Some(digits) => (true, digits),
                None => (false, text),
            };
            if let Ok(magnitude) = digits.parse::<u64>() {
                match (negative, magnitude) {
                    (false, m) => return Num::U64(m),
                    (true, 0) => return Num::F64(-0.0),
                    // 2^63 wraps to i64::MIN, which is exactly -2^63.
                    (true, m) if m <= 1 << 63 => return Num::I64((m as i64).wrapping_neg()),
                    _ => {}
                }
            }
        }
        Num::F64(text.parse().unwrap_or(f64::NAN))
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::U64(u) => write!(f, "{u}"),
            Num::I64(i) => write!(f, "{i}"),
            // sonic-rs formats finite floats as serde_json did; non-finite
            // ones never come out of the parser.
            Num::F64(x) => match Number::from_f64(*x) {
                Some(n) => write!(f, "{n}"),
                None => f.write_str("null"),
            },
        }
    }
}

/// One JSON value, seen the way the conversion rules match on it.
pub enum Kind<'a> {
    Null,
    Bool(bool),
    Number(Num),
    String(&'a str),
    Array(&'a Array),
    Object(&'a Object),
}

pub fn kind(value: &Value) -> Kind<'_> {
    match value.as_ref() {
        ValueRef::Null => Kind::Null,
        ValueRef::Bool(b) => Kind::Bool(b),
        // Raw numbers only come from re-parsing a message holding a
        // negative zero, which `n` (sonic-rs's reading) has lost.
        ValueRef::Number(n) => Kind::Number(match value.as_raw_number() {
            Some(raw) => Num::from_text(raw.as_str()),
            None => Num::from_sonic(&n),
        }),
        ValueRef::String(s) => Kind::String(s),
        ValueRef::Array(a) => Kind::Array(a),
        ValueRef::Object(o) => Kind::Object(o),
    }
}

/// The value of `key`; the last one if the key repeats.
pub fn get<'a>(object: &'a Object, key: &str) -> Option<&'a Value> {
    object
        .iter()
        .filter(|(k, _)| same_key(k, key))
        .last()
        .map(|(_, v)| v)
}

/// Key equality without a call to `memcmp` for short keys, which are most
/// of them and most often differ in length or first bytes.
fn same_key(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() > 16 {
        return a == b;
    }
    a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// A row's fields, indexed once for the lookups of all its columns.
pub struct Fields<'a> {
    entries: Vec<(&'a str, &'a Value)>,
    /// Sorted by key (and deduplicated) for binary search; small objects
    /// stay in input order and are scanned, which is faster for them.
    sorted: bool,
}

impl<'a> Fields<'a> {
    pub fn new(object: &'a Object) -> Self {
        const SCANNED: usize = 32;
        if object.len() > SCANNED {
            Fields {
                entries: entries(object),
                sorted: true,
            }
        } else {
            Fields {
                entries: object.iter().collect(),
                sorted: false,
            }
        }
    }

    /// The value of `key`; the last one if the key repeats.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        if self.sorted {
            self.entries
                .binary_search_by(|(k, _)| (*k).cmp(key))
                .ok()
                .map(|i| self.entries[i].1)
        } else {
            self.entries
                .iter()
                .rev()
                .find(|(k, _)| same_key(k, key))
                .map(|(_, v)| *v)
        }
    }
}

/// The entries sorted by key, a repeated key keeping its last value.
pub fn entries(object: &Object) -> Vec<(&str, &Value)> {
    let mut entries: Vec<(&str, &Value)> = object.iter().collect();
    // Reversed first so that the stable sort puts the last of equal keys
    // first, which is the one `dedup_by` keeps.
    entries.reverse();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries.dedup_by(|later, kept| later.0 == kept.0);
    entries
}

/// Compact JSON text, byte for byte what serde_json's `to_string` gave.
pub fn to_json_string(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Value, out: &mut String) {
    match kind(value) {
        Kind::Null => out.push_str("null"),
        Kind::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Kind::Number(n) => {
            use fmt::Write;
            // Writing to a String cannot fail.
            let _ = write!(out, "{n}");
        }
        Kind::String(s) => write_string(s, out),
        Kind::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Kind::Object(object) => {
            out.push('{');
            for (i, (key, item)) in entries(object).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

/// serde_json's escaping: quotes, backslashes and control characters only.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let mut plain = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\x08' => "\\b",
            b'\x0c' => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(escape);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// Why a message is not valid JSON, with serde_json's "at line L column C".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    what: String,
    line: usize,
    column: usize,
}

impl SyntaxError {
    fn at(input: &[u8], offset: usize, what: String) -> Self {
        let before = &input[..offset.min(input.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        SyntaxError {
            what,
            line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
            column: before.len() - line_start + 1,
        }
    }

    /// `error` happened parsing `input[start..]`.
    fn from_sonic(input: &[u8], start: usize, error: &sonic_rs::Error) -> Self {
        // sonic-rs appends its position and an excerpt of the input; the
        // position is recomputed for the whole message.
        let text = error.to_string();
        let what = match text.find(" at line ") {
            Some(end) => text[..end].to_owned(),
            None => text,
        };
        SyntaxError::at(input, start + error.offset(), what)
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.what, self.line, self.column
        )
    }
}

/// The JSON values of `input`, in order, as serde_json's
/// `StreamDeserializer` gave them: separated by whitespace or nothing;
/// after the first error, nothing.
pub fn values(input: &[u8]) -> Values<'_> {
    Values {
        input,
        position: 0,
        scan: None,
    }
}

pub struct Values<'a> {
    input: &'a [u8],
    position: usize,
    /// The whole input's, once the first value is asked for.
    scan: Option<Scan>,
}

impl Iterator for Values<'_> {
    type Item = Result<Value, SyntaxError>;

    fn next(&mut self) -> Option<Self::Item> {
        let input = self.input;
        let scan = match &self.scan {
            Some(scan) => scan,
            None => {
                let scan = self.scan.insert(Scan::of(input));
                // The usual message is one object: parsed in one go when it
                // cannot nest too deep. Anything else (several values,
                // errors) goes value by value below, which finds the first
                // problem in message order as serde_json did.
                if scan.opening_brackets < MAX_DEPTH && !scan.next_object {
                    if let Ok(value) = sonic_rs::from_slice::<Value>(input) {
                        self.position = input.len();
                        return Some(Ok(keep_negative_zeros(input, scan, value)));
                    }
                }
                scan
            }
        };
        let start = self.position
            + input[self.position..]
                .iter()
                .position(|b| !matches!(b, b' ' | b'\n' | b'\t' | b'\r'))?;
        // Stop after this value whatever happens; moved on below if it parses.
        self.position = input.len();
        let end = match value_end(input, start) {
            Ok(end) => end,
            Err(too_deep) => {
                return Some(Err(SyntaxError::at(
                    input,
                    too_deep,
                    "recursion limit exceeded".to_owned(),
                )))
            }
        };
        let text = &input[start..end];
        Some(match sonic_rs::from_slice::<Value>(text) {
            Ok(value) => {
                self.position = end;
                Ok(keep_negative_zeros(text, scan, value))
            }
            Err(e) => Err(SyntaxError::from_sonic(input, start, &e)),
        })
    }
}

/// What one pass over a message's bytes tells before parsing it.
struct Scan {
    /// `[` and `{` bytes, strings included: a bound of the nesting.
    opening_brackets: usize,
    /// Whether "-0" occurs: the first test for a negative zero.
    minus_zero: bool,
    /// Whether `}{` or a newline and `{` occur: likely one object ending
    /// and another starting (JSONEachRow).
    next_object: bool,
}

impl Scan {
    fn of(text: &[u8]) -> Scan {
        const LANES: usize = 32;
        // `[` is 0x5b and `{` 0x7b: the only bytes that are `{` with 0x20 set.
        let opening = |b: u8| u8::from(b | 0x20 == b'{');
        let minus_zero = |a: u8, b: u8| u8::from((a == b'-') & (b == b'0'));
        let next_object = |a: u8, b: u8| u8::from(((a == b'}') | (a == b'\n')) & (b == b'{'));
        let mut scan = Scan {
            opening_brackets: 0,
            minus_zero: false,
            next_object: false,
        };
        let Some(last) = text.len().checked_sub(1) else {
            return scan;
        };
        // Each byte is looked at with the next one, in fixed blocks, with
        // u8 counters emptied every 255 blocks: no branches, so SIMD.
        let mut firsts = text[..last].chunks_exact(LANES);
        let mut seconds = text[1..].chunks_exact(LANES);
        let mut brackets = [0u8; LANES];
        let mut flags = [0u8; LANES];
        let mut blocks = 0;
        for (x, y) in (&mut firsts).zip(&mut seconds) {
            let (Ok(x), Ok(y)) = (<&[u8; LANES]>::try_from(x), <&[u8; LANES]>::try_from(y)) else {
                break;
            };
            for i in 0..LANES {
                brackets[i] += opening(x[i]);
                flags[i] |= minus_zero(x[i], y[i]) | next_object(x[i], y[i]) << 1;
            }
            blocks += 1;
            if blocks == 255 {
                scan.opening_brackets += brackets.iter().map(|&n| usize::from(n)).sum::<usize>();
                brackets = [0; LANES];
                blocks = 0;
            }
        }
        scan.opening_brackets += brackets.iter().map(|&n| usize::from(n)).sum::<usize>();
        let mut flags = flags.iter().fold(0, |all, &f| all | f);
        let rest = text.len() - firsts.remainder().len() - 1;
        for (i, &b) in text.iter().enumerate().skip(rest) {
            scan.opening_brackets += usize::from(opening(b));
            if let Some(&next) = text.get(i + 1) {
                flags |= minus_zero(b, next) | next_object(b, next) << 1;
            }
        }
        scan.minus_zero = flags & 1 != 0;
        scan.next_object = flags & 2 != 0;
        scan
    }
}

/// The first index from `i` whose byte is one `stop` holds for, or the
/// length.
fn skip_until(text: &[u8], i: usize, stop: impl Fn(u8) -> bool) -> usize {
    const SHORT: usize = 16;
    const BLOCK: usize = 32;
    // Byte by byte first: between structural bytes the gap is short.
    let short_end = text.len().min(i.saturating_add(SHORT));
    let Some(short) = text.get(i..short_end) else {
        return text.len();
    };
    if let Some(n) = short.iter().position(|&b| stop(b)) {
        return i + n;
    }
    // Then long runs (string contents, mostly) by blocks of 32 bytes,
    // each tested at once, which compiles to SIMD.
    let mut i = short_end;
    while let Some(block) = text
        .get(i..i + BLOCK)
        .and_then(|b| <&[u8; BLOCK]>::try_from(b).ok())
    {
        if block.iter().fold(0u8, |hit, &b| hit | u8::from(stop(b))) != 0 {
            break;
        }
        i += BLOCK;
    }
    text[i..]
        .iter()
        .position(|&b| stop(b))
        .map_or(text.len(), |n| i + n)
}

/// Where the value starting at `input[start]` (not whitespace) ends, or,
/// as `Err`, where it opens its 128th level of nesting. Only brackets are
/// matched: the value's validity is left to the parser, which gets
/// exactly these bytes.
fn value_end(input: &[u8], start: usize) -> Result<usize, usize> {
    match input[start] {
        b'{' | b'[' => {
            let mut depth = 0;
            let mut i = start;
            loop {
                i = skip_until(input, i, |b| matches!(b, b'"' | b'{' | b'[' | b'}' | b']'));
                match input.get(i) {
                    None => return Ok(input.len()),
                    Some(b'"') => i = string_end(input, i),
                    Some(b'{' | b'[') => {
                        depth += 1;
                        if depth >= MAX_DEPTH {
                            return Err(i);
                        }
                        i += 1;
                    }
                    Some(_) => {
                        depth -= 1;
                        i += 1;
                        if depth == 0 {
                            return Ok(i);
                        }
                    }
                }
            }
        }
        b'"' => Ok(string_end(input, start)),
        // A number or literal (or garbage) runs up to whatever cannot be
        // part of it; the parser then accepts or rejects it.
        _ => Ok(skip_until(input, start + 1, |b| {
            b" \t\n\r,:[]{}\"".contains(&b)
        })),
    }
}

/// Just past the closing quote of the string opened at `input[open]`.
fn string_end(input: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    loop {
        i = skip_until(input, i, |b| (b == b'"') | (b == b'\\'));
        match input.get(i) {
            Some(b'\\') => i += 2,
            Some(_) => return i + 1,
            None => return input.len(),
        }
    }
}

/// `value` (parsed from `text`), or, when `text` holds a negative zero,
/// `text` parsed again with numbers kept as text, where `kind` reads
/// `-0` as serde_json did.
fn keep_negative_zeros(text: &[u8], scan: &Scan, value: Value) -> Value {
    if !scan.minus_zero || !may_hold_negative_zero(text) {
        return value;
    }
    // `text` was just parsed (and its UTF-8 checked) by `from_slice`, so
    // this parse succeeds with the same structure.
    let mut raw = sonic_rs::Deserializer::from_slice(text).use_rawnumber();
    raw.deserialize::<Value>().unwrap_or(value)
}

/// Whether `text` has a `-0` not followed by a digit or by a fraction
/// with a non-zero digit: false for dates (`2024-01-05`) and `-0.5`, true
/// for `-0`, `-0.00`, `-0e7` (and for some strings: harmless, only slower).
fn may_hold_negative_zero(text: &[u8]) -> bool {
    let mut i = 0;
    loop {
        i = skip_until(text, i, |b| b == b'-') + 1;
        if i > text.len() {
            return false;
        }
        if text.get(i) != Some(&b'0') {
            continue;
        }
        let mut j = i + 1;
        let zero = match text.get(j) {
            Some(b'0'..=b'9') => false,
            Some(b'.') => {
                j += 1;
                while text.get(j) == Some(&b'0') {
                    j += 1;
                }
                !matches!(text.get(j), Some(b'1'..=b'9'))
            }
            _ => true,
        };
        if zero {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sonic_rs::JsonContainerTrait;

    fn parse(text: &str) -> Result<Vec<Value>, SyntaxError> {
        values(text.as_bytes()).collect()
    }

    fn serde_values(text: &str) -> Result<Vec<serde_json::Value>, String> {
        serde_json::Deserializer::from_str(text)
            .into_iter::<serde_json::Value>()
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())
    }

    fn texts(values: &[Value]) -> Vec<String> {
        values.iter().map(to_json_string).collect()
    }

    #[test]
    fn reads_like_serde_json() {
        for text in [
            r#"{"b": 1, "a": {"d": [1, 2.5, "x\n\u001f/\u2028é\"\\"], "c": null}}"#,
            r#"{"a": 1, "a": 2, "b": {"x": 1, "x": [3]}}"#,
            r#"{"n": -0, "m": -0.0, "e": -0e5, "f": -0.5, "d": "2024-01-05", "z": 0.0}"#,
            r#"{"big": 18446744073709551615, "bigger": 18446744073709551616,
                "min": -9223372036854775808, "less": -9223372036854775809,
                "f": [1e20, 1.5e-7, 1e15, 3.0, 0.1, 5e-324, 1.7976931348623157e308]}"#,
            "{\"a\":1}{\"b\":2}\n {\"c\":3}\r\n\t",
            "1 2 \"s\" [] {} null true false",
            "",
            "  \n ",
            "[-0]",
            "-0",
            "\u{7f}",
        ] {
            let expected = serde_values(text).map(|values| {
                values
                    .iter()
                    .map(serde_json::Value::to_string)
                    .collect::<Vec<_>>()
            });
            let got = parse(text).map(|v| texts(&v));
            assert_eq!(
                got.is_ok(),
                expected.is_ok(),
                "{text}: {got:?} {expected:?}"
            );
            if let (Ok(got), Ok(expected)) = (got, expected) {
                assert_eq!(got, expected, "{text}");
            }
        }
    }

    #[test]
    fn rejects_what_serde_json_rejected() {
        for text in [
            "{\"n\": 1} not json",
            "{\"a\":1,}",
            "[1,]",
            "01",
            "1.",
            "-",
            "NaN",
            "{\"a\": 1e400}",
            "{\"a\": \"\\ud800\"}",
            "{\"a\": \"\x01\"}",
            "{\"a\": 1} {\"b\":",
            "{\"a\": 1}x",
            "{\"a\": 1]",
            "{\"a\": [1}",
            "\"abc",
            "123abc",
        ] {
            assert!(serde_values(text).is_err(), "serde_json accepts {text}");
            assert!(parse(text).is_err(), "{text}");
        }
        let invalid_utf8 = b"{\"a\":1}\n{\"a\":\"\xff\"}";
        let results: Vec<_> = values(invalid_utf8).collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok() && results[1].is_err());
    }

    #[test]
    fn errors_say_where_in_the_message() {
        let error = parse("{\"a\": 1}\n  {\"b\": x}").unwrap_err();
        assert_eq!((error.line, error.column), (2, 9), "{error}");
        assert_eq!(
            parse("[1, 2").unwrap_err().to_string().lines().count(),
            1,
            "no excerpt of the input"
        );
    }

    #[test]
    fn nesting_is_limited_as_serde_json_limited_it() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse(&nested(127)).is_ok());
        let error = parse(&nested(128)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "recursion limit exceeded at line 1 column 128"
        );
        // Deep enough to overflow a thread's stack if it reached sonic-rs.
        assert!(parse(&nested(1_000_000)).is_err());
        let many = "{\"a\": [[1]]}\n".repeat(1000);
        assert_eq!(parse(&many).unwrap().len(), 1000);
        // Brackets in strings do not count.
        let text = format!("{{\"s\": \"{}\"}}", "[".repeat(1000));
        assert_eq!(parse(&text).unwrap().len(), 1);
    }

    #[test]
    fn negative_zero_stays_negative() {
        let [value] =
            &parse(r#"{"a": -0, "b": -0.000e-2, "c": 1, "d": -0.25, "e": -7}"#).unwrap()[..]
        else {
            panic!("one value")
        };
        let object = value.as_object().unwrap();
        let number = |key: &str| match kind(get(object, key).unwrap()) {
            Kind::Number(n) => n,
            _ => panic!("{key} is not a number"),
        };
        assert!(matches!(number("a"), Num::F64(f) if f == 0.0 && f.is_sign_negative()));
        assert!(matches!(number("b"), Num::F64(f) if f == 0.0 && f.is_sign_negative()));
        assert_eq!(number("c"), Num::U64(1));
        assert_eq!(number("d"), Num::F64(-0.25));
        assert_eq!(number("e"), Num::I64(-7));
        assert!(!may_hold_negative_zero(
            b"\"2024-01-05T00:00:00-08:00\" -0.5 -0.05 -01"
        ));
        for text in ["-0", "[-0]", "-0.0", "-0e1", "-0.0E+3", "{\"a\":-0}"] {
            assert!(may_hold_negative_zero(text.as_bytes()), "{text}");
        }
    }

    fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value as J;
        let leaf = prop_oneof![
            Just(J::Null),
            any::<bool>().prop_map(J::Bool),
            any::<u64>().prop_map(J::from),
            any::<i64>().prop_map(J::from),
            any::<f64>()
                .prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(J::Number)),
            prop::sample::select(vec![0.0, -0.0, 0.1, 1e20, -2.5e-8]).prop_map(J::from),
            ".*".prop_map(J::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(J::Array),
                prop::collection::btree_map("[a-c.]{0,3}|.*", inner, 0..8)
                    .prop_map(|m| J::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_document_reads_back_as_serde_json_wrote_it(
            rows in proptest::collection::vec(any_json(), 1..4),
            pretty: bool,
        ) {
            let documents: Vec<String> = rows
                .iter()
                .map(|row| if pretty {
                    serde_json::to_string_pretty(row).unwrap()
                } else {
                    serde_json::to_string(row).unwrap()
                })
                .collect();
            let message = documents.join("\n");
            let read = parse(&message).unwrap();
            let expected: Vec<String> = rows.iter().map(serde_json::Value::to_string).collect();
            proptest::prop_assert_eq!(texts(&read), expected);
        }
    }

    #[test]
    fn the_scan_counts_every_position() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in (0..100).chain([8_159, 8_160, 8_161, 8_162, 20_000]) {
            for _ in 0..20 {
                let text: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        *b"-0{[a1}\n".get(seed as usize % 10).unwrap_or(&b'-')
                    })
                    .collect();
                let scan = Scan::of(&text);
                let brackets = text.iter().filter(|&&b| b == b'{' || b == b'[').count();
                let minus_zero = text.windows(2).any(|w| w == b"-0");
                let next_object = text.windows(2).any(|w| w == b"}{" || w == b"\n{");
                assert_eq!(scan.opening_brackets, brackets, "{len}");
                assert_eq!(scan.minus_zero, minus_zero, "{len}");
                assert_eq!(scan.next_object, next_object, "{len}");
            }
        }
    }

    #[test]
    fn numbers_from_text_follow_serde_json() {
        for text in [
            "0",
            "-0",
            "7",
            "-7",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "1.0",
            "-0.0",
            "1e2",
            "123456789012345678901234567890",
        ] {
            let serde: serde_json::Number = serde_json::from_str(text).unwrap();
            let ours = Num::from_text(text);
            assert_eq!(ours.to_string(), serde.to_string(), "{text}");
            assert_eq!(ours.as_i64(), serde.as_i64(), "{text}");
            assert_eq!(ours.as_u64(), serde.as_u64(), "{text}");
            assert_eq!(ours.is_f64(), serde.is_f64(), "{text}");
        }
    }

    #[test]
    fn floats_print_as_serde_json_printed_them() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let f = f64::from_bits(seed);
            if let Some(serde) = serde_json::Number::from_f64(f) {
                assert_eq!(Num::F64(f).to_string(), serde.to_string());
            }
        }
    }
}
