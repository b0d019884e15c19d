use super::*;
use crate::model::Sensitivity;

fn cmp(field: &str, op: CmpOp, value: Literal) -> Expr {
    Expr::Compare {
        field: field.to_string(),
        op,
        value,
    }
}

fn s(v: &str) -> Literal {
    Literal::String(v.to_string())
}

fn field(name: &str, field_type: FieldType) -> Field {
    Field {
        name: name.to_string(),
        title: name.to_string(),
        field_type,
        sensitivity: Sensitivity::Public,
        masking: None,
    }
}

fn enterprise_fields() -> Vec<Field> {
    vec![
        field("status", FieldType::String),
        field("capacity", FieldType::Integer),
        field("kwh", FieldType::Float),
        field("active", FieldType::Boolean),
        field("licence_expiry", FieldType::Date),
        field("pass_time", FieldType::Datetime),
        field("plate", FieldType::String),
    ]
}

fn parse_err(input: &str) -> String {
    parse(input).expect_err(input).message
}

#[test]
fn parses_the_documented_examples() {
    assert_eq!(
        parse("status = '责令关停' and capacity >= 10").unwrap(),
        cmp("status", CmpOp::Eq, s("责令关停")).and(cmp(
            "capacity",
            CmpOp::Ge,
            Literal::Integer(10)
        ))
    );
    assert_eq!(
        parse("pass_time >= '2026-10-01 22:00' and plate like '苏F%'").unwrap(),
        cmp("pass_time", CmpOp::Ge, s("2026-10-01 22:00")).and(Expr::Like {
            field: "plate".into(),
            pattern: "苏F%".into(),
            negated: false,
        })
    );
}

#[test]
fn parses_every_operator_and_literal() {
    let cases = [
        ("a = 1", CmpOp::Eq),
        ("a != 1", CmpOp::Ne),
        ("a <> 1", CmpOp::Ne),
        ("a < 1", CmpOp::Lt),
        ("a <= 1", CmpOp::Le),
        ("a > 1", CmpOp::Gt),
        ("a >= 1", CmpOp::Ge),
        ("a>=1", CmpOp::Ge),
    ];
    for (text, op) in cases {
        assert_eq!(
            parse(text).unwrap(),
            cmp("a", op, Literal::Integer(1)),
            "{text}"
        );
    }
    assert_eq!(
        parse("a = -12.50").unwrap(),
        cmp("a", CmpOp::Eq, Literal::Float(-12.5))
    );
    assert_eq!(
        parse("a<-3").unwrap(),
        cmp("a", CmpOp::Lt, Literal::Integer(-3))
    );
    assert_eq!(
        parse("a = TRUE").unwrap(),
        cmp("a", CmpOp::Eq, Literal::Bool(true))
    );
    assert_eq!(
        parse("a = 'it''s'").unwrap(),
        cmp("a", CmpOp::Eq, s("it's"))
    );
    assert_eq!(parse("a = ''").unwrap(), cmp("a", CmpOp::Eq, s("")));
    assert_eq!(
        parse("a = -9223372036854775808").unwrap(),
        cmp("a", CmpOp::Eq, Literal::Integer(i64::MIN))
    );
}

#[test]
fn parses_in_null_like_between() {
    assert_eq!(
        parse("status IN ('正常生产', '停产整顿')").unwrap(),
        Expr::In {
            field: "status".into(),
            values: vec![s("正常生产"), s("停产整顿")],
            negated: false,
        }
    );
    assert_eq!(
        parse("n not in (1,2.5,true)").unwrap(),
        Expr::In {
            field: "n".into(),
            values: vec![
                Literal::Integer(1),
                Literal::Float(2.5),
                Literal::Bool(true)
            ],
            negated: true,
        }
    );
    assert_eq!(
        parse("remark is null").unwrap(),
        Expr::IsNull {
            field: "remark".into(),
            negated: false
        }
    );
    assert_eq!(
        parse("remark Is Not Null").unwrap(),
        Expr::IsNull {
            field: "remark".into(),
            negated: true
        }
    );
    assert_eq!(
        parse("name not like '%化工%'").unwrap(),
        Expr::Like {
            field: "name".into(),
            pattern: "%化工%".into(),
            negated: true
        }
    );
    assert_eq!(
        parse("kwh between 10 and 20.5 and x = 1").unwrap(),
        Expr::Between {
            field: "kwh".into(),
            low: Literal::Integer(10),
            high: Literal::Float(20.5),
        }
        .and(cmp("x", CmpOp::Eq, Literal::Integer(1)))
    );
}

#[test]
fn precedence_and_associativity() {
    let a = || cmp("a", CmpOp::Eq, Literal::Integer(1));
    let b = || cmp("b", CmpOp::Eq, Literal::Integer(2));
    let c = || cmp("c", CmpOp::Eq, Literal::Integer(3));
    let or = |l: Expr, r: Expr| Expr::Or(Box::new(l), Box::new(r));
    // `and` binds tighter than `or`, both associate to the left.
    assert_eq!(
        parse("a = 1 or b = 2 and c = 3").unwrap(),
        or(a(), b().and(c()))
    );
    assert_eq!(
        parse("a = 1 and b = 2 or c = 3").unwrap(),
        or(a().and(b()), c())
    );
    assert_eq!(
        parse("a = 1 or b = 2 or c = 3").unwrap(),
        or(or(a(), b()), c())
    );
    assert_eq!(
        parse("(a = 1 or b = 2) and c = 3").unwrap(),
        or(a(), b()).and(c())
    );
    // `not` binds tighter than `and`.
    assert_eq!(
        parse("not a = 1 and b = 2").unwrap(),
        Expr::Not(Box::new(a())).and(b())
    );
    assert_eq!(
        parse("NOT (a = 1 AND b = 2)").unwrap(),
        Expr::Not(Box::new(a().and(b())))
    );
}

#[test]
fn errors_name_the_position_and_what_was_expected() {
    assert_eq!(
        parse_err("status = "),
        "expected a value after '=' at position 9, found end of input"
    );
    assert_eq!(
        parse_err("capacity >= abc"),
        "expected a value after '>=' at position 12, found 'abc'"
    );
    assert_eq!(
        parse_err("状态 = 1"),
        "unexpected character '状' at position 0"
    );
    assert_eq!(
        parse_err("status = '责令关停"),
        "unterminated string starting at position 9"
    );
    assert_eq!(
        parse_err("a = 1 b = 2"),
        "expected 'and', 'or' or end of input at position 6, found 'b'"
    );
    assert!(parse_err("a = null").contains("use 'is null'"));
    assert!(
        parse_err("(a = 1")
            .starts_with("expected ')' for the '(' at position 0, 'and' or 'or' at position 6")
    );
    assert!(parse_err("a in 1").starts_with("expected '(' after 'in' at position 5"));
    assert!(parse_err("a in ()").starts_with("expected a value after '('"));
    assert!(parse_err("a like 5").starts_with("expected a quoted pattern after 'like'"));
    assert!(parse_err("a is 5").starts_with("expected 'not' or 'null' after 'is'"));
    assert!(parse_err("a between 1 or 2").contains("'and' between the bounds"));
    assert!(parse_err("and = 1").starts_with("expected a field name, 'not' or '('"));
    assert!(parse_err("a").contains("expected an operator"));
    assert!(parse_err("a == 1").starts_with("expected a value after '=' at position 3"));
    assert!(parse_err("a = 1.").contains("malformed number"));
    assert!(parse_err("a = 12ab").contains("malformed number"));
    assert!(parse_err("a = 99999999999999999999").contains("out of range"));
    assert!(parse_err("a ! 1").contains("did you mean '!='"));
    assert!(parse_err("").contains("end of input"));
    assert!(parse_err("   ").contains("end of input"));
}

#[test]
fn filter_error_converts_to_catalog_error() {
    let err: CatalogError = parse("status =").unwrap_err().into();
    assert_eq!(err.http_status(), 400);
    assert_eq!(
        err.to_string(),
        "invalid filter: expected a value after '=' at position 8, found end of input"
    );
}

#[test]
fn limits_are_errors_not_panics() {
    let long = format!("a = '{}'", "x".repeat(MAX_LEN));
    assert!(parse_err(&long).contains("longer than") || parse_err(&long).contains("bytes long"));

    let ok_depth = format!("{}a = 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse(&ok_depth).is_ok());
    let deep = format!(
        "{}a = 1{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(parse_err(&deep).contains("deeper than 32"));
    let nots = format!("{}a = 1", "not ".repeat(MAX_DEPTH + 1));
    assert!(parse_err(&nots).contains("deeper than 32"));
    // Far more nesting than the limit, still within the length limit: no stack overflow.
    assert!(parse(&"(".repeat(MAX_LEN)).is_err());
    assert!(parse(&"not ".repeat(MAX_LEN / 4)).is_err());

    let terms = |n: usize| vec!["a = 1"; n].join(" or ");
    assert!(parse(&terms(MAX_TERMS)).is_ok());
    assert!(parse_err(&terms(MAX_TERMS + 1)).contains("more than 256 conditions"));
}

#[test]
fn display_is_canonical() {
    let cases = [
        (
            "STATUS = '责令关停' AND Capacity >= 10",
            "STATUS = '责令关停' and Capacity >= 10",
        ),
        ("a<>1", "a != 1"),
        ("a = 'it''s'", "a = 'it''s'"),
        ("a = 1.0", "a = 1.0"),
        ("a = 1.50", "a = 1.5"),
        ("a in(1,2)", "a in (1, 2)"),
        ("a not in ('x')", "a not in ('x')"),
        ("a is not null", "a is not null"),
        ("((a = 1))", "a = 1"),
        ("a = 1 or (b = 2 or c = 3)", "a = 1 or (b = 2 or c = 3)"),
        ("(a = 1 or b = 2) or c = 3", "a = 1 or b = 2 or c = 3"),
        ("a = 1 and (b = 2 and c = 3)", "a = 1 and (b = 2 and c = 3)"),
        ("(a = 1 or b = 2) and c = 3", "(a = 1 or b = 2) and c = 3"),
        ("not (a = 1 or b = 2)", "not (a = 1 or b = 2)"),
        ("not not a like 'x%'", "not not a like 'x%'"),
        ("a between -1 and 2.5", "a between -1 and 2.5"),
    ];
    for (input, canonical) in cases {
        let expr = parse(input).unwrap();
        assert_eq!(expr.to_string(), canonical, "{input}");
        assert_eq!(parse(canonical).unwrap(), expr, "{input}");
    }
}

#[test]
fn fields_lists_each_referenced_field_once() {
    let expr = parse("b = 1 and (a is null or not b in (2)) and c between 1 and 2").unwrap();
    assert_eq!(
        expr.fields().into_iter().collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
}

#[test]
fn validate_accepts_well_typed_filters() {
    let fields = enterprise_fields();
    for text in [
        "status = '责令关停' and capacity >= 10",
        "capacity > 10.5 and kwh between 0 and 100",
        "active = true or active != false",
        "licence_expiry < '2027-01-01'",
        "pass_time >= '2026-10-01 22:00' and pass_time < '2026-10-02 05:00:00'",
        "pass_time >= '2026-10-01' and pass_time <= '2026-10-01 23:59:59.999'",
        "plate like '苏F%' and status in ('正常生产', '停产整顿')",
        "capacity is null and not active is not null",
    ] {
        validate(&parse(text).unwrap(), &fields).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

#[test]
fn validate_rejects_unknown_fields_and_ill_typed_literals() {
    let fields = enterprise_fields();
    let check = |text: &str, expected: &str| {
        let err = validate(&parse(text).unwrap(), &fields).unwrap_err();
        let CatalogError::Invalid { field, message } = &err else {
            panic!("{text}: {err:?}");
        };
        assert_eq!(field, "filter");
        assert!(
            message.contains(expected),
            "{text}: '{message}' lacks '{expected}'"
        );
    };
    check("owner = 'x'", "unknown field 'owner'");
    check("status = 1 or owner is null", "field 'status' is string");
    check(
        "capacity = '10'",
        "field 'capacity' is integer and needs a number",
    );
    check("kwh in (1, 'x')", "field 'kwh' is float");
    check(
        "active = 1",
        "field 'active' is boolean and needs true or false",
    );
    check(
        "active < true",
        "field 'active' is boolean and supports only",
    );
    check("active between false and true", "field 'active' is boolean");
    check("capacity like '1%'", "'like' needs a string field");
    check("licence_expiry like '2026%'", "'like' needs a string field");
    check(
        "licence_expiry = '2026/10/01'",
        "field 'licence_expiry' is a date",
    );
    check(
        "licence_expiry = '2026-13-01'",
        "field 'licence_expiry' is a date",
    );
    check(
        "pass_time > '2026-10-01T22:00'",
        "field 'pass_time' is a datetime",
    );
    check(
        "pass_time > '2026-10-01 24:00'",
        "field 'pass_time' is a datetime",
    );
    check(
        "pass_time between '2026-10-01' and 5",
        "field 'pass_time' is datetime",
    );
}

/// xorshift64*: a tiny deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const NAMES: [&str; 6] = ["status", "capacity", "_x", "Plate2", "a", "kwh_night"];
const TEXTS: [&str; 9] = [
    "",
    "责令关停",
    "it's",
    "''",
    "苏F%",
    "a b\tc",
    "x' or 1=1 --",
    "%_\\",
    "2026-10-01 22:00",
];

fn gen_literal(rng: &mut Rng) -> Literal {
    match rng.below(6) {
        0 => Literal::String(rng.pick(&TEXTS).to_string()),
        1 => Literal::Integer(*rng.pick(&[0, 1, -1, 42, i64::MIN, i64::MAX])),
        2 => Literal::Integer(rng.next() as i64),
        3 => Literal::Float(*rng.pick(&[0.0, -0.0, 0.5, -2.25, 1e20, 1e-7, 123456.789])),
        4 => Literal::Float((rng.next() as i32) as f64 / 997.0),
        _ => Literal::Bool(rng.below(2) == 0),
    }
}

fn gen_expr(rng: &mut Rng, depth: usize) -> Expr {
    let choice = if depth == 0 {
        3 + rng.below(5)
    } else {
        rng.below(8)
    };
    let name = rng.pick(&NAMES).to_string();
    match choice {
        0 => Expr::And(
            Box::new(gen_expr(rng, depth - 1)),
            Box::new(gen_expr(rng, depth - 1)),
        ),
        1 => Expr::Or(
            Box::new(gen_expr(rng, depth - 1)),
            Box::new(gen_expr(rng, depth - 1)),
        ),
        2 => Expr::Not(Box::new(gen_expr(rng, depth - 1))),
        3 => Expr::Compare {
            field: name,
            op: *rng.pick(&[
                CmpOp::Eq,
                CmpOp::Ne,
                CmpOp::Lt,
                CmpOp::Le,
                CmpOp::Gt,
                CmpOp::Ge,
            ]),
            value: gen_literal(rng),
        },
        4 => Expr::In {
            field: name,
            values: (0..1 + rng.below(4)).map(|_| gen_literal(rng)).collect(),
            negated: rng.below(2) == 0,
        },
        5 => Expr::IsNull {
            field: name,
            negated: rng.below(2) == 0,
        },
        6 => Expr::Like {
            field: name,
            pattern: rng.pick(&TEXTS).to_string(),
            negated: rng.below(2) == 0,
        },
        _ => Expr::Between {
            field: name,
            low: gen_literal(rng),
            high: gen_literal(rng),
        },
    }
}

#[test]
fn property_display_parses_back_to_the_same_tree() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for i in 0..3000 {
        let expr = gen_expr(&mut rng, 1 + i % 6);
        let text = expr.to_string();
        let parsed = parse(&text).unwrap_or_else(|e| panic!("case {i}: {text}: {e}"));
        assert_eq!(parsed, expr, "case {i}: {text}");
        assert_eq!(parsed.to_string(), text, "case {i}: not canonical");
    }
}

#[test]
fn fuzz_garbage_never_panics() {
    const PIECES: [&str; 30] = [
        " ", "(", ")", "'", "''", ",", "=", "!", "<", ">", "-", ".", "0", "9", "a", "_", "中",
        "and", "OR", "not", "in", "is", "null", "like", "between", "true", "%", "\t", "é", "\u{0}",
    ];
    let mut rng = Rng(0xF022_5EED_0000_0001);
    let mut accepted = 0;
    let mut check = |input: &str| {
        if let Ok(expr) = parse(input) {
            accepted += 1;
            let text = expr.to_string();
            assert_eq!(parse(&text).as_ref(), Ok(&expr), "{input:?} -> {text:?}");
        }
    };
    // Token soup.
    for _ in 0..20_000 {
        let len = rng.below(24);
        let input: String = (0..len).map(|_| *rng.pick(&PIECES)).collect();
        check(&input);
    }
    // Mutations and truncations of valid filters.
    for i in 0..3000 {
        let text = gen_expr(&mut rng, 1 + i % 4).to_string();
        let mut chars: Vec<char> = text.chars().collect();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(chars.len() + 1);
            match rng.below(3) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 => chars.insert(at, rng.pick(&PIECES).chars().next().unwrap_or(' ')),
                _ => chars.truncate(at),
            }
        }
        check(&chars.into_iter().collect::<String>());
    }
    // Raw bytes decoded lossily.
    for _ in 0..5000 {
        let bytes: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
        check(&String::from_utf8_lossy(&bytes));
    }
    assert!(
        accepted > 100,
        "the fuzzer should also produce valid filters"
    );
}
