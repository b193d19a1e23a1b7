//! Tests of the JSON decoder: whole messages to rows, value conversion per
//! type, and reading with serde_json's semantics.

mod decoding {
    use super::super::*;

    /// The plan, decoded as JSON: most tests build a plan and decode one
    /// message with it.
    trait DecodeJson {
        fn encode_message(
            &self,
            payload: &[u8],
            meta: &RecordMeta<'_>,
            out: &mut Vec<u8>,
        ) -> Result<u32, RecordError>;
    }

    impl DecodeJson for RowPlan {
        fn encode_message(
            &self,
            payload: &[u8],
            meta: &RecordMeta<'_>,
            out: &mut Vec<u8>,
        ) -> Result<u32, RecordError> {
            JsonDecoder::new(self.clone()).decode(payload, meta, out)
        }
    }
    use sluice_clickhouse_types::Value;

    fn plan(columns: &[(&str, &str)], mappings: &[(&str, &str)]) -> RowPlan {
        RowPlan::new(
            columns
                .iter()
                .map(|(n, t)| (n.to_string(), ChType::parse(t).unwrap()))
                .collect(),
            &mappings
                .iter()
                .map(|(s, d)| (s.to_string(), d.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    fn expected(columns: &[(&str, Value)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (ty, value) in columns {
            encode(&ChType::parse(ty).unwrap(), value, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn fields_paths_mappings_and_missing_values() {
        let plan = plan(
            &[
                ("id", "UInt64"),
                ("customer", "String"),
                ("note", "Nullable(String)"),
                ("total", "Float64"),
            ],
            &[("order.customer.name", "customer")],
        );
        let mut out = Vec::new();
        let rows = plan
            .encode_message(
                br#"{"id": 7, "order": {"customer": {"name": "ann"}}, "total": 1.5}"#,
                &RecordMeta::default(),
                &mut out,
            )
            .unwrap();
        assert_eq!(rows, 1);
        assert_eq!(
            out,
            expected(&[
                ("UInt64", Value::int(7)),
                ("String", Value::string("ann")),
                ("Nullable(String)", Value::Null),
                ("Float64", Value::Float(1.5))
            ])
        );
    }

    #[test]
    fn several_objects_per_message_and_dotted_keys() {
        let plan = plan(&[("a.b", "UInt8")], &[]);
        let mut out = Vec::new();
        let rows = plan
            .encode_message(
                b"{\"a.b\": 1}\n{\"a\": {\"b\": 2}}\n",
                &RecordMeta::default(),
                &mut out,
            )
            .unwrap();
        assert_eq!(rows, 2);
        assert_eq!(out, [1, 2]);
    }

    #[test]
    fn errors_leave_nothing_behind() {
        let plan = plan(&[("n", "UInt8")], &[]);
        let mut out = vec![9];
        for (payload, code) in [
            (
                &b"{\"n\": 1} {\"n\": 300}"[..],
                ErrorCode::TypeConversionError,
            ),
            (b"{\"n\": 1} not json", ErrorCode::DataParsingError),
            (b"[1, 2]", ErrorCode::DataParsingError),
            (b"", ErrorCode::DataParsingError),
            (b"\xff\xfe", ErrorCode::DataParsingError),
        ] {
            let error = plan
                .encode_message(payload, &RecordMeta::default(), &mut out)
                .unwrap_err();
            assert_eq!(error.code, code, "{payload:?}");
            assert_eq!(out, [9], "nothing appended for {payload:?}");
        }
        let error = plan
            .encode_message(b"{\"n\": 300}", &RecordMeta::default(), &mut out)
            .unwrap_err();
        assert!(error.message.contains("column `n`"), "{}", error.message);
    }

    #[test]
    fn objects_read_as_serde_json_read_them() {
        // A repeated key takes its last value, maps and JSON text come
        // out sorted by key, and a negative zero stays negative.
        let plan = plan(
            &[
                ("a", "UInt8"),
                ("m", "Map(String, UInt8)"),
                ("j", "JSON"),
                ("z", "Float64"),
                ("s", "String"),
            ],
            &[],
        );
        let mut out = Vec::new();
        plan.encode_message(
            br#"{"a": 1, "m": {"y": 1, "x": 2, "y": 3}, "j": {"b": [-0], "a": 1}, "z": -0.0, "s": [-0, 1.50, 1E2], "a": 2}"#,
            &RecordMeta::default(),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            expected(&[
                ("UInt8", Value::int(2)),
                (
                    "Map(String, UInt8)",
                    Value::Map(vec![
                        (Value::string("x"), Value::int(2)),
                        (Value::string("y"), Value::int(3)),
                    ])
                ),
                ("JSON", Value::string(r#"{"a":1,"b":[-0.0]}"#)),
                ("Float64", Value::Float(-0.0)),
                ("String", Value::string("[-0.0,1.5,100.0]")),
            ])
        );
    }

    #[test]
    fn row_binary_with_defaults_marks_missing_fields() {
        let plan = plan(&[("a", "UInt8"), ("b", "UInt8"), ("c", "UInt8")], &[])
            .with_defaults(&["b".to_owned()]);
        assert_eq!(plan.format_name(), "RowBinaryWithDefaults");
        let mut out = Vec::new();
        plan.encode_message(br#"{"a": 1}"#, &RecordMeta::default(), &mut out)
            .unwrap();
        // a given; b missing with a DEFAULT: marker 1; c missing without: zero.
        assert_eq!(out, [0, 1, 1, 0, 0]);
    }

    #[test]
    fn virtual_columns() {
        let plan = plan(
            &[
                ("k", "Nullable(String)"),
                ("ts", "DateTime64(3)"),
                ("p", "Int32"),
                ("o", "Int64"),
                ("t", "String"),
                ("hk", "Array(String)"),
                ("hv", "Array(String)"),
                ("raw", "String"),
            ],
            &[
                ("_key", "k"),
                ("_timestamp", "ts"),
                ("_partition", "p"),
                ("_offset", "o"),
                ("_topic", "t"),
                ("_header_keys", "hk"),
                ("_header_values", "hv"),
                ("_raw_message", "raw"),
            ],
        );
        let payload = br#"{"x":1}"#;
        let meta = RecordMeta {
            key: Some(b"key-1"),
            timestamp_ms: Some(1_700_000_000_123),
            partition: 3,
            offset: 42,
            topic: "orders",
            headers: vec![("h", Some(b"v")), ("empty", None)],
            sequence_number: None,
        };
        let mut out = Vec::new();
        plan.encode_message(payload, &meta, &mut out).unwrap();
        let strings =
            |items: &[&str]| Value::Array(items.iter().map(|s| Value::string(*s)).collect());
        assert_eq!(
            out,
            expected(&[
                ("Nullable(String)", Value::string("key-1")),
                ("DateTime64(3)", Value::DateTime64(1_700_000_000_123)),
                ("Int32", Value::int(3)),
                ("Int64", Value::int(42)),
                ("String", Value::string("orders")),
                ("Array(String)", strings(&["h", "empty"])),
                ("Array(String)", strings(&["v", ""])),
                ("String", Value::string(r#"{"x":1}"#)),
            ])
        );
    }

    #[test]
    fn kinesis_virtual_columns() {
        let plan = plan(
            &[("k", "String"), ("s", "String"), ("n", "String")],
            &[("_key", "k"), ("_stream", "s"), ("_sequence_number", "n")],
        );
        let sequence = "49590338271490256608559692538361571095921575989136588898";
        let meta = RecordMeta {
            key: Some(b"user-7"),
            topic: "clicks",
            sequence_number: Some(sequence),
            ..RecordMeta::default()
        };
        let mut out = Vec::new();
        plan.encode_message(br#"{}"#, &meta, &mut out).unwrap();
        assert_eq!(
            out,
            expected(&[
                ("String", Value::string("user-7")),
                ("String", Value::string("clicks")),
                ("String", Value::string(sequence)),
            ])
        );
    }
}

mod conversion {
    use super::super::*;
    use sonic_rs::json;

    fn ty(s: &str) -> ChType {
        ChType::parse(s).unwrap()
    }

    #[test]
    fn epochs_beyond_i128_are_refused_not_wrapped() {
        assert_eq!(
            timestamp_nanos(&json!("-170141183460469231731687303715884105728")),
            None
        );
        assert_eq!(
            timestamp_nanos(&json!(1_700_000_000)),
            Some(1_700_000_000_000_000_000)
        );
    }

    #[test]
    fn integers() {
        assert_eq!(convert(&ty("UInt8"), &json!(200)).unwrap(), Value::int(200));
        assert_eq!(
            convert(&ty("Int64"), &json!("-42")).unwrap(),
            Value::int(-42)
        );
        assert_eq!(convert(&ty("Int64"), &json!(3.0)).unwrap(), Value::int(3));
        assert!(convert(&ty("Int64"), &json!(3.5)).is_err());
        assert!(convert(&ty("Int64"), &json!("x")).is_err());
        assert_eq!(
            convert(&ty("UInt64"), &json!(u64::MAX)).unwrap(),
            Value::Int(Wide::from_u128(u128::from(u64::MAX)))
        );
    }

    #[test]
    fn decimals_are_exact() {
        let d = |text: &str, scale| {
            scaled_decimal(text, scale).map(|w| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&w.twos_complement()[..16]);
                i128::from_le_bytes(b)
            })
        };
        assert_eq!(d("12.34", 2), Some(1234));
        assert_eq!(d("-12.345", 2), Some(-1234));
        assert_eq!(d("1e3", 2), Some(100_000));
        assert_eq!(d("1.5e-1", 3), Some(150));
        assert_eq!(d(".5", 1), Some(5));
        assert_eq!(d("7", 0), Some(7));
        assert_eq!(d("abc", 2), None);
        assert_eq!(d("", 2), None);
        assert_eq!(
            convert(&ty("Decimal(18, 2)"), &json!(0.1)).unwrap(),
            Value::Decimal(Wide::from_i128(10))
        );
    }

    #[test]
    fn timestamps() {
        let ns = |v: Json| timestamp_nanos(&v).unwrap();
        let expected = 1_700_000_000_123_000_000i128;
        assert_eq!(ns(json!("2023-11-14T22:13:20.123Z")), expected);
        assert_eq!(ns(json!("2023-11-14 22:13:20.123")), expected);
        assert_eq!(ns(json!("2023-11-15T00:13:20.123+02:00")), expected);
        assert_eq!(ns(json!(1_700_000_000_123i64)), expected);
        assert_eq!(ns(json!(1_700_000_000_123_000i64)), expected);
        assert_eq!(ns(json!(1_700_000_000_123_000_000i64)), expected);
        assert_eq!(ns(json!(1_700_000_000)), 1_700_000_000_000_000_000);
        assert_eq!(ns(json!("1700000000")), 1_700_000_000_000_000_000);
        assert_eq!(
            convert(&ty("DateTime64(3)"), &json!("2023-11-14T22:13:20.123Z")).unwrap(),
            Value::DateTime64(1_700_000_000_123)
        );
        assert_eq!(
            convert(&ty("DateTime"), &json!("2023-11-14T22:13:20.999Z")).unwrap(),
            Value::DateTime(1_700_000_000)
        );
        assert_eq!(
            convert(&ty("Date"), &json!("1970-01-11")).unwrap(),
            Value::Date(10)
        );
        assert_eq!(
            convert(&ty("Date32"), &json!("1969-12-31")).unwrap(),
            Value::Date(-1)
        );
        assert!(convert(&ty("DateTime"), &json!("yesterday")).is_err());
    }

    #[test]
    fn long_values_in_errors_are_cut_between_characters() {
        let text = format!("a{}", "é".repeat(60));
        let error = convert(&ty("Int64"), &json!(text.as_str())).unwrap_err();
        assert!(error.found.ends_with("..."), "{}", error.found);
        assert!(error.found.len() <= 80);
    }

    #[test]
    fn composites_and_special_types() {
        assert_eq!(
            convert(&ty("Array(Nullable(String))"), &json!(["a", null])).unwrap(),
            Value::Array(vec![Value::string("a"), Value::Null])
        );
        assert_eq!(
            convert(&ty("Tuple(a UInt8, b String)"), &json!({"b": "x"})).unwrap(),
            Value::Tuple(vec![Value::int(0), Value::string("x")])
        );
        assert_eq!(
            convert(&ty("Map(String, UInt8)"), &json!({"k": 1})).unwrap(),
            Value::Map(vec![(Value::string("k"), Value::int(1))])
        );
        assert_eq!(
            convert(&ty("Map(UInt16, String)"), &json!({"7": "x"})).unwrap(),
            Value::Map(vec![(Value::int(7), Value::string("x"))])
        );
        assert_eq!(
            convert(&ty("String"), &json!({"a": 1})).unwrap(),
            Value::string(r#"{"a":1}"#)
        );
        assert_eq!(
            convert(&ty("JSON"), &json!({"a": 1})).unwrap(),
            Value::string(r#"{"a":1}"#)
        );
        assert_eq!(
            convert(&ty("Enum8('a' = 1, 'b' = 2)"), &json!("b")).unwrap(),
            Value::Enum(2)
        );
        assert!(convert(&ty("Enum8('a' = 1, 'b' = 2)"), &json!("c")).is_err());
        assert_eq!(
            convert(&ty("IPv4"), &json!("1.2.3.4")).unwrap(),
            Value::Ipv4(0x0102_0304)
        );
        assert_eq!(
            convert(&ty("Bool"), &json!("true")).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            convert(&ty("Variant(UInt64, String)"), &json!("12")).unwrap(),
            Value::Variant(1, Box::new(Value::string("12")))
        );
        assert_eq!(
            convert(&ty("Variant(UInt64, String)"), &json!(12)).unwrap(),
            Value::Variant(0, Box::new(Value::int(12)))
        );
        assert_eq!(
            convert(&ty("Nullable(UInt8)"), &json!(null)).unwrap(),
            Value::Null
        );
        assert_eq!(convert(&ty("UInt8"), &json!(null)).unwrap(), Value::int(0));
    }
}

mod reading {
    use super::super::*;
    use sonic_rs::JsonContainerTrait;
    use sonic_rs::Value;

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
