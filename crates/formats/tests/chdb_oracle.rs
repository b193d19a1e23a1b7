//! Encodings of the types the 18.16 test server lacks, checked against the
//! ClickHouse engine itself (chdb, installed by `make test`): JSON input is
//! converted and encoded by Sluice, decoded by ClickHouse 26.9, and its text
//! compared with what the value must read as.

use serde_json::json;
use sluice_clickhouse_types::{encode, ChType};
use sluice_formats::{convert, Decoder, JsonDecoder, RecordMeta, RowPlan};

fn case(ty: &str, input: serde_json::Value, expected: &str) -> serde_json::Value {
    let ty_parsed = ChType::parse(ty).unwrap();
    // The decoder reads sonic-rs values: the input goes over as JSON text.
    let parsed: sonic_rs::Value =
        sonic_rs::from_slice(&serde_json::to_vec(&input).unwrap()).unwrap();
    let value = convert(&ty_parsed, &parsed).unwrap_or_else(|e| panic!("{ty} {input}: {e}"));
    let mut bytes = Vec::new();
    encode(&ty_parsed, &value, &mut bytes).unwrap_or_else(|e| panic!("{ty} {input}: {e}"));
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    json!({"type": ty, "input": input, "hex": hex, "expected": expected})
}

#[test]
fn modern_types_decode_in_clickhouse_as_sent() {
    let cases = vec![
        case(
            "Int128",
            json!("-170141183460469231731687303715884105728"),
            "-170141183460469231731687303715884105728",
        ),
        case("Int128", json!(42), "42"),
        case(
            "UInt128",
            json!("340282366920938463463374607431768211455"),
            "340282366920938463463374607431768211455",
        ),
        case(
            "Int256",
            json!("-57896044618658097711785492504343953926634992332820282019728792003956564819968"),
            "-57896044618658097711785492504343953926634992332820282019728792003956564819968",
        ),
        case(
            "UInt256",
            json!("115792089237316195423570985008687907853269984665640564039457584007913129639935"),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935",
        ),
        case("Int256", json!(-1), "-1"),
        case("Bool", json!(true), "true"),
        case("Bool", json!("false"), "false"),
        case("Date32", json!("1969-12-31"), "1969-12-31"),
        case("Date32", json!("2299-12-31"), "2299-12-31"),
        case("Date32", json!("1900-01-01"), "1900-01-01"),
        case(
            "DateTime64(3)",
            json!("2023-11-14T22:13:20.123Z"),
            "2023-11-14 22:13:20.123",
        ),
        case(
            "DateTime64(3, 'UTC')",
            json!(1_700_000_000_123i64),
            "2023-11-14 22:13:20.123",
        ),
        case(
            "DateTime64(6)",
            json!("2023-11-15T00:13:20.123456+02:00"),
            "2023-11-14 22:13:20.123456",
        ),
        case(
            "DateTime64(9)",
            json!(1_700_000_000_123_456_789i64),
            "2023-11-14 22:13:20.123456789",
        ),
        case(
            "DateTime64(0)",
            json!("1969-12-31 23:59:59"),
            "1969-12-31 23:59:59",
        ),
        case("IPv4", json!("192.168.1.20"), "192.168.1.20"),
        case("IPv6", json!("2001:db8::1"), "2001:db8::1"),
        case("IPv6", json!("10.0.0.1"), "::ffff:10.0.0.1"),
        case(
            "Map(String, UInt64)",
            json!({"a": 1, "b": 2}),
            "{'a':1,'b':2}",
        ),
        case(
            "Map(UInt16, Array(String))",
            json!({"7": ["x", "y"]}),
            "{7:['x','y']}",
        ),
        case(
            "Map(String, Nullable(Float64))",
            json!({"k": null}),
            "{'k':NULL}",
        ),
        case("Variant(String, UInt64)", json!("hello"), "hello"),
        case("Variant(String, UInt64)", json!(12), "12"),
        case(
            "Variant(String, UInt64, Array(UInt8))",
            json!([1, 2]),
            "[1,2]",
        ),
        case(
            "Decimal(76, 10)",
            json!("-12345678901234567890.0123456789"),
            "-12345678901234567890.0123456789",
        ),
        case("Decimal256(2)", json!(0.1), "0.1"),
        case("Decimal(38, 4)", json!("123.45678"), "123.4567"),
        case(
            "Tuple(a Int128, b Map(String, Bool))",
            json!({"a": "-5", "b": {"x": true}}),
            "(-5,{'x':true})",
        ),
        case(
            "Array(Nullable(IPv6))",
            json!(["::1", null]),
            "['::1',NULL]",
        ),
        case("LowCardinality(Nullable(String))", json!("lc"), "lc"),
        case(
            "Enum16('big' = 1000, 'small' = -1000)",
            json!("small"),
            "small",
        ),
        case(
            "UUID",
            json!("0190a4a1-7d8e-7000-8000-00000000abcd"),
            "0190a4a1-7d8e-7000-8000-00000000abcd",
        ),
        {
            // Zero padding is invisible in text; compare the bytes.
            let mut padded = case("FixedString(4)", json!("ab"), "61620000");
            padded["expr"] = json!("hex(c)");
            padded
        },
        case(
            "JSON",
            json!({"a": 1, "b": {"c": "x"}}),
            "{\"a\":1,\"b\":{\"c\":\"x\"}}",
        ),
    ];
    // RowBinaryWithDefaults: a field missing from the message takes the
    // column's DEFAULT expression, evaluated by ClickHouse.
    let mut cases = cases;
    let plan = RowPlan::new(
        vec![
            ("a".to_owned(), ChType::UInt8),
            ("b".to_owned(), ChType::parse("UInt16").unwrap()),
            ("c".to_owned(), ChType::String),
        ],
        &[],
    )
    .with_defaults(&["b".to_owned(), "c".to_owned()]);
    let mut rows = Vec::new();
    JsonDecoder::new(plan)
        .decode(
            br#"{"a": 7, "c": "given"} {"a": 8}"#,
            &RecordMeta::default(),
            &mut rows,
        )
        .unwrap();
    cases.push(json!({
        "type": "RowBinaryWithDefaults",
        "input": "{a:7, c:given} {a:8}",
        "hex": rows.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "format": "RowBinaryWithDefaults",
        "structure": "a UInt8, b UInt16 DEFAULT a * 100, c String DEFAULT 'fallback'",
        "expr": "arrayStringConcat(groupArray(concat(toString(a), '/', toString(b), '/', c)), ' ')",
        "expected": "7/700/given 8/800/fallback",
    }));
    let dir = std::env::temp_dir().join(format!("chdb-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cases.json");
    std::fs::write(&file, serde_json::to_vec(&cases).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/chdb_oracle.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(&file)
        .output()
        .expect("running python3 tests/chdb_oracle.py (make test installs chdb)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{text}");
    assert!(
        output.status.success(),
        "the chdb oracle disagrees:\n{text}"
    );
}
