//! `GET …/query?q=`: the SOQL subset the mock answers, `SELECT f, … FROM Object [WHERE c [AND c]…]
//! [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n]`, where `c` is `f = lit`,
//! `f != lit` (also `<>`), `f IN (lit, …)` or `f NOT IN (lit, …)`, and `lit` a quoted
//! string (SOQL's escapes), a number, `true`, `false` or `null`
//! (<https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select.htm>;
//! several `ORDER BY` fields:
//! <https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_orderby.htm>).
//!
//! Invariants: text compares ignoring case; `!=` and `NOT IN` match null fields (as in
//! SOQL); anything else (OR, LIKE, `<`, date literals, sub-queries, relationship fields, a
//! bad escape, an unterminated literal) is 400 `MALFORMED_QUERY` with Salesforce's
//! caret-under-the-column message. Names are resolved against the object's schema; a
//! query answers every row in one page (`done: true`), sorted by its `ORDER BY` keys, then
//! by id.

use super::super::chassis::reply::{Answer, Reply};
use super::super::chassis::values::text_of;
use super::super::chassis::wire::pair;
use super::Salesforce;
use super::answers::{COLUMN_HINT, api_error, malformed_query};
use super::model::{record_json, value_of};
use super::routes::Version;
use serde_json::{Value, json};
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(String),
    Comma,
    Open,
    Close,
    Op(&'static str),
}

impl Tok {
    fn shown(&self) -> String {
        match self {
            Self::Word(w) | Self::Num(w) => w.clone(),
            Self::Str(s) => format!("'{s}'"),
            Self::Comma => ",".into(),
            Self::Open => "(".into(),
            Self::Close => ")".into(),
            Self::Op(op) => (*op).into(),
        }
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Self::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

/// A token and the column (1-based, in characters) it starts at.
type Lexed = (Tok, usize);

/// Where a query went wrong, in Salesforce's words: the query, a caret under the column,
/// and the message.
pub(super) fn query_error(code: &str, soql: &str, column: usize, message: &str) -> Reply {
    let text = format!(
        "\n{soql}\n{}^\nERROR at Row:1:Column:{column}\n{message}",
        " ".repeat(column.saturating_sub(1))
    );
    api_error(400, code, &text, None)
}

fn malformed_at(soql: &str, column: usize, message: &str) -> Reply {
    query_error("MALFORMED_QUERY", soql, column, message)
}

/// The error of a string literal that opens at `start` and never closes.
fn unterminated(soql: &str, chars: &[char], start: usize) -> Reply {
    malformed_at(
        soql,
        start + 1,
        &format!(
            "line 1:{} mismatched character '<EOF>' expecting ''' (unexpected token: unterminated string literal)",
            chars.len()
        ),
    )
}

/// Splits a query into tokens; string literals are unescaped with SOQL's rules.
fn lex(soql: &str) -> Result<Vec<Lexed>, Reply> {
    let chars: Vec<char> = soql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let column = i + 1;
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            {
                i += 1;
            }
            out.push((Tok::Word(chars[start..i].iter().collect()), column));
        } else if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) {
            let start = i;
            i += 1;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_digit() || *c == '.')
            {
                i += 1;
            }
            out.push((Tok::Num(chars[start..i].iter().collect()), column));
        } else if c == '\'' {
            let (text, end) = string_literal(soql, &chars, i)?;
            out.push((Tok::Str(text), column));
            i = end;
        } else {
            let (tok, width) = match (c, next) {
                (',', _) => (Tok::Comma, 1),
                ('(', _) => (Tok::Open, 1),
                (')', _) => (Tok::Close, 1),
                ('=', _) => (Tok::Op("="), 1),
                ('!', Some('=')) => (Tok::Op("!="), 2),
                ('<', Some('>')) => (Tok::Op("<>"), 2),
                ('<', Some('=')) => (Tok::Op("<="), 2),
                ('>', Some('=')) => (Tok::Op(">="), 2),
                ('<', _) => (Tok::Op("<"), 1),
                ('>', _) => (Tok::Op(">"), 1),
                _ => {
                    return Err(malformed_at(
                        soql,
                        column,
                        &format!("unexpected token: '{c}'"),
                    ));
                }
            };
            out.push((tok, column));
            i += width;
        }
    }
    Ok(out)
}

/// The string literal opening at `start`: its value and the index after its closing quote.
fn string_literal(soql: &str, chars: &[char], start: usize) -> Result<(String, usize), Reply> {
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(unterminated(soql, chars, start)),
            Some('\'') => return Ok((text, i + 1)),
            Some('\\') => {
                let Some(&escaped) = chars.get(i + 1) else {
                    return Err(unterminated(soql, chars, start));
                };
                let c = match escaped {
                    '\\' => '\\',
                    '\'' => '\'',
                    '"' => '"',
                    'n' | 'N' => '\n',
                    'r' | 'R' => '\r',
                    't' | 'T' => '\t',
                    'b' | 'B' => '\u{8}',
                    'f' | 'F' => '\u{c}',
                    '_' => '_',
                    '%' => '%',
                    other => {
                        let raw: String = chars[start..=i + 1].iter().collect();
                        return Err(malformed_at(
                            soql,
                            start + 1,
                            &format!(
                                "Invalid string literal {raw}'. Illegal character sequence '\\{other}' in string literal. (unexpected token)"
                            ),
                        ));
                    }
                };
                text.push(c);
                i += 2;
            }
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lit {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
}

#[derive(Debug)]
pub(super) enum Test {
    Eq(Lit),
    Ne(Lit),
    In(Vec<Lit>),
    NotIn(Vec<Lit>),
}

#[derive(Debug)]
pub(super) struct Cond {
    pub(super) field: String,
    pub(super) column: usize,
    pub(super) test: Test,
}

#[derive(Debug)]
pub(super) struct Order {
    pub(super) field: String,
    pub(super) column: usize,
    pub(super) descending: bool,
    pub(super) nulls_first: bool,
}

/// A parsed query; names as written (resolved against the schema later).
#[derive(Debug)]
pub(super) struct Soql {
    /// The selected fields and the column each starts at.
    pub(super) fields: Vec<(String, usize)>,
    pub(super) object: String,
    pub(super) conds: Vec<Cond>,
    /// `ORDER BY`'s keys, most significant first.
    pub(super) order: Vec<Order>,
    pub(super) limit: Option<usize>,
}

struct Parser<'a> {
    soql: &'a str,
    toks: Vec<Lexed>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn column(&self) -> usize {
        self.toks
            .get(self.pos)
            .map_or(self.soql.chars().count() + 1, |(_, c)| *c)
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        self.peek().is_some_and(|t| t.is_keyword(keyword))
    }

    /// The error for the token at the cursor.
    fn unexpected(&self) -> Reply {
        let message = match self.peek() {
            None => "unexpected token: <EOF>".to_owned(),
            Some(t) if t.is_keyword("OR") || t.is_keyword("NOT") || t.is_keyword("LIKE") => {
                format!(
                    "unexpected token: '{}' (the mock Salesforce does not support it)",
                    t.shown()
                )
            }
            Some(Tok::Op(op)) if ["<", ">", "<=", ">="].contains(op) => {
                format!("unexpected token: '{op}' (the mock Salesforce does not support it)")
            }
            Some(t) => format!("unexpected token: '{}'", t.shown()),
        };
        malformed_at(self.soql, self.column(), &message)
    }

    fn keyword(&mut self, keyword: &str) -> Result<(), Reply> {
        if self.at_keyword(keyword) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// A name (field or object) that is not a clause keyword.
    fn name(&mut self) -> Result<(String, usize), Reply> {
        let column = self.column();
        match self.peek() {
            Some(Tok::Word(w))
                if !["SELECT", "FROM", "WHERE", "AND", "OR", "ORDER", "LIMIT"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                let name = w.clone();
                self.pos += 1;
                Ok((name, column))
            }
            _ => Err(self.unexpected()),
        }
    }

    fn literal(&mut self) -> Result<Lit, Reply> {
        let lit = match self.peek() {
            Some(Tok::Str(s)) => Lit::Str(s.clone()),
            Some(Tok::Num(n)) => Lit::Num(n.clone()),
            Some(t) if t.is_keyword("null") => Lit::Null,
            Some(t) if t.is_keyword("true") => Lit::Bool(true),
            Some(t) if t.is_keyword("false") => Lit::Bool(false),
            _ => return Err(self.unexpected()),
        };
        self.pos += 1;
        Ok(lit)
    }

    fn literal_list(&mut self) -> Result<Vec<Lit>, Reply> {
        if self.peek() != Some(&Tok::Open) {
            return Err(self.unexpected());
        }
        self.pos += 1;
        let mut list = vec![self.literal()?];
        loop {
            match self.peek() {
                Some(Tok::Comma) => {
                    self.pos += 1;
                    list.push(self.literal()?);
                }
                Some(Tok::Close) => {
                    self.pos += 1;
                    return Ok(list);
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn condition(&mut self) -> Result<Cond, Reply> {
        let (field, column) = self.name()?;
        let test = match self.peek() {
            Some(Tok::Op("=")) => {
                self.pos += 1;
                Test::Eq(self.literal()?)
            }
            Some(Tok::Op("!=" | "<>")) => {
                self.pos += 1;
                Test::Ne(self.literal()?)
            }
            Some(t) if t.is_keyword("IN") => {
                self.pos += 1;
                Test::In(self.literal_list()?)
            }
            Some(t) if t.is_keyword("NOT") => {
                self.pos += 1;
                self.keyword("IN")?;
                Test::NotIn(self.literal_list()?)
            }
            _ => return Err(self.unexpected()),
        };
        Ok(Cond {
            field,
            column,
            test,
        })
    }

    /// `f [ASC|DESC] [NULLS FIRST|LAST]`.
    fn order_key(&mut self) -> Result<Order, Reply> {
        let (field, column) = self.name()?;
        let mut descending = false;
        if self.at_keyword("ASC") {
            self.pos += 1;
        } else if self.at_keyword("DESC") {
            self.pos += 1;
            descending = true;
        }
        let mut nulls_first = !descending;
        if self.at_keyword("NULLS") {
            self.pos += 1;
            if self.at_keyword("FIRST") {
                nulls_first = true;
            } else if self.at_keyword("LAST") {
                nulls_first = false;
            } else {
                return Err(self.unexpected());
            }
            self.pos += 1;
        }
        Ok(Order {
            field,
            column,
            descending,
            nulls_first,
        })
    }

    fn parse(mut self) -> Result<Soql, Reply> {
        self.keyword("SELECT")?;
        let mut fields = vec![self.name()?];
        while self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            fields.push(self.name()?);
        }
        self.keyword("FROM")?;
        let (object, _) = self.name()?;
        let mut conds = Vec::new();
        if self.at_keyword("WHERE") {
            self.pos += 1;
            conds.push(self.condition()?);
            while self.at_keyword("AND") {
                self.pos += 1;
                conds.push(self.condition()?);
            }
        }
        let mut order = Vec::new();
        if self.at_keyword("ORDER") {
            self.pos += 1;
            self.keyword("BY")?;
            order.push(self.order_key()?);
            while self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                order.push(self.order_key()?);
            }
        }
        let mut limit = None;
        if self.at_keyword("LIMIT") {
            self.pos += 1;
            let count = match self.peek() {
                Some(Tok::Num(n)) => n.parse::<usize>().ok(),
                _ => None,
            };
            limit = Some(count.ok_or_else(|| self.unexpected())?);
            self.pos += 1;
        }
        if self.peek().is_some() {
            return Err(self.unexpected());
        }
        Ok(Soql {
            fields,
            object,
            conds,
            order,
            limit,
        })
    }
}

/// Parses a query.
///
/// # Errors
/// `MALFORMED_QUERY` where it leaves the subset.
pub(super) fn parse_soql(soql: &str) -> Result<Soql, Reply> {
    let toks = lex(soql)?;
    Parser { soql, toks, pos: 0 }.parse()
}

/// Whether a (non-null) field value equals a literal: text ignoring case, numbers by value.
fn lit_matches(value: &Value, lit: &Lit) -> bool {
    match lit {
        Lit::Null => value.is_null(),
        Lit::Bool(b) => match value {
            Value::Bool(x) => x == b,
            Value::String(s) => s.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
            _ => false,
        },
        Lit::Num(n) => match (
            text_of(value).and_then(|t| t.parse::<f64>().ok()),
            n.parse::<f64>(),
        ) {
            (Some(x), Ok(y)) => x == y,
            _ => false,
        },
        Lit::Str(s) => text_of(value).is_some_and(|t| t.to_lowercase() == s.to_lowercase()),
    }
}

/// Whether a field value passes a condition.
pub(super) fn test_matches(value: &Value, test: &Test) -> bool {
    match test {
        Test::Eq(lit) => lit_matches(value, lit),
        Test::Ne(lit) => !lit_matches(value, lit),
        Test::In(list) => list.iter().any(|lit| lit_matches(value, lit)),
        Test::NotIn(list) => !list.iter().any(|lit| lit_matches(value, lit)),
    }
}

/// Orders two non-null values: numbers by value, booleans, else text ignoring case.
fn compare_values(a: &Value, b: &Value) -> Ordering {
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return x.total_cmp(&y);
    }
    if let (Value::Bool(x), Value::Bool(y)) = (a, b) {
        return x.cmp(y);
    }
    let x = text_of(a).unwrap_or_default().to_lowercase();
    let y = text_of(b).unwrap_or_default().to_lowercase();
    x.cmp(&y)
}

/// Orders two field values by one `ORDER BY` key (nulls first or last as it says).
pub(super) fn compare_by(x: &Value, y: &Value, o: &Order) -> Ordering {
    match (x.is_null(), y.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) if o.nulls_first => Ordering::Less,
        (true, false) => Ordering::Greater,
        (false, true) if o.nulls_first => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            let order = compare_values(x, y);
            if o.descending { order.reverse() } else { order }
        }
    }
}

impl Salesforce {
    /// `GET …/query?q=`.
    pub(super) fn query(&self, version: &Version, query: &[(String, String)]) -> Answer {
        let soql = pair(query, "q")
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| malformed_query("A query string has to be specified"))?;
        let parsed = parse_soql(soql)?;
        let def = self
            .object(&parsed.object)
            .ok_or_else(|| Self::unknown_type(&parsed.object))?;
        let column = |name: &str, at: usize| {
            def.column(name).ok_or_else(|| {
                query_error(
                    "INVALID_FIELD",
                    soql,
                    at,
                    &format!(
                        "No such column '{name}' on entity '{}'. {COLUMN_HINT}",
                        def.name
                    ),
                )
            })
        };
        let mut selected = Vec::new();
        for (name, at) in &parsed.fields {
            let name = column(name, *at)?;
            if selected.contains(&name) {
                return Err(malformed_query(&format!(
                    "duplicate field selected: {name}"
                )));
            }
            selected.push(name);
        }
        let mut conds = Vec::new();
        for c in &parsed.conds {
            let name = column(&c.field, c.column)?;
            if def.field(&name).is_some_and(|f| !f.filterable) {
                return Err(query_error(
                    "INVALID_FIELD",
                    soql,
                    c.column,
                    &format!("field '{name}' can not be filtered in a query call"),
                ));
            }
            conds.push((name, &c.test));
        }
        let order = parsed
            .order
            .iter()
            .map(|o| Ok((column(&o.field, o.column)?, o)))
            .collect::<Result<Vec<_>, Reply>>()?;
        let mut rows: Vec<_> = self
            .live(&def.name)
            .filter(|rec| {
                conds
                    .iter()
                    .all(|(name, test)| test_matches(&value_of(def, rec, name), test))
            })
            .collect();
        rows.sort_by(|a, b| {
            order
                .iter()
                .map(|(name, o)| compare_by(&value_of(def, a, name), &value_of(def, b, name), o))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
                .then_with(|| a.id.cmp(&b.id))
        });
        if let Some(limit) = parsed.limit {
            rows.truncate(limit);
        }
        let records: Vec<Value> = rows
            .iter()
            .map(|rec| record_json(def, rec, &version.text, Some(&selected)))
            .collect();
        Ok(Reply::json(
            200,
            json!({"totalSize": records.len(), "done": true, "records": records}),
        ))
    }
}
