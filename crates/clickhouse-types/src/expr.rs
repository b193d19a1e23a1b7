//! Key expressions (`PARTITION BY`, `PRIMARY KEY`) parsed into a tree and
//! rendered from it. A user's text never reaches ClickHouse: what is sent
//! is printed from the tree, with columns backquoted, string literals
//! escaped, numbers re-printed, function names taken from the allow-list,
//! and every operation parenthesised.
//!
//! The grammar is the part of ClickHouse's expressions that table keys
//! need: declared columns (bare, or backquoted for names that are not plain
//! identifiers), whole numbers, single-quoted strings, `+ - * / %`,
//! comparisons, parenthesised tuples, and calls to the functions in
//! `FUNCTIONS`. Anything else — another clause, a comment of any kind, a
//! double-quoted name, a non-ASCII character, a function off the list — is
//! refused with the position where it starts.

use std::fmt;

use crate::ddl::{quote_ident, quote_literal};

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 1024;
/// Deepest nesting of calls, operations and parentheses.
pub const MAX_DEPTH: usize = 32;

/// Functions allowed in keys: (name as ClickHouse spells it, fewest
/// arguments, most arguments). Names are matched without regard to case
/// and rendered as spelled here.
pub const FUNCTIONS: &[(&str, usize, usize)] = &[
    // Dates and times (the optional last argument is a time zone).
    ("toYYYYMM", 1, 2),
    ("toYYYYMMDD", 1, 2),
    ("toYYYYMMDDhhmmss", 1, 2),
    ("toDate", 1, 2),
    ("toDateTime", 1, 2),
    ("toYear", 1, 2),
    ("toQuarter", 1, 2),
    ("toMonth", 1, 2),
    ("toDayOfMonth", 1, 2),
    ("toDayOfWeek", 1, 2),
    ("toHour", 1, 2),
    ("toMonday", 1, 2),
    ("toStartOfYear", 1, 2),
    ("toStartOfQuarter", 1, 2),
    ("toStartOfMonth", 1, 2),
    ("toStartOfWeek", 1, 3),
    ("toStartOfDay", 1, 2),
    ("toStartOfHour", 1, 2),
    ("toStartOfFifteenMinutes", 1, 2),
    ("toStartOfMinute", 1, 2),
    ("toRelativeDayNum", 1, 2),
    ("toRelativeHourNum", 1, 2),
    // Arithmetic.
    ("intDiv", 2, 2),
    ("intDivOrZero", 2, 2),
    ("modulo", 2, 2),
    ("abs", 1, 1),
    ("bitAnd", 2, 2),
    ("bitShiftRight", 2, 2),
    // Hashes.
    ("cityHash64", 1, 16),
    ("sipHash64", 1, 16),
    ("xxHash32", 1, 1),
    ("xxHash64", 1, 1),
    ("murmurHash2_64", 1, 16),
    ("murmurHash3_32", 1, 16),
    ("murmurHash3_64", 1, 16),
    ("farmHash64", 1, 16),
    // Strings.
    ("lower", 1, 1),
    ("upper", 1, 1),
    ("lowerUTF8", 1, 1),
    ("upperUTF8", 1, 1),
    ("substring", 2, 3),
    ("length", 1, 1),
    ("toString", 1, 1),
    // Conversions and nulls.
    ("toUInt8", 1, 1),
    ("toUInt16", 1, 1),
    ("toUInt32", 1, 1),
    ("toUInt64", 1, 1),
    ("toInt8", 1, 1),
    ("toInt16", 1, 1),
    ("toInt32", 1, 1),
    ("toInt64", 1, 1),
    ("assumeNotNull", 1, 1),
    ("ifNull", 2, 2),
    ("coalesce", 1, 16),
    // Grouping: `tuple()` is the empty key.
    ("tuple", 0, 16),
];

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A declared column.
    Column(String),
    Integer(u64),
    String(String),
    Negate(Box<Expr>),
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// A call to an allowed function (its name as `FUNCTIONS` spells it).
    Call {
        function: &'static str,
        arguments: Vec<Expr>,
    },
    /// `(a, b, …)`: two or more items.
    Tuple(Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Equals,
    NotEquals,
    Less,
    LessOrEquals,
    Greater,
    GreaterOrEquals,
}

impl BinaryOp {
    fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Subtract => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Modulo => "%",
            BinaryOp::Equals => "=",
            BinaryOp::NotEquals => "!=",
            BinaryOp::Less => "<",
            BinaryOp::LessOrEquals => "<=",
            BinaryOp::Greater => ">",
            BinaryOp::GreaterOrEquals => ">=",
        }
    }
}

/// Renders the SQL sent to ClickHouse.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column(name) => f.write_str(&quote_ident(name)),
            Expr::Integer(n) => write!(f, "{n}"),
            Expr::String(s) => f.write_str(&quote_literal(s)),
            Expr::Negate(inner) => write!(f, "(-{inner})"),
            Expr::Binary { op, left, right } => write!(f, "({left} {} {right})", op.symbol()),
            Expr::Call {
                function,
                arguments,
            } => {
                write!(f, "{function}(")?;
                write_list(f, arguments)?;
                f.write_str(")")
            }
            Expr::Tuple(items) => {
                f.write_str("(")?;
                write_list(f, items)?;
                f.write_str(")")
            }
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {position}: {message}")]
pub struct ExprError {
    /// Where the problem starts, counted in characters from 1.
    pub position: usize,
    pub message: String,
}

/// Parses a key expression over the table's `columns`.
pub fn parse(text: &str, columns: &[&str]) -> Result<Expr, ExprError> {
    if text.len() > MAX_EXPRESSION_BYTES {
        return Err(ExprError {
            position: 1,
            message: format!("is longer than {MAX_EXPRESSION_BYTES} bytes"),
        });
    }
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        next: 0,
        columns,
        end: text.chars().count() + 1,
    };
    if parser.tokens.is_empty() {
        return Err(ExprError {
            position: 1,
            message: "is empty".into(),
        });
    }
    let expr = parser.expression(0)?;
    match parser.tokens.get(parser.next) {
        None => Ok(expr),
        Some(token) => Err(token.error(format!(
            "unexpected {} after a complete expression (one expression, no clauses)",
            token.kind.describe()
        ))),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    /// A bare identifier (letters, digits, `_`, and `.` for nested columns).
    Word(String),
    /// A backquoted name: only ever a column.
    Quoted(String),
    Integer(u64),
    String(String),
    Symbol(&'static str),
}

impl TokenKind {
    fn describe(&self) -> String {
        match self {
            TokenKind::Word(w) => format!("`{w}`"),
            TokenKind::Quoted(w) => format!("column `{w}`"),
            TokenKind::Integer(n) => format!("number {n}"),
            TokenKind::String(_) => "a string".into(),
            TokenKind::Symbol(s) => format!("`{s}`"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    /// Character position, from 1.
    position: usize,
}

impl Token {
    fn error(&self, message: String) -> ExprError {
        ExprError {
            position: self.position,
            message,
        }
    }
}

const SYMBOLS: &[&str] = &[
    "<=", ">=", "!=", "<>", "==", "(", ")", ",", "+", "-", "*", "/", "%", "=", "<", ">",
];

fn tokenize(text: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let fail = |at: usize, message: String| ExprError {
        position: at + 1,
        message,
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let start = i;
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            i += 1;
            continue;
        }
        let comment = matches!(
            (c, next),
            ('-', Some('-')) | ('/', Some('/')) | ('/', Some('*')) | ('#', _)
        );
        if comment {
            return Err(fail(start, "comments are not allowed".into()));
        }
        let kind = if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '.'))
            {
                i += 1;
            }
            TokenKind::Word(chars[start..i].iter().collect())
        } else if c.is_ascii_digit() {
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
            {
                return Err(fail(
                    start,
                    "numbers in keys are whole decimal numbers, such as `4`".into(),
                ));
            }
            let digits: String = chars[start..i].iter().collect();
            TokenKind::Integer(digits.parse().map_err(|_| {
                fail(
                    start,
                    format!("{digits} is larger than 18446744073709551615"),
                )
            })?)
        } else if c == '`' {
            i += 1;
            let name_start = i;
            while i < chars.len() && chars[i] != '`' {
                if chars[i] == '\\' || chars[i].is_control() {
                    return Err(fail(
                        i,
                        "a backquoted column name cannot hold `\\` or control characters".into(),
                    ));
                }
                i += 1;
            }
            if i == chars.len() {
                return Err(fail(start, "the backquote is not closed".into()));
            }
            let name: String = chars[name_start..i].iter().collect();
            i += 1;
            TokenKind::Quoted(name)
        } else if c == '\'' {
            i += 1;
            let mut value = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(fail(start, "the string is not closed".into())),
                    Some('\\') => match chars.get(i + 1) {
                        Some(&escaped @ ('\\' | '\'')) => {
                            value.push(escaped);
                            i += 2;
                        }
                        _ => {
                            return Err(fail(
                                i,
                                "only `\\\\` and `\\'` escapes are allowed in strings".into(),
                            ))
                        }
                    },
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        value.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) if ch.is_control() => {
                        return Err(fail(i, "strings cannot hold control characters".into()))
                    }
                    Some(&ch) => {
                        value.push(ch);
                        i += 1;
                    }
                }
            }
            TokenKind::String(value)
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(symbol) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) else {
                let what = match c {
                    '"' => "double quotes (name a column bare or in backquotes)".to_owned(),
                    ';' => "`;` (one expression, no statements)".to_owned(),
                    c if !c.is_ascii() => {
                        format!("the non-ASCII character `{c}` (U+{:04X})", c as u32)
                    }
                    c if c.is_control() => format!("a control character (U+{:04X})", c as u32),
                    c => format!("`{c}`"),
                };
                return Err(fail(
                    start,
                    format!("{what} is not allowed in a key expression"),
                ));
            };
            i += symbol.chars().count();
            TokenKind::Symbol(symbol)
        };
        tokens.push(Token {
            kind,
            position: start + 1,
        });
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    next: usize,
    columns: &'a [&'a str],
    /// The position just past the text, for "ended too early".
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&TokenKind> {
        self.tokens.get(self.next).map(|t| &t.kind)
    }

    fn is_symbol(&self, symbol: &str) -> bool {
        matches!(self.peek(), Some(TokenKind::Symbol(s)) if *s == symbol)
    }

    fn take(&mut self) -> Result<Token, ExprError> {
        let token = self.tokens.get(self.next).cloned().ok_or(ExprError {
            position: self.end,
            message: "the expression ends too early".into(),
        })?;
        self.next += 1;
        Ok(token)
    }

    fn expect(&mut self, symbol: &'static str) -> Result<(), ExprError> {
        let token = self.take()?;
        if token.kind == TokenKind::Symbol(symbol) {
            Ok(())
        } else {
            Err(token.error(format!(
                "expected `{symbol}`, found {}",
                token.kind.describe()
            )))
        }
    }

    fn too_deep(&self, depth: usize) -> Result<(), ExprError> {
        if depth > MAX_DEPTH {
            let position = self.tokens.get(self.next).map_or(self.end, |t| t.position);
            return Err(ExprError {
                position,
                message: format!("nests deeper than {MAX_DEPTH} levels"),
            });
        }
        Ok(())
    }

    /// comparison := additive (compare additive)?
    fn expression(&mut self, depth: usize) -> Result<Expr, ExprError> {
        self.too_deep(depth)?;
        let left = self.additive(depth)?;
        let op = match self.peek() {
            Some(TokenKind::Symbol("=" | "==")) => BinaryOp::Equals,
            Some(TokenKind::Symbol("!=" | "<>")) => BinaryOp::NotEquals,
            Some(TokenKind::Symbol("<")) => BinaryOp::Less,
            Some(TokenKind::Symbol("<=")) => BinaryOp::LessOrEquals,
            Some(TokenKind::Symbol(">")) => BinaryOp::Greater,
            Some(TokenKind::Symbol(">=")) => BinaryOp::GreaterOrEquals,
            _ => return Ok(left),
        };
        self.next += 1;
        let right = self.additive(depth + 1)?;
        Ok(Expr::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
        })
    }

    fn additive(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let mut left = self.multiplicative(depth)?;
        loop {
            let op = match self.peek() {
                Some(TokenKind::Symbol("+")) => BinaryOp::Add,
                Some(TokenKind::Symbol("-")) => BinaryOp::Subtract,
                _ => return Ok(left),
            };
            self.next += 1;
            let right = self.multiplicative(depth + 1)?;
            left = Expr::Binary {
                op,
                left: Box::new(left),
                right: Box::new(right),
            };
        }
    }

    fn multiplicative(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let mut left = self.unary(depth)?;
        loop {
            let op = match self.peek() {
                Some(TokenKind::Symbol("*")) => BinaryOp::Multiply,
                Some(TokenKind::Symbol("/")) => BinaryOp::Divide,
                Some(TokenKind::Symbol("%")) => BinaryOp::Modulo,
                _ => return Ok(left),
            };
            self.next += 1;
            let right = self.unary(depth + 1)?;
            left = Expr::Binary {
                op,
                left: Box::new(left),
                right: Box::new(right),
            };
        }
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, ExprError> {
        self.too_deep(depth)?;
        if self.is_symbol("-") {
            self.next += 1;
            return Ok(Expr::Negate(Box::new(self.unary(depth + 1)?)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let token = self.take()?;
        match token.kind.clone() {
            TokenKind::Integer(n) => Ok(Expr::Integer(n)),
            TokenKind::String(s) => Ok(Expr::String(s)),
            TokenKind::Quoted(name) => self.column(&token, name),
            TokenKind::Word(word) if self.is_symbol("(") => {
                let function = FUNCTIONS
                    .iter()
                    .find(|(name, _, _)| name.eq_ignore_ascii_case(&word));
                let Some(&(function, fewest, most)) = function else {
                    return Err(token.error(format!(
                        "`{word}` is not a function allowed in keys (allowed: {})",
                        allowed_functions()
                    )));
                };
                let open = self.tokens[self.next].position;
                self.next += 1;
                let arguments = self.list(depth + 1, open)?;
                if arguments.len() < fewest || arguments.len() > most {
                    let wanted = if fewest == most {
                        format!("{fewest}")
                    } else {
                        format!("{fewest} to {most}")
                    };
                    return Err(token.error(format!(
                        "`{function}` takes {wanted} arguments, not {}",
                        arguments.len()
                    )));
                }
                Ok(Expr::Call {
                    function,
                    arguments,
                })
            }
            TokenKind::Word(word) => self.column(&token, word),
            TokenKind::Symbol("(") => {
                let mut items = self.list(depth + 1, token.position)?;
                match items.len() {
                    0 => Err(token.error("empty parentheses (write `tuple()`)".into())),
                    1 => Ok(items.remove(0)),
                    _ => Ok(Expr::Tuple(items)),
                }
            }
            other => Err(token.error(format!("unexpected {}", other.describe()))),
        }
    }

    /// The items of a parenthesised list, after its `(` (at `open`),
    /// through its `)`.
    fn list(&mut self, depth: usize, open: usize) -> Result<Vec<Expr>, ExprError> {
        let unclosed = |e: ExprError, end: usize| {
            if e.position == end {
                ExprError {
                    position: open,
                    message: format!("the parenthesis at character {open} is not closed"),
                }
            } else {
                e
            }
        };
        let mut items = Vec::new();
        if self.is_symbol(")") {
            self.next += 1;
            return Ok(items);
        }
        loop {
            items.push(self.expression(depth).map_err(|e| unclosed(e, self.end))?);
            if self.is_symbol(",") {
                self.next += 1;
                continue;
            }
            self.expect(")").map_err(|e| unclosed(e, self.end))?;
            return Ok(items);
        }
    }

    fn column(&self, token: &Token, name: String) -> Result<Expr, ExprError> {
        if self.columns.contains(&name.as_str()) {
            Ok(Expr::Column(name))
        } else {
            Err(token.error(format!("`{name}` is not one of the table's columns")))
        }
    }
}

fn allowed_functions() -> String {
    FUNCTIONS
        .iter()
        .map(|(name, _, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
