use proptest::prelude::*;

use super::*;

const COLUMNS: &[&str] = &["id", "created_at", "user.id", "name", "weird name"];

fn render(text: &str) -> Result<String, ExprError> {
    parse(text, COLUMNS).map(|e| e.to_string())
}

#[test]
fn keys_users_write_are_rendered_from_the_tree() {
    for (text, sql) in [
        ("toYYYYMM(created_at)", "toYYYYMM(`created_at`)"),
        ("toyyyymm(created_at)", "toYYYYMM(`created_at`)"),
        ("id % 4", "(`id` % 4)"),
        ("intDiv(id, 1000)", "intDiv(`id`, 1000)"),
        ("(toDate(created_at), id)", "(toDate(`created_at`), `id`)"),
        ("tuple()", "tuple()"),
        (
            "cityHash64(name, id) % 16",
            "(cityHash64(`name`, `id`) % 16)",
        ),
        (
            "toStartOfHour(created_at, 'Europe/Berlin')",
            "toStartOfHour(`created_at`, 'Europe/Berlin')",
        ),
        ("`user.id`", "`user.id`"),
        ("user.id", "`user.id`"),
        ("`weird name` = 'it''s'", "(`weird name` = 'it\\'s')"),
        ("-id + 2 * 3", "((-`id`) + (2 * 3))"),
        (
            "substring(lower(name), 1, 2)",
            "substring(lower(`name`), 1, 2)",
        ),
        ("  id\n", "`id`"),
        ("((id))", "`id`"),
    ] {
        assert_eq!(render(text).as_deref(), Ok(sql), "{text}");
    }
}

/// What a key expression has been used to smuggle: other clauses,
/// statements, comments, quoting tricks, look-alike characters, functions
/// that read or write elsewhere. Every one must be refused. The API's tests
/// send the same corpus.
fn hostile() -> Vec<String> {
    serde_json::from_str(include_str!("hostile.json")).expect("the corpus")
}

#[test]
fn the_hostile_corpus_is_refused() {
    let corpus = hostile();
    assert!(corpus.len() >= 40);
    for text in &corpus {
        let outcome = render(text);
        assert!(outcome.is_err(), "accepted {text:?} as {outcome:?}");
    }
}

#[test]
fn errors_point_at_the_problem() {
    let error = parse("toYYYYMM(created_at) # x", COLUMNS).unwrap_err();
    assert_eq!(error.position, 22);
    assert_eq!(error.message, "comments are not allowed");
    let error = parse("id % 4 SAMPLE BY id", COLUMNS).unwrap_err();
    assert_eq!(error.position, 8);
    assert!(error.message.contains("`SAMPLE`"), "{error}");
    let error = parse("url('x')", COLUMNS).unwrap_err();
    assert!(
        error
            .message
            .starts_with("`url` is not a function allowed in keys"),
        "{error}"
    );
    let error = parse("іd", COLUMNS).unwrap_err();
    assert!(error.message.contains("U+0456"), "{error}");
    let error = parse("toYYYYMM(created_at", COLUMNS).unwrap_err();
    assert_eq!(error.position, 9);
    assert_eq!(
        error.message,
        "the parenthesis at character 9 is not closed"
    );
}

#[test]
fn depth_and_length_are_bounded() {
    let deep = format!("{}id{}", "(".repeat(40), ")".repeat(40));
    assert!(parse(&deep, COLUMNS)
        .unwrap_err()
        .message
        .contains("deeper"));
    let negations = format!("{}id", "- ".repeat(40));
    assert!(parse(&negations, COLUMNS).is_err());
    let long = format!("id{}", " + id".repeat(300));
    assert!(parse(&long, COLUMNS)
        .unwrap_err()
        .message
        .contains("longer"));
}

/// The SQL with its string literals (as `quote_literal` escapes them) cut out.
fn outside_literals(sql: &str) -> String {
    let mut out = String::new();
    let mut chars = sql.chars();
    while let Some(c) = chars.next() {
        if c != '\'' {
            out.push(c);
            continue;
        }
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '\'' => break,
                _ => {}
            }
        }
        out.push(' ');
    }
    out
}

fn expressions() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        prop::sample::select(COLUMNS).prop_map(|c| Expr::Column(c.to_owned())),
        any::<u64>().prop_map(Expr::Integer),
        "[ -~é'\\\\`\"#;-]{0,12}".prop_map(Expr::String),
    ];
    leaf.prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Negate(Box::new(e))),
            (
                prop::sample::select(vec![
                    BinaryOp::Add,
                    BinaryOp::Subtract,
                    BinaryOp::Multiply,
                    BinaryOp::Divide,
                    BinaryOp::Modulo,
                    BinaryOp::Equals,
                    BinaryOp::NotEquals,
                    BinaryOp::Less,
                    BinaryOp::LessOrEquals,
                    BinaryOp::Greater,
                    BinaryOp::GreaterOrEquals,
                ]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(op, left, right)| Expr::Binary {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                }),
            (
                prop::sample::select(FUNCTIONS),
                prop::collection::vec(inner.clone(), 0..4)
            )
                .prop_filter("arity", |((_, fewest, most), args)| {
                    (*fewest..=*most).contains(&args.len())
                })
                .prop_map(|((function, _, _), arguments)| Expr::Call {
                    function,
                    arguments,
                }),
            prop::collection::vec(inner, 2..4).prop_map(Expr::Tuple),
        ]
    })
}

proptest! {
    /// The rendered SQL parses back to the same tree: rendering loses
    /// nothing and adds nothing a second reading would see differently.
    #[test]
    fn rendering_round_trips(expr in expressions()) {
        let sql = expr.to_string();
        prop_assume!(sql.len() <= MAX_EXPRESSION_BYTES);
        prop_assert_eq!(parse(&sql, COLUMNS), Ok(expr));
    }

    /// Whatever the input, what is accepted renders without anything that
    /// could end the expression or start a comment outside a literal.
    #[test]
    fn accepted_text_renders_safely(text in "[ -~]{0,40}") {
        if let Ok(expr) = parse(&text, COLUMNS) {
            let sql = expr.to_string();
            let outside_literals = outside_literals(&sql);
            prop_assert!(!outside_literals.contains(';'), "{}", sql);
            prop_assert!(!outside_literals.contains("--"), "{}", sql);
            prop_assert!(!outside_literals.contains('#'), "{}", sql);
            prop_assert!(!outside_literals.contains("/*"), "{}", sql);
            prop_assert!(!outside_literals.contains("//"), "{}", sql);
        }
    }
}
