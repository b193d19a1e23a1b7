//! RowBinary encoding of values whose types are known only at run time (the
//! destination table's columns). Pure: bytes in a `Vec`, no I/O.
//!
//! The layouts, per ClickHouse's RowBinary format: fixed-width numbers are
//! little-endian; strings are a LEB128 length then bytes; Nullable is a
//! 0/1 byte then the value; Array and Map are a LEB128 count then items;
//! Date is u16 days, Date32 i32 days, DateTime u32 seconds, DateTime64 i64
//! ticks; UUID is its two 64-bit halves, each little-endian, high half
//! first; IPv4 is a little-endian u32, IPv6 16 bytes in network order;
//! Variant is a discriminator (the type's index among the variant types
//! sorted by name; 255 for NULL) then the value.

use crate::types::ChType;

/// An integer of up to 256 bits of magnitude with a sign, so that both
/// Int256 and UInt256 (and Decimal256 mantissas) are representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wide {
    pub negative: bool,
    /// Little-endian magnitude.
    pub magnitude: [u8; 32],
}

impl Wide {
    pub fn from_i128(v: i128) -> Self {
        let mut magnitude = [0u8; 32];
        magnitude[..16].copy_from_slice(&v.unsigned_abs().to_le_bytes());
        Wide {
            negative: v < 0,
            magnitude,
        }
    }

    pub fn from_u128(v: u128) -> Self {
        let mut magnitude = [0u8; 32];
        magnitude[..16].copy_from_slice(&v.to_le_bytes());
        Wide {
            negative: false,
            magnitude,
        }
    }

    fn is_zero(&self) -> bool {
        self.magnitude.iter().all(|&b| b == 0)
    }

    pub fn is_negative(&self) -> bool {
        self.negative && !self.is_zero()
    }

    /// Parses a decimal integer (optional sign) exactly; `None` beyond 256
    /// bits of magnitude or for a malformed string.
    pub fn parse_decimal(text: &str) -> Option<Self> {
        let (negative, digits) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut limbs = [0u64; 4];
        for digit in digits.bytes() {
            let mut carry = u128::from(digit - b'0');
            for limb in &mut limbs {
                let product = u128::from(*limb) * 10 + carry;
                *limb = product as u64;
                carry = product >> 64;
            }
            if carry != 0 {
                return None;
            }
        }
        let mut magnitude = [0u8; 32];
        for (i, limb) in limbs.iter().enumerate() {
            magnitude[i * 8..i * 8 + 8].copy_from_slice(&limb.to_le_bytes());
        }
        Some(Wide {
            negative,
            magnitude,
        })
    }

    /// The magnitude's bit length.
    fn bits(&self) -> usize {
        for i in (0..32).rev() {
            if self.magnitude[i] != 0 {
                return i * 8 + 8 - self.magnitude[i].leading_zeros() as usize;
            }
        }
        0
    }

    /// Whether the value fits a signed (or unsigned) integer of `bits`.
    pub fn fits(&self, bits: usize, signed: bool) -> bool {
        let len = self.bits();
        match (signed, self.is_negative()) {
            (false, true) => false,
            (false, false) => len <= bits,
            (true, false) => len < bits,
            // -2^(bits-1) is the one negative value whose magnitude needs `bits`.
            (true, true) => len < bits || (len == bits && self.magnitude_is_power_of_two()),
        }
    }

    fn magnitude_is_power_of_two(&self) -> bool {
        self.magnitude.iter().map(|b| b.count_ones()).sum::<u32>() == 1
    }

    /// Two's complement over 256 bits; the low `bits / 8` bytes are the
    /// value at that width when it fits.
    pub fn twos_complement(&self) -> [u8; 32] {
        if !self.is_negative() {
            return self.magnitude;
        }
        let mut out = [0u8; 32];
        let mut carry = 1u16;
        for (o, b) in out.iter_mut().zip(self.magnitude) {
            let sum = u16::from(!b) + carry;
            *o = sum as u8;
            carry = sum >> 8;
        }
        out
    }

    fn magnitude_le(&self, other: &Wide) -> bool {
        for i in (0..32).rev() {
            if self.magnitude[i] != other.magnitude[i] {
                return self.magnitude[i] < other.magnitude[i];
            }
        }
        true
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Any integer; range-checked against the column type when encoded.
    Int(Wide),
    Float(f64),
    /// The unscaled mantissa of a Decimal (value × 10^scale).
    Decimal(Wide),
    Bytes(Vec<u8>),
    /// Days since 1970-01-01.
    Date(i64),
    /// Seconds since the epoch.
    DateTime(i64),
    /// Ticks of 10^-precision seconds since the epoch.
    DateTime64(i64),
    Uuid(u128),
    Ipv4(u32),
    Ipv6([u8; 16]),
    /// An Enum's numeric value.
    Enum(i16),
    Array(Vec<Value>),
    Tuple(Vec<Value>),
    Map(Vec<(Value, Value)>),
    /// Index into the Variant's types as declared, and the value.
    Variant(usize, Box<Value>),
}

impl Value {
    pub fn int(v: i128) -> Self {
        Value::Int(Wide::from_i128(v))
    }

    pub fn string(s: impl Into<String>) -> Self {
        Value::Bytes(s.into().into_bytes())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    #[error("{value} is out of range for {ty}")]
    OutOfRange { value: String, ty: String },
    #[error("a {value} value cannot be written as {ty}")]
    Mismatch { value: &'static str, ty: String },
    #[error("NULL in the non-Nullable column type {ty}")]
    NullNotAllowed { ty: String },
    #[error("{len} bytes do not fit FixedString({size})")]
    TooLong { len: usize, size: usize },
}

pub fn write_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub fn write_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    write_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Bool(_) => "boolean",
        Value::Int(_) => "integer",
        Value::Float(_) => "floating-point",
        Value::Decimal(_) => "decimal",
        Value::Bytes(_) => "string",
        Value::Date(_) => "date",
        Value::DateTime(_) => "date-time",
        Value::DateTime64(_) => "date-time",
        Value::Uuid(_) => "UUID",
        Value::Ipv4(_) => "IPv4",
        Value::Ipv6(_) => "IPv6",
        Value::Enum(_) => "enum",
        Value::Array(_) => "array",
        Value::Tuple(_) => "tuple",
        Value::Map(_) => "map",
        Value::Variant(..) => "variant",
    }
}

fn out_of_range(value: impl std::fmt::Debug, ty: &ChType) -> EncodeError {
    EncodeError::OutOfRange {
        value: format!("{value:?}"),
        ty: ty.to_string(),
    }
}

fn write_int(
    buf: &mut Vec<u8>,
    value: &Wide,
    bits: usize,
    signed: bool,
    ty: &ChType,
) -> Result<(), EncodeError> {
    if !value.fits(bits, signed) {
        return Err(out_of_range(WideDisplay(value), ty));
    }
    buf.extend_from_slice(&value.twos_complement()[..bits / 8]);
    Ok(())
}

struct WideDisplay<'a>(&'a Wide);

impl std::fmt::Debug for WideDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.fits(128, false) {
            let mut b = [0u8; 16];
            b.copy_from_slice(&self.0.magnitude[..16]);
            let sign = if self.0.is_negative() { "-" } else { "" };
            write!(f, "{sign}{}", u128::from_le_bytes(b))
        } else {
            f.write_str("a 256-bit integer")
        }
    }
}

/// The discriminator of each declared Variant type: its position among the
/// types sorted by name.
pub fn variant_discriminators(types: &[ChType]) -> Vec<u8> {
    let names: Vec<String> = types.iter().map(ToString::to_string).collect();
    let mut sorted = names.clone();
    sorted.sort();
    names
        .iter()
        .map(|n| sorted.iter().position(|s| s == n).unwrap_or(0) as u8)
        .collect()
}

pub fn decimal_bits(precision: u8) -> usize {
    match precision {
        0..=9 => 32,
        10..=18 => 64,
        19..=38 => 128,
        _ => 256,
    }
}

/// Appends `value` as a `ty` in RowBinary. On error `buf` may hold a partial
/// value: encode a row into a scratch buffer and keep it only on success.
pub fn encode(ty: &ChType, value: &Value, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    let mismatch = || EncodeError::Mismatch {
        value: kind(value),
        ty: ty.to_string(),
    };
    match (ty, value) {
        (ChType::Nullable(inner), Value::Null) => {
            let _ = inner;
            buf.push(1);
            Ok(())
        }
        (ChType::Nullable(inner), v) => {
            buf.push(0);
            encode(inner, v, buf)
        }
        (ChType::LowCardinality(inner), v) => encode(inner, v, buf),
        (ChType::Variant(_), Value::Null) => {
            buf.push(0xff);
            Ok(())
        }
        (_, Value::Null) => Err(EncodeError::NullNotAllowed { ty: ty.to_string() }),
        (ChType::UInt8, Value::Int(v)) => write_int(buf, v, 8, false, ty),
        (ChType::UInt16, Value::Int(v)) => write_int(buf, v, 16, false, ty),
        (ChType::UInt32, Value::Int(v)) => write_int(buf, v, 32, false, ty),
        (ChType::UInt64, Value::Int(v)) => write_int(buf, v, 64, false, ty),
        (ChType::UInt128, Value::Int(v)) => write_int(buf, v, 128, false, ty),
        (ChType::UInt256, Value::Int(v)) => write_int(buf, v, 256, false, ty),
        (ChType::Int8, Value::Int(v)) => write_int(buf, v, 8, true, ty),
        (ChType::Int16, Value::Int(v)) => write_int(buf, v, 16, true, ty),
        (ChType::Int32, Value::Int(v)) => write_int(buf, v, 32, true, ty),
        (ChType::Int64, Value::Int(v)) => write_int(buf, v, 64, true, ty),
        (ChType::Int128, Value::Int(v)) => write_int(buf, v, 128, true, ty),
        (ChType::Int256, Value::Int(v)) => write_int(buf, v, 256, true, ty),
        (ChType::Float32, Value::Float(f)) => {
            let narrowed = *f as f32;
            if f.is_finite() && !narrowed.is_finite() {
                return Err(out_of_range(f, ty));
            }
            buf.extend_from_slice(&narrowed.to_le_bytes());
            Ok(())
        }
        (ChType::Float64, Value::Float(f)) => {
            buf.extend_from_slice(&f.to_le_bytes());
            Ok(())
        }
        (ChType::Decimal { precision, .. }, Value::Decimal(m)) => {
            let limit = Wide::parse_decimal(&"9".repeat(usize::from(*precision))).unwrap_or(Wide {
                negative: false,
                magnitude: [0xff; 32],
            });
            if !m.magnitude_le(&limit) {
                return Err(out_of_range(WideDisplay(m), ty));
            }
            write_int(buf, m, decimal_bits(*precision), true, ty)
        }
        (ChType::Bool, Value::Bool(b)) => {
            buf.push(u8::from(*b));
            Ok(())
        }
        (ChType::String | ChType::Json, Value::Bytes(bytes)) => {
            write_bytes(buf, bytes);
            Ok(())
        }
        (ChType::FixedString(size), Value::Bytes(bytes)) => {
            if bytes.len() > *size {
                return Err(EncodeError::TooLong {
                    len: bytes.len(),
                    size: *size,
                });
            }
            buf.extend_from_slice(bytes);
            buf.resize(buf.len() + size - bytes.len(), 0);
            Ok(())
        }
        (ChType::Date, Value::Date(days)) => {
            let days = u16::try_from(*days).map_err(|_| out_of_range(days, ty))?;
            buf.extend_from_slice(&days.to_le_bytes());
            Ok(())
        }
        (ChType::Date32, Value::Date(days)) => {
            // Date32 covers 1900-01-01 (-25567) to 2299-12-31 (120529).
            if !(-25_567..=120_529).contains(days) {
                return Err(out_of_range(days, ty));
            }
            buf.extend_from_slice(&(*days as i32).to_le_bytes());
            Ok(())
        }
        (ChType::DateTime(_), Value::DateTime(secs)) => {
            let secs = u32::try_from(*secs).map_err(|_| out_of_range(secs, ty))?;
            buf.extend_from_slice(&secs.to_le_bytes());
            Ok(())
        }
        (ChType::DateTime64(..), Value::DateTime64(ticks)) => {
            buf.extend_from_slice(&ticks.to_le_bytes());
            Ok(())
        }
        (ChType::Uuid, Value::Uuid(v)) => {
            buf.extend_from_slice(&((v >> 64) as u64).to_le_bytes());
            buf.extend_from_slice(&(*v as u64).to_le_bytes());
            Ok(())
        }
        (ChType::Ipv4, Value::Ipv4(v)) => {
            buf.extend_from_slice(&v.to_le_bytes());
            Ok(())
        }
        (ChType::Ipv6, Value::Ipv6(v)) => {
            buf.extend_from_slice(v);
            Ok(())
        }
        (ChType::Enum8(items), Value::Enum(v)) => {
            let v8 = i8::try_from(*v)
                .ok()
                .filter(|v| items.iter().any(|(_, x)| x == v));
            buf.push(v8.ok_or_else(|| out_of_range(v, ty))? as u8);
            Ok(())
        }
        (ChType::Enum16(items), Value::Enum(v)) => {
            if !items.iter().any(|(_, x)| x == v) {
                return Err(out_of_range(v, ty));
            }
            buf.extend_from_slice(&v.to_le_bytes());
            Ok(())
        }
        (ChType::Array(inner), Value::Array(items)) => {
            write_varint(buf, items.len() as u64);
            items.iter().try_for_each(|item| encode(inner, item, buf))
        }
        (ChType::Tuple(types), Value::Tuple(items)) if types.len() == items.len() => types
            .iter()
            .zip(items)
            .try_for_each(|((_, t), item)| encode(t, item, buf)),
        (ChType::Map(k, v), Value::Map(pairs)) => {
            write_varint(buf, pairs.len() as u64);
            pairs.iter().try_for_each(|(key, value)| {
                encode(k, key, buf)?;
                encode(v, value, buf)
            })
        }
        (ChType::Variant(types), Value::Variant(index, inner)) => {
            let Some(variant_type) = types.get(*index) else {
                return Err(mismatch());
            };
            buf.push(variant_discriminators(types)[*index]);
            encode(variant_type, inner, buf)
        }
        _ => Err(mismatch()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(ty: &str, value: Value) -> Result<Vec<u8>, EncodeError> {
        let mut buf = Vec::new();
        encode(&ChType::parse(ty).unwrap(), &value, &mut buf).map(|()| buf)
    }

    #[test]
    fn fixed_layouts() {
        assert_eq!(bytes("UInt16", Value::int(0x1234)).unwrap(), [0x34, 0x12]);
        assert_eq!(bytes("Int8", Value::int(-1)).unwrap(), [0xff]);
        assert_eq!(bytes("Nullable(UInt8)", Value::Null).unwrap(), [1]);
        assert_eq!(bytes("Nullable(UInt8)", Value::int(7)).unwrap(), [0, 7]);
        assert_eq!(
            bytes("String", Value::string("hi")).unwrap(),
            [2, b'h', b'i']
        );
        assert_eq!(
            bytes("FixedString(3)", Value::string("a")).unwrap(),
            [b'a', 0, 0]
        );
        assert_eq!(
            bytes(
                "Array(UInt8)",
                Value::Array(vec![Value::int(1), Value::int(2)])
            )
            .unwrap(),
            [2, 1, 2]
        );
        assert_eq!(bytes("Date", Value::Date(1)).unwrap(), [1, 0]);
        assert_eq!(bytes("Bool", Value::Bool(true)).unwrap(), [1]);
        assert_eq!(
            bytes(
                "UUID",
                Value::Uuid(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff)
            )
            .unwrap(),
            [
                0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa,
                0x99, 0x88
            ]
        );
        assert_eq!(
            bytes("IPv4", Value::Ipv4(0x0102_0304)).unwrap(),
            [4, 3, 2, 1]
        );
        assert_eq!(
            bytes("Enum8('a' = 1, 'b' = 2)", Value::Enum(2)).unwrap(),
            [2]
        );
        assert_eq!(
            bytes("Decimal(9, 2)", Value::Decimal(Wide::from_i128(-1))).unwrap(),
            (-1i32).to_le_bytes()
        );
        // Variant discriminators follow the sorted type names: String < UInt64.
        assert_eq!(
            bytes(
                "Variant(UInt64, String)",
                Value::Variant(1, Box::new(Value::string("x")))
            )
            .unwrap(),
            [0, 1, b'x']
        );
        assert_eq!(
            bytes("Variant(UInt64, String)", Value::Null).unwrap(),
            [0xff]
        );
    }

    #[test]
    fn ranges_are_enforced() {
        assert!(bytes("UInt8", Value::int(256)).is_err());
        assert!(bytes("UInt8", Value::int(-1)).is_err());
        assert!(bytes("Int8", Value::int(-129)).is_err());
        assert!(bytes("Int8", Value::int(-128)).is_ok());
        assert!(bytes("UInt64", Value::int(i128::from(u64::MAX))).is_ok());
        assert!(bytes("Decimal(4, 2)", Value::Decimal(Wide::from_i128(10_000))).is_err());
        assert!(bytes("Decimal(4, 2)", Value::Decimal(Wide::from_i128(-9_999))).is_ok());
        assert!(bytes("FixedString(1)", Value::string("ab")).is_err());
        assert!(bytes("Enum8('a' = 1)", Value::Enum(3)).is_err());
        assert!(bytes("UInt8", Value::Null).is_err());
        assert!(bytes("Date", Value::Date(-1)).is_err());
        assert!(bytes("DateTime", Value::DateTime(1 << 33)).is_err());
        assert!(bytes("Float32", Value::Float(1e300)).is_err());
        assert!(bytes("String", Value::int(1)).is_err());
    }

    #[test]
    fn wide_integers_parse_exactly() {
        let max = "57896044618658097711785492504343953926634992332820282019728792003956564819967";
        let min = "-57896044618658097711785492504343953926634992332820282019728792003956564819968";
        let w = Wide::parse_decimal(max).unwrap();
        assert!(w.fits(256, true) && !w.is_negative());
        let w = Wide::parse_decimal(min).unwrap();
        assert!(w.is_negative() && w.fits(256, true));
        assert!(!Wide::parse_decimal(
            "-57896044618658097711785492504343953926634992332820282019728792003956564819969"
        )
        .unwrap()
        .fits(256, true));
        let umax = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert!(Wide::parse_decimal(umax).unwrap().fits(256, false));
        assert!(Wide::parse_decimal(
            "115792089237316195423570985008687907853269984665640564039457584007913129639936"
        )
        .is_none());
        assert!(Wide::parse_decimal("12a").is_none());
        assert!(Wide::parse_decimal("").is_none());
    }

    fn read_varint(bytes: &[u8]) -> (u64, usize) {
        let mut value = 0u64;
        for (i, b) in bytes.iter().enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return (value, i + 1);
            }
        }
        panic!("unterminated varint")
    }

    proptest! {
        #[test]
        fn varints_round_trip(v: u64) {
            let mut buf = Vec::new();
            write_varint(&mut buf, v);
            prop_assert_eq!(read_varint(&buf), (v, buf.len()));
            prop_assert!(buf.len() <= 10);
        }

        #[test]
        fn integers_match_native_layouts(v: i64) {
            let wide = Wide::from_i128(i128::from(v));
            prop_assert_eq!(bytes("Int64", Value::Int(wide)).unwrap(), v.to_le_bytes().to_vec());
            let as_i32 = i32::try_from(v);
            prop_assert_eq!(bytes("Int32", Value::Int(wide)).ok(), as_i32.ok().map(|x| x.to_le_bytes().to_vec()));
            let as_u16 = u16::try_from(v);
            prop_assert_eq!(bytes("UInt16", Value::Int(wide)).ok(), as_u16.ok().map(|x| x.to_le_bytes().to_vec()));
        }

        #[test]
        fn decimal_strings_parse_like_i128(v: i128) {
            let wide = Wide::parse_decimal(&v.to_string()).unwrap();
            prop_assert_eq!(wide, Wide::from_i128(v));
            prop_assert!(wide.fits(128, true));
            prop_assert_eq!(wide.fits(64, true), i64::try_from(v).is_ok());
            prop_assert_eq!(wide.fits(64, false), u64::try_from(v).is_ok());
        }

        #[test]
        fn strings_are_length_prefixed(s in ".{0,300}") {
            let encoded = bytes("String", Value::string(s.clone())).unwrap();
            let (len, header) = read_varint(&encoded);
            prop_assert_eq!(len as usize, s.len());
            prop_assert_eq!(&encoded[header..], s.as_bytes());
        }

        #[test]
        fn arrays_of_nullable_have_predictable_size(items in proptest::collection::vec(proptest::option::of(any::<u32>()), 0..50)) {
            let values: Vec<Value> = items.iter().map(|i| i.map_or(Value::Null, |v| Value::int(i128::from(v)))).collect();
            let encoded = bytes("Array(Nullable(UInt32))", Value::Array(values)).unwrap();
            let (len, header) = read_varint(&encoded);
            prop_assert_eq!(len as usize, items.len());
            let expected: usize = items.iter().map(|i| if i.is_some() { 5 } else { 1 }).sum();
            prop_assert_eq!(encoded.len() - header, expected);
        }
    }
}
