//! Lexer and recursive-descent parser of the filter language.

use super::{CmpOp, Expr, FilterError, Literal, MAX_DEPTH, MAX_LEN, MAX_TERMS};

/// See [`super::parse`].
pub(super) fn parse(input: &str) -> Result<Expr, FilterError> {
    if input.len() > MAX_LEN {
        return Err(FilterError {
            position: 0,
            message: format!(
                "filter is {} bytes long, more than the limit of {MAX_LEN}",
                input.len()
            ),
        });
    }
    let tokens = lex(input)?;
    let mut parser = Parser {
        tokens,
        next: 0,
        depth: 0,
        terms: 0,
    };
    let expr = parser.parse_or()?;
    let end = parser.peek();
    if end.kind != Tok::End {
        return Err(expected(end, "'and', 'or' or end of input"));
    }
    Ok(expr)
}

// ---------------------------------------------------------------------------------
// Lexing

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    And,
    Or,
    Not,
    In,
    Is,
    Null,
    Like,
    Between,
    True,
    False,
}

/// Whether `word` is a keyword of the filter language (so it cannot name a field).
pub fn is_keyword(word: &str) -> bool {
    Kw::from_word(word).is_some()
}

impl Kw {
    fn from_word(word: &str) -> Option<Kw> {
        const WORDS: [(&str, Kw); 10] = [
            ("and", Kw::And),
            ("or", Kw::Or),
            ("not", Kw::Not),
            ("in", Kw::In),
            ("is", Kw::Is),
            ("null", Kw::Null),
            ("like", Kw::Like),
            ("between", Kw::Between),
            ("true", Kw::True),
            ("false", Kw::False),
        ];
        WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|&(_, kw)| kw)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Keyword(Kw),
    Str(String),
    Int(i64),
    Float(f64),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    End,
}

#[derive(Debug, Clone)]
struct Token<'a> {
    kind: Tok,
    /// Character offset of the first character.
    pos: usize,
    /// The token as written.
    text: &'a str,
}

impl Token<'_> {
    fn describe(&self) -> String {
        match &self.kind {
            Tok::End => "end of input".to_string(),
            Tok::Keyword(_) => format!("keyword '{}'", self.text),
            Tok::Ident(name) => format!("'{name}'"),
            _ => {
                // Keep messages short when a long string literal is in the way.
                let shown: String = self.text.chars().take(40).collect();
                let more = if shown.len() < self.text.len() {
                    "…"
                } else {
                    ""
                };
                format!("{shown}{more}")
            }
        }
    }
}

fn lex(input: &str) -> Result<Vec<Token<'_>>, FilterError> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().enumerate().peekable();
    while let Some((pos, (start, c))) = chars.next() {
        // Byte offset just past the characters consumed for this token so far.
        let mut end = start + c.len_utf8();
        let kind = match c {
            c if c.is_whitespace() => continue,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '=' => Tok::Op(CmpOp::Eq),
            '!' => match chars.next_if(|&(_, (_, n))| n == '=') {
                Some(_) => {
                    end += 1;
                    Tok::Op(CmpOp::Ne)
                }
                None => return Err(FilterError::at(pos, "unexpected '!' (did you mean '!='?)")),
            },
            '<' | '>' => {
                let op = match (c, chars.peek().map(|&(_, (_, n))| n)) {
                    ('<', Some('=')) => Some(CmpOp::Le),
                    ('<', Some('>')) => Some(CmpOp::Ne),
                    ('>', Some('=')) => Some(CmpOp::Ge),
                    _ => None,
                };
                match op {
                    Some(op) => {
                        chars.next();
                        end += 1;
                        Tok::Op(op)
                    }
                    None if c == '<' => Tok::Op(CmpOp::Lt),
                    None => Tok::Op(CmpOp::Gt),
                }
            }
            '\'' => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(FilterError::at(pos, "unterminated string starting"));
                        }
                        Some((_, (i, '\''))) => {
                            end = i + 1;
                            if chars.next_if(|&(_, (_, n))| n == '\'').is_none() {
                                break;
                            }
                            value.push('\'');
                        }
                        Some((_, (_, ch))) => value.push(ch),
                    }
                }
                Tok::Str(value)
            }
            '-' | '0'..='9' => {
                let mut seen_dot = false;
                let mut digits_after_dot = 0;
                let mut digits = usize::from(c != '-');
                while let Some(&(_, (i, n))) = chars.peek() {
                    if n.is_ascii_digit() {
                        digits += 1;
                        if seen_dot {
                            digits_after_dot += 1;
                        }
                    } else if n == '.' && !seen_dot && digits > 0 {
                        seen_dot = true;
                    } else if n.is_alphanumeric() || n == '_' || n == '.' {
                        return Err(FilterError::at(
                            pos,
                            format_args!("malformed number '{}'", &input[start..i + n.len_utf8()]),
                        ));
                    } else {
                        break;
                    }
                    end = i + 1;
                    chars.next();
                }
                let text = &input[start..end];
                if digits == 0 || (seen_dot && digits_after_dot == 0) {
                    return Err(FilterError::at(
                        pos,
                        format_args!("malformed number '{text}'"),
                    ));
                }
                if seen_dot {
                    match text.parse::<f64>() {
                        Ok(x) if x.is_finite() => Tok::Float(x),
                        _ => {
                            return Err(FilterError::at(
                                pos,
                                format_args!("number '{text}' is out of range"),
                            ));
                        }
                    }
                } else {
                    match text.parse::<i64>() {
                        Ok(n) => Tok::Int(n),
                        Err(_) => {
                            return Err(FilterError::at(
                                pos,
                                format_args!(
                                    "integer '{text}' is out of range (write it with a decimal point to compare as a float)"
                                ),
                            ));
                        }
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                while let Some(&(_, (i, n))) = chars.peek() {
                    if !(n.is_ascii_alphanumeric() || n == '_') {
                        break;
                    }
                    end = i + 1;
                    chars.next();
                }
                let word = &input[start..end];
                match Kw::from_word(word) {
                    Some(kw) => Tok::Keyword(kw),
                    None => Tok::Ident(word.to_string()),
                }
            }
            other => {
                return Err(FilterError::at(
                    pos,
                    format_args!("unexpected character '{other}'"),
                ));
            }
        };
        tokens.push(Token {
            kind,
            pos,
            text: &input[start..end],
        });
    }
    tokens.push(Token {
        kind: Tok::End,
        pos: input.chars().count(),
        text: "",
    });
    Ok(tokens)
}

// ---------------------------------------------------------------------------------
// Parsing

/// `expected <what> at position <n>, found <token>`.
fn expected(found: &Token<'_>, what: impl std::fmt::Display) -> FilterError {
    FilterError {
        position: found.pos,
        message: format!(
            "expected {what} at position {}, found {}",
            found.pos,
            found.describe()
        ),
    }
}

struct Parser<'a> {
    tokens: Vec<Token<'a>>,
    next: usize,
    /// Current nesting of parentheses and `not`.
    depth: usize,
    /// Conditions parsed so far.
    terms: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Token<'a> {
        // The token list always ends with `End`, which is never consumed.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token<'a> {
        let token = self.peek().clone();
        if token.kind != Tok::End {
            self.next += 1;
        }
        token
    }

    fn eat_keyword(&mut self, kw: Kw) -> bool {
        if self.peek().kind == Tok::Keyword(kw) {
            self.next += 1;
            return true;
        }
        false
    }

    fn expect_keyword(&mut self, kw: Kw, what: &str) -> Result<(), FilterError> {
        if self.eat_keyword(kw) {
            return Ok(());
        }
        Err(expected(self.peek(), what))
    }

    fn enter(&mut self, pos: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::at(
                pos,
                format_args!("filter nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.parse_and()?;
        while self.eat_keyword(Kw::Or) {
            let right = self.parse_and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.parse_unary()?;
        while self.eat_keyword(Kw::And) {
            let right = self.parse_unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self) -> Result<Expr, FilterError> {
        let token = self.peek().clone();
        if token.kind == Tok::Keyword(Kw::Not) {
            self.next += 1;
            self.enter(token.pos)?;
            let inner = self.parse_unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Expr, FilterError> {
        let token = self.bump();
        let field = match token.kind {
            Tok::LParen => {
                self.enter(token.pos)?;
                let inner = self.parse_or()?;
                let close = self.bump();
                if close.kind != Tok::RParen {
                    return Err(expected(
                        &close,
                        format_args!("')' for the '(' at position {}, 'and' or 'or'", token.pos),
                    ));
                }
                self.depth -= 1;
                return Ok(inner);
            }
            Tok::Ident(name) => name,
            _ => {
                return Err(expected(&token, "a field name, 'not' or '('"));
            }
        };
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(FilterError::at(
                token.pos,
                format_args!("filter has more than {MAX_TERMS} conditions"),
            ));
        }
        self.parse_predicate(field)
    }

    /// Everything after the field name of a condition.
    fn parse_predicate(&mut self, field: String) -> Result<Expr, FilterError> {
        let token = self.bump();
        match token.kind {
            Tok::Op(op) => {
                let value = self.parse_literal(&token)?;
                Ok(Expr::Compare { field, op, value })
            }
            Tok::Keyword(Kw::Not) => {
                let next = self.bump();
                match next.kind {
                    Tok::Keyword(Kw::In) => self.parse_in_list(field, true),
                    Tok::Keyword(Kw::Like) => self.parse_like(field, &next, true),
                    _ => Err(expected(&next, "'in' or 'like' after 'not'")),
                }
            }
            Tok::Keyword(Kw::In) => self.parse_in_list(field, false),
            Tok::Keyword(Kw::Like) => self.parse_like(field, &token, false),
            Tok::Keyword(Kw::Is) => {
                let negated = self.eat_keyword(Kw::Not);
                let what = if negated {
                    "'null' after 'is not'"
                } else {
                    "'not' or 'null' after 'is'"
                };
                self.expect_keyword(Kw::Null, what)?;
                Ok(Expr::IsNull { field, negated })
            }
            Tok::Keyword(Kw::Between) => {
                let low = self.parse_literal(&token)?;
                self.expect_keyword(Kw::And, "'and' between the bounds of 'between'")?;
                let and = self.tokens[self.next - 1].clone();
                let high = self.parse_literal(&and)?;
                Ok(Expr::Between { field, low, high })
            }
            _ => Err(expected(
                &token,
                format_args!(
                    "an operator (=, !=, <, <=, >, >=, in, like, is, between) after '{field}'"
                ),
            )),
        }
    }

    fn parse_in_list(&mut self, field: String, negated: bool) -> Result<Expr, FilterError> {
        let open = self.bump();
        if open.kind != Tok::LParen {
            return Err(expected(&open, "'(' after 'in'"));
        }
        let mut values = vec![self.parse_literal(&open)?];
        loop {
            let sep = self.bump();
            match sep.kind {
                Tok::Comma => values.push(self.parse_literal(&sep)?),
                Tok::RParen => break,
                _ => {
                    return Err(expected(&sep, "',' or ')' in the 'in' list"));
                }
            }
        }
        Ok(Expr::In {
            field,
            values,
            negated,
        })
    }

    fn parse_like(
        &mut self,
        field: String,
        like: &Token<'_>,
        negated: bool,
    ) -> Result<Expr, FilterError> {
        let token = self.bump();
        match token.kind {
            Tok::Str(pattern) => Ok(Expr::Like {
                field,
                pattern,
                negated,
            }),
            _ => Err(expected(
                &token,
                format_args!("a quoted pattern after '{}'", like.text),
            )),
        }
    }

    /// A literal following `after` (named in the error message).
    fn parse_literal(&mut self, after: &Token<'_>) -> Result<Literal, FilterError> {
        let token = self.bump();
        match token.kind {
            Tok::Str(s) => Ok(Literal::String(s)),
            Tok::Int(n) => Ok(Literal::Integer(n)),
            Tok::Float(x) => Ok(Literal::Float(x)),
            Tok::Keyword(Kw::True) => Ok(Literal::Bool(true)),
            Tok::Keyword(Kw::False) => Ok(Literal::Bool(false)),
            Tok::Keyword(Kw::Null) => {
                let mut err = expected(&token, format_args!("a value after '{}'", after.text));
                err.message.push_str(" (use 'is null' or 'is not null')");
                Err(err)
            }
            _ => Err(expected(
                &token,
                format_args!("a value after '{}'", after.text),
            )),
        }
    }
}
