//! `search` and `orderBy` of `GET /kafkas`: the reference's SQL-like subset, parsed into a
//! typed [`Filter`] and rendered as SQL whose every value is a bound parameter. Field names
//! come from closed enums, so nothing of the query string is ever pasted into SQL.
//!
//! Grammar (keywords case-insensitive; AND binds tighter than OR; at most 10 joins):
//! ```text
//! expr   := and (OR and)*
//! and    := atom (AND atom)*
//! atom   := '(' expr ')' | field op value | field [NOT] IN '(' value (',' value)* ')'
//! field  := cloud_provider | name | owner | region | status | instance_type | cluster_id
//! op     := = | <> | LIKE | ILIKE
//! value  := 'quoted, '' for a quote' | a bare word of [A-Za-z0-9_.%@:+-]
//! ```

/// Longest `search` accepted.
pub const MAX_SEARCH: usize = 2048;
/// Most AND/OR joins.
pub const MAX_JOINS: usize = 10;
/// Most values of one IN list.
pub const MAX_IN: usize = 100;

/// Why a search or orderBy was refused (400, `KAFKAS-MGMT-23`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn err<T>(why: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(why.into()))
}

/// A searchable field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    CloudProvider,
    Name,
    Owner,
    Region,
    Status,
    InstanceType,
    ClusterId,
}

impl Field {
    fn parse(word: &str) -> Option<Field> {
        Some(match word.to_ascii_lowercase().as_str() {
            "cloud_provider" => Field::CloudProvider,
            "name" => Field::Name,
            "owner" => Field::Owner,
            "region" => Field::Region,
            "status" => Field::Status,
            "instance_type" => Field::InstanceType,
            "cluster_id" => Field::ClusterId,
            _ => return None,
        })
    }

    /// Its column.
    pub fn column(self) -> &'static str {
        match self {
            Field::CloudProvider => "cloud_provider",
            Field::Name => "name",
            Field::Owner => "owner",
            Field::Region => "region",
            Field::Status => "status",
            Field::InstanceType => "instance_type",
            Field::ClusterId => "cluster_id",
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Like,
    ILike,
}

/// A parsed search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// `field op value`.
    Compare(Field, Op, String),
    /// `field [NOT] IN (values)`.
    In(Field, bool, Vec<String>),
    /// Both.
    And(Box<Filter>, Box<Filter>),
    /// Either.
    Or(Box<Filter>, Box<Filter>),
}

impl Filter {
    /// SQL for the filter; its values are pushed onto `params` and referred to as `$n`
    /// (`n` = their position in `params`, 1-based).
    pub fn to_sql(&self, params: &mut Vec<String>) -> String {
        let bind = |v: &str, params: &mut Vec<String>| {
            params.push(v.to_owned());
            format!("${}", params.len())
        };
        match self {
            Filter::Compare(f, op, v) => {
                let p = bind(v, params);
                // cluster_id is NULL before placement: `<>` still matches those rows.
                let col = format!("COALESCE({}, '')", f.column());
                match op {
                    Op::Eq => format!("{col} = {p}"),
                    Op::Ne => format!("{col} <> {p}"),
                    Op::Like => format!("{col} LIKE {p}"),
                    Op::ILike => format!("{col} ILIKE {p}"),
                }
            }
            Filter::In(f, negated, values) => {
                let list: Vec<String> = values.iter().map(|v| bind(v, params)).collect();
                let not = if *negated { "NOT " } else { "" };
                format!("COALESCE({}, '') {not}IN ({})", f.column(), list.join(", "))
            }
            Filter::And(a, b) => format!("({} AND {})", a.to_sql(params), b.to_sql(params)),
            Filter::Or(a, b) => format!("({} OR {})", a.to_sql(params), b.to_sql(params)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Comma,
    Eq,
    Ne,
    Word(String),
    Quoted(String),
}

fn tokens(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => out.push(Token::Open),
            ')' => out.push(Token::Close),
            ',' => out.push(Token::Comma),
            '=' => out.push(Token::Eq),
            '<' => match chars.next() {
                Some((_, '>')) => out.push(Token::Ne),
                _ => {
                    return err(format!(
                        "unexpected '<' at {i}: the operators are =, <>, LIKE, ILIKE, IN, NOT IN"
                    ));
                }
            },
            '\'' => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\'')) if chars.peek().map(|(_, c)| *c) == Some('\'') => {
                            chars.next();
                            value.push('\'');
                        }
                        Some((_, '\'')) => break,
                        Some((_, c)) => value.push(c),
                        None => return err(format!("unterminated quote from {i}")),
                    }
                }
                out.push(Token::Quoted(value));
            }
            c if is_word(c) => {
                let mut word = c.to_string();
                while let Some((_, c)) = chars.peek().copied().filter(|(_, c)| is_word(*c)) {
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
            other => return err(format!("unexpected {other:?} at {i}")),
        }
    }
    Ok(out)
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.%@:+-".contains(c)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    joins: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(k))
    }

    fn join(&mut self) -> Result<(), ParseError> {
        self.joins += 1;
        if self.joins > MAX_JOINS {
            return err(format!("more than {MAX_JOINS} AND/OR joins"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Filter, ParseError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.next();
            self.join()?;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, ParseError> {
        let mut left = self.atom()?;
        while self.keyword("and") {
            self.next();
            self.join()?;
            left = Filter::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn value(&mut self) -> Result<String, ParseError> {
        match self.next() {
            Some(Token::Quoted(v)) => Ok(v),
            Some(Token::Word(w)) if !is_keyword(&w) => Ok(w),
            Some(t) => err(format!("expected a value, found {}", show(&t))),
            None => err("expected a value, found the end"),
        }
    }

    fn atom(&mut self) -> Result<Filter, ParseError> {
        if self.peek() == Some(&Token::Open) {
            self.next();
            self.depth += 1;
            if self.depth > MAX_JOINS {
                return err("parentheses nested too deep");
            }
            let inner = self.expr()?;
            self.depth -= 1;
            return match self.next() {
                Some(Token::Close) => Ok(inner),
                _ => err("expected ')'"),
            };
        }
        let field = match self.next() {
            Some(Token::Word(w)) => Field::parse(&w).ok_or_else(|| {
                ParseError(format!(
                    "unknown field {w:?}: the fields are cloud_provider, name, owner, region, status, instance_type, cluster_id"
                ))
            })?,
            Some(t) => return err(format!("expected a field, found {}", show(&t))),
            None => return err("expected a field, found the end"),
        };
        let op = match self.next() {
            Some(Token::Eq) => Op::Eq,
            Some(Token::Ne) => Op::Ne,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("ilike") => Op::ILike,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => return self.list(field, false),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("not") => {
                return match self.next() {
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => self.list(field, true),
                    _ => err("expected IN after NOT"),
                };
            }
            Some(t) => return err(format!("expected an operator, found {}", show(&t))),
            None => return err("expected an operator, found the end"),
        };
        Ok(Filter::Compare(field, op, self.value()?))
    }

    fn list(&mut self, field: Field, negated: bool) -> Result<Filter, ParseError> {
        if self.next() != Some(Token::Open) {
            return err("expected '(' after IN");
        }
        let mut values = vec![self.value()?];
        loop {
            match self.next() {
                Some(Token::Comma) => values.push(self.value()?),
                Some(Token::Close) => break,
                _ => return err("expected ',' or ')' in an IN list"),
            }
            if values.len() > MAX_IN {
                return err(format!("more than {MAX_IN} values in an IN list"));
            }
        }
        Ok(Filter::In(field, negated, values))
    }
}

fn is_keyword(w: &str) -> bool {
    ["and", "or", "in", "not", "like", "ilike"]
        .iter()
        .any(|k| w.eq_ignore_ascii_case(k))
}

fn show(t: &Token) -> String {
    match t {
        Token::Open => "'('".into(),
        Token::Close => "')'".into(),
        Token::Comma => "','".into(),
        Token::Eq => "'='".into(),
        Token::Ne => "'<>'".into(),
        Token::Word(w) => format!("{w:?}"),
        Token::Quoted(q) => format!("'{q}'"),
    }
}

/// Parses a `search` parameter.
pub fn parse(text: &str) -> Result<Filter, ParseError> {
    if text.len() > MAX_SEARCH {
        return err(format!("search longer than {MAX_SEARCH} characters"));
    }
    let mut p = Parser {
        tokens: tokens(text)?,
        at: 0,
        joins: 0,
        depth: 0,
    };
    if p.tokens.is_empty() {
        return err("empty search");
    }
    let filter = p.expr()?;
    match p.next() {
        None => Ok(filter),
        Some(t) => err(format!("unexpected {} after the expression", show(&t))),
    }
}

/// An `orderBy` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderColumn(&'static str, bool);

/// The columns `orderBy` may name (text columns sort by code point, `COLLATE "C"`).
const ORDER_COLUMNS: [OrderColumn; 17] = [
    OrderColumn("id", true),
    OrderColumn("name", true),
    OrderColumn("owner", true),
    OrderColumn("organisation_id", true),
    OrderColumn("cloud_provider", true),
    OrderColumn("region", true),
    OrderColumn("status", true),
    OrderColumn("instance_type", true),
    OrderColumn("size_id", true),
    OrderColumn("cluster_id", true),
    OrderColumn("bootstrap_server_host", true),
    OrderColumn("version", true),
    OrderColumn("multi_az", false),
    OrderColumn("reauthentication_enabled", false),
    OrderColumn("created_at", false),
    OrderColumn("updated_at", false),
    OrderColumn("expires_at", false),
];

/// Parses `orderBy` (`name asc, created_at desc`) into an ORDER BY clause; `id` last keeps
/// pages stable. Default: `name`.
pub fn order_by(text: Option<&str>) -> Result<String, ParseError> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("name");
    if text.len() > MAX_SEARCH {
        return err("orderBy too long");
    }
    let mut out = Vec::new();
    for item in text.split(',') {
        let mut words = item.split_whitespace();
        let Some(name) = words.next() else {
            return err("empty orderBy item");
        };
        let Some(col) = ORDER_COLUMNS
            .iter()
            .find(|c| c.0.eq_ignore_ascii_case(name))
        else {
            return err(format!("orderBy: unknown column {name:?}"));
        };
        let dir = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => "ASC",
            Some("desc") => "DESC",
            Some(other) => return err(format!("orderBy: {other:?} is neither asc nor desc")),
        };
        if words.next().is_some() {
            return err(format!("orderBy: unexpected words in {item:?}"));
        }
        let column = if col.0 == "version" {
            "kafka_version"
        } else {
            col.0
        };
        let collate = if col.1 { " COLLATE \"C\"" } else { "" };
        out.push(format!("{column}{collate} {dir} NULLS LAST"));
    }
    out.push("id COLLATE \"C\" ASC".into());
    Ok(out.join(", "))
}

#[cfg(test)]
mod tests;
