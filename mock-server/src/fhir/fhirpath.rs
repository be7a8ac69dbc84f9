//! The FHIRPath that FHIR R4's search parameters are written in, compiled once per
//! parameter and evaluated over a resource's JSON without copying it.
//!
//! Written here, and only the subset the 1,378 official R4 expressions use (paths,
//! `|`, `as`/`.as()`/`ofType()`/`is`, `where()`, `resolve()`, `exists()`, `[n]`,
//! `and`, `=`/`!=`, literals; a test compiles every one), because no crate could
//! be used. Tried here: `fhirpathrs` 0.1.1 cannot be built (rustc passed 24 GiB on
//! its generated model tables and was killed); `octofhir-fhirpath` 0.5 needs Rust
//! 1.98, and 0.4.40 failed to compile against the model crate its manifest
//! accepts, after 4 min 48 s on 193 crates (it always builds an HTTP client, an LSP
//! server and a web framework, and is async); `helios-fhirpath` pulls in the whole
//! generated R4 model crate. Each also needs a model provider to know that
//! `Observation.value` means `valueQuantity`: here the choice elements come from the
//! same definitions as the parameters.
//!
//! `resolve()` does not fetch: it yields the reference itself, typed by the
//! resource type its literal reference names, which is all `resolve() is Patient`
//! asks.

use serde_json::Value;

use super::definitions::Choices;

static TRUE: Value = Value::Bool(true);
static FALSE: Value = Value::Bool(false);

/// A compiled expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// The focus (`$this`, or the resource at the top).
    This,
    /// `%resource`: the resource being indexed, whatever the focus.
    Resource,
    /// A leading type name (`Observation.code`): the focus if it is of that type.
    OfResourceType(String),
    Member(Box<Expr>, String),
    Index(Box<Expr>, usize),
    Where(Box<Expr>, Box<Expr>),
    Resolve(Box<Expr>),
    Exists(Box<Expr>),
    First(Box<Expr>),
    /// `x as T`, `x.as(T)`, `x.ofType(T)`.
    As(Box<Expr>, String),
    Is(Box<Expr>, String),
    Union(Vec<Expr>),
    Equals(Box<Expr>, Box<Expr>, bool),
    And(Box<Expr>, Box<Expr>),
    Literal(Value),
}

/// One value an expression found, with the type its choice element named
/// (`valueQuantity` → `Quantity`) or its literal reference names (after `resolve()`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item<'a> {
    pub value: &'a Value,
    pub kind: Option<&'a str>,
}

impl Expr {
    /// Parses `text`, or says what in it is not understood.
    pub(crate) fn parse(text: &str) -> Result<Expr, String> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let expr = parser.and()?;
        match parser.peek() {
            None => Ok(expr),
            Some(token) => Err(format!("unexpected {token:?} in {text:?}")),
        }
    }

    /// Keeps only the arms of a top-level union that can apply to `kind`: a
    /// parameter shared by 30 types is then evaluated as its one path.
    pub(crate) fn for_type(&self, kind: &str) -> Expr {
        match self {
            Expr::Union(arms) => {
                let kept: Vec<Expr> = arms
                    .iter()
                    .filter(|arm| arm.root_type().is_none_or(|t| applies(t, kind)))
                    .cloned()
                    .collect();
                match <[Expr; 1]>::try_from(kept) {
                    Ok([one]) => one,
                    Err(kept) => Expr::Union(kept),
                }
            }
            other => other.clone(),
        }
    }

    fn root_type(&self) -> Option<&str> {
        match self {
            Expr::OfResourceType(t) => Some(t),
            Expr::Member(inner, _)
            | Expr::Index(inner, _)
            | Expr::Where(inner, _)
            | Expr::Resolve(inner)
            | Expr::Exists(inner)
            | Expr::First(inner)
            | Expr::As(inner, _)
            | Expr::Is(inner, _) => inner.root_type(),
            Expr::And(left, _) | Expr::Equals(left, _, _) => left.root_type(),
            _ => None,
        }
    }

    /// Evaluates against a resource.
    pub(crate) fn evaluate<'a>(&'a self, resource: &'a Value, choices: &'a Choices) -> Vec<Item<'a>> {
        self.evaluate_in(resource, resource, choices)
    }

    /// Evaluates against `focus`, an element of `resource` (a composite's part).
    pub(crate) fn evaluate_in<'a>(
        &'a self,
        focus: &'a Value,
        resource: &'a Value,
        choices: &'a Choices,
    ) -> Vec<Item<'a>> {
        let context = Context { resource, choices };
        self.eval(
            &[Item {
                value: focus,
                kind: None,
            }],
            &context,
        )
    }

    fn eval<'a>(&'a self, focus: &[Item<'a>], context: &Context<'a>) -> Vec<Item<'a>> {
        let plain = |value: &'a Value| Item { value, kind: None };
        let boolean = |b: bool| vec![plain(if b { &TRUE } else { &FALSE })];
        match self {
            Expr::This => focus.to_vec(),
            Expr::Resource => vec![plain(context.resource)],
            Expr::OfResourceType(kind) => focus
                .iter()
                .filter(|item| {
                    item.value
                        .get("resourceType")
                        .and_then(Value::as_str)
                        .is_some_and(|t| applies(kind, t))
                })
                .copied()
                .collect(),
            Expr::Member(inner, name) => {
                let mut out = Vec::new();
                for item in inner.eval(focus, context) {
                    member(item.value, name, context.choices, &mut out);
                }
                out
            }
            Expr::Index(inner, n) => inner.eval(focus, context).get(*n).copied().into_iter().collect(),
            Expr::Where(inner, criterion) => inner
                .eval(focus, context)
                .into_iter()
                .filter(|item| {
                    matches!(criterion.eval(&[*item], context).as_slice(), [one] if one.value == &TRUE)
                })
                .collect(),
            Expr::Resolve(inner) => inner
                .eval(focus, context)
                .into_iter()
                .map(|item| Item {
                    value: item.value,
                    kind: item
                        .value
                        .get("reference")
                        .and_then(Value::as_str)
                        .and_then(crate::reference::parts)
                        .map(|(kind, _)| kind)
                        .or_else(|| item.value.get("type").and_then(Value::as_str)),
                })
                .collect(),
            Expr::Exists(inner) => boolean(!inner.eval(focus, context).is_empty()),
            Expr::First(inner) => inner.eval(focus, context).into_iter().take(1).collect(),
            Expr::As(inner, kind) => inner
                .eval(focus, context)
                .into_iter()
                .filter(|item| is_of(item, kind))
                .collect(),
            Expr::Is(inner, kind) => match inner.eval(focus, context).as_slice() {
                [one] => boolean(is_of(one, kind)),
                _ => Vec::new(),
            },
            Expr::Union(arms) => arms.iter().flat_map(|arm| arm.eval(focus, context)).collect(),
            Expr::Equals(left, right, negated) => {
                match (left.eval(focus, context).as_slice(), right.eval(focus, context).as_slice()) {
                    ([l], [r]) => boolean((l.value == r.value) != *negated),
                    _ => Vec::new(),
                }
            }
            Expr::And(left, right) => {
                let truth = |items: Vec<Item<'_>>| match items.as_slice() {
                    [one] => one.value.as_bool(),
                    _ => None,
                };
                match (truth(left.eval(focus, context)), truth(right.eval(focus, context))) {
                    (Some(false), _) | (_, Some(false)) => boolean(false),
                    (Some(true), Some(true)) => boolean(true),
                    _ => Vec::new(),
                }
            }
            Expr::Literal(value) => vec![plain(value)],
        }
    }
}

struct Context<'a> {
    resource: &'a Value,
    choices: &'a Choices,
}

/// `Resource` and `DomainResource` apply to every type (Bundle, Binary and
/// Parameters are not DomainResources, but no DomainResource parameter is
/// one the mock could index on them anyway).
fn applies(declared: &str, kind: &str) -> bool {
    declared == kind || declared == "Resource" || declared == "DomainResource"
}

fn is_of(item: &Item<'_>, kind: &str) -> bool {
    match item.kind {
        Some(found) => found.eq_ignore_ascii_case(kind),
        None => item.value.get("resourceType").and_then(Value::as_str) == Some(kind),
    }
}

/// The children called `name` of `value`, arrays flattened; a choice element
/// `value[x]` is found under its typed names (`valueQuantity`, …).
fn member<'a>(value: &'a Value, name: &str, choices: &'a Choices, out: &mut Vec<Item<'a>>) {
    let Value::Object(object) = value else {
        return;
    };
    let mut push = |child: &'a Value, kind: Option<&'a str>| match child {
        Value::Array(items) => out.extend(items.iter().map(|value| Item { value, kind })),
        _ => out.push(Item { value: child, kind }),
    };
    if let Some(child) = object.get(name) {
        push(child, None);
        return;
    }
    let Some(types) = choices.get(name) else {
        return;
    };
    for (key, child) in object {
        if let Some(suffix) = key.strip_prefix(name)
            && suffix.starts_with(|c: char| c.is_ascii_uppercase())
            && let Some(kind) = types.iter().find(|t| t.eq_ignore_ascii_case(suffix))
        {
            push(child, Some(kind));
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Text(String),
    Number(usize),
    Symbol(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '\'' => {
                let mut literal = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, '\\')) => literal.extend(chars.next().map(|(_, c)| c)),
                        Some((_, c)) => literal.push(c),
                        None => return Err(format!("unterminated string in {text:?}")),
                    }
                }
                tokens.push(Token::Text(literal));
            }
            '!' if chars.next_if(|(_, c)| *c == '=').is_some() => tokens.push(Token::Symbol("!=")),
            '.' | '|' | '(' | ')' | '[' | ']' | '=' | ',' => {
                let symbol = [".", "|", "(", ")", "[", "]", "=", ","]
                    .into_iter()
                    .find(|s| s.starts_with(c))
                    .unwrap_or(".");
                tokens.push(Token::Symbol(symbol));
            }
            c if c.is_ascii_digit() => {
                let mut end = start + 1;
                while let Some((i, _)) = chars.next_if(|(_, c)| c.is_ascii_digit()) {
                    end = i + 1;
                }
                let number = text[start..end]
                    .parse()
                    .map_err(|_| format!("bad number in {text:?}"))?;
                tokens.push(Token::Number(number));
            }
            c if c.is_alphabetic() || c == '_' || c == '$' || c == '%' => {
                let mut end = start + c.len_utf8();
                while let Some((i, c)) = chars.next_if(|(_, c)| c.is_alphanumeric() || *c == '_') {
                    end = i + c.len_utf8();
                }
                tokens.push(Token::Name(text[start..end].to_owned()));
            }
            other => return Err(format!("unexpected {other:?} in {text:?}")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn eat(&mut self, symbol: &str) -> bool {
        let found = matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol);
        if found {
            self.at += 1;
        }
        found
    }

    fn eat_name(&mut self, name: &str) -> bool {
        let found = matches!(self.peek(), Some(Token::Name(n)) if n == name);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, symbol: &str) -> Result<(), String> {
        if self.eat(symbol) {
            Ok(())
        } else {
            Err(format!("expected `{symbol}`, found {:?}", self.peek()))
        }
    }

    fn type_name(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Name(name)) => Ok(name),
            other => Err(format!("expected a type name, found {other:?}")),
        }
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.equality()?;
        while self.eat_name("and") {
            left = Expr::And(Box::new(left), Box::new(self.equality()?));
        }
        Ok(left)
    }

    fn equality(&mut self) -> Result<Expr, String> {
        let left = self.union()?;
        for (symbol, negated) in [("=", false), ("!=", true)] {
            if self.eat(symbol) {
                return Ok(Expr::Equals(Box::new(left), Box::new(self.union()?), negated));
            }
        }
        Ok(left)
    }

    fn union(&mut self) -> Result<Expr, String> {
        let mut arms = vec![self.typed()?];
        while self.eat("|") {
            arms.push(self.typed()?);
        }
        Ok(if arms.len() == 1 {
            arms.remove(0)
        } else {
            Expr::Union(arms)
        })
    }

    fn typed(&mut self) -> Result<Expr, String> {
        let inner = self.postfix()?;
        if self.eat_name("as") {
            return Ok(Expr::As(Box::new(inner), self.type_name()?));
        }
        if self.eat_name("is") {
            return Ok(Expr::Is(Box::new(inner), self.type_name()?));
        }
        Ok(inner)
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut expr = self.primary()?;
        loop {
            if self.eat(".") {
                expr = self.invocation(expr)?;
            } else if self.eat("[") {
                let Some(Token::Number(n)) = self.next() else {
                    return Err("an index must be a number".into());
                };
                self.expect("]")?;
                expr = Expr::Index(Box::new(expr), n);
            } else {
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Symbol("(")) => {
                let inner = self.and()?;
                self.expect(")")?;
                Ok(inner)
            }
            Some(Token::Text(text)) => Ok(Expr::Literal(Value::String(text))),
            Some(Token::Number(n)) => Ok(Expr::Literal(Value::from(n))),
            Some(Token::Name(name)) if name == "true" || name == "false" => {
                Ok(Expr::Literal(Value::Bool(name == "true")))
            }
            Some(Token::Name(name)) if name == "$this" => Ok(Expr::This),
            Some(Token::Name(name)) if name == "%resource" => Ok(Expr::Resource),
            Some(Token::Name(name)) if name.starts_with('%') => {
                Err(format!("the variable {name} is not supported"))
            }
            Some(Token::Name(name)) if name.starts_with(|c: char| c.is_ascii_uppercase()) => {
                Ok(Expr::OfResourceType(name))
            }
            Some(Token::Name(_)) => {
                self.at -= 1;
                self.invocation(Expr::This)
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }

    /// `name` or `function(arguments)` applied to `target`.
    fn invocation(&mut self, target: Expr) -> Result<Expr, String> {
        let Some(Token::Name(name)) = self.next() else {
            return Err("expected a name after `.`".into());
        };
        if !self.eat("(") {
            return Ok(Expr::Member(Box::new(target), name));
        }
        let target = Box::new(target);
        let expr = match name.as_str() {
            "where" => Expr::Where(target, Box::new(self.and()?)),
            "as" | "ofType" => Expr::As(target, self.type_name()?),
            "resolve" => Expr::Resolve(target),
            "exists" => Expr::Exists(target),
            "first" => Expr::First(target),
            other => return Err(format!("the FHIRPath function {other}() is not supported")),
        };
        self.expect(")")?;
        Ok(expr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::definitions::{R4, official_expressions};
    use serde_json::json;

    fn eval(expression: &str, resource: &Value) -> Vec<Value> {
        Expr::parse(expression)
            .unwrap()
            .evaluate(resource, &R4.choices)
            .into_iter()
            .map(|item| item.value.clone())
            .collect()
    }

    #[test]
    fn every_official_expression_compiles() {
        let expressions = official_expressions();
        let failures: Vec<String> = expressions
            .iter()
            .filter_map(|text| Expr::parse(text).err())
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
        assert!(expressions.len() > 1300);
    }

    #[test]
    fn paths_choices_and_filters() {
        let observation = json!({
            "resourceType": "Observation",
            "subject": {"reference": "Patient/1"},
            "performer": [{"reference": "Practitioner/2"}, {"reference": "https://x.org/fhir/Patient/3"}],
            "effectivePeriod": {"start": "2024"},
            "valueQuantity": {"value": 7},
            "component": [{"valueString": "a"}, {"valueQuantity": {"value": 9}}]
        });
        assert_eq!(
            eval("Observation.effective", &observation),
            [json!({"start": "2024"})]
        );
        assert_eq!(
            eval("(Observation.value as Quantity)", &observation),
            [json!({"value": 7})]
        );
        assert!(eval("(Observation.value as CodeableConcept)", &observation).is_empty());
        assert_eq!(
            eval("Observation.component.value.as(Quantity)", &observation),
            [json!({"value": 9})]
        );
        assert_eq!(
            eval("Observation.performer.where(resolve() is Patient)", &observation),
            [json!({"reference": "https://x.org/fhir/Patient/3"})]
        );
        assert!(eval("Patient.name", &observation).is_empty());
        assert_eq!(eval("Resource.id | Observation.subject", &observation).len(), 1);

        let patient = json!({"resourceType": "Patient", "deceasedBoolean": false,
            "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "b@x"}]});
        assert_eq!(
            eval("Patient.telecom.where(system='email')", &patient),
            [json!({"system": "email", "value": "b@x"})]
        );
        assert_eq!(
            eval(
                "Patient.deceased.exists() and Patient.deceased != false",
                &patient
            ),
            [json!(false)]
        );
        let dead = json!({"resourceType": "Patient", "deceasedDateTime": "2020"});
        assert_eq!(
            eval("Patient.deceased.exists() and Patient.deceased != false", &dead),
            [json!(true)]
        );
        let bundle = json!({"resourceType": "Bundle", "entry": [{"resource": {"id": "a"}}, {"resource": {"id": "b"}}]});
        assert_eq!(eval("Bundle.entry[0].resource", &bundle), [json!({"id": "a"})]);
    }

    #[test]
    fn shared_parameters_are_narrowed_to_their_type() {
        let expr =
            Expr::parse("AllergyIntolerance.patient | Observation.subject.where(resolve() is Patient)")
                .unwrap();
        assert_eq!(
            expr.for_type("Observation"),
            Expr::parse("Observation.subject.where(resolve() is Patient)").unwrap()
        );
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert!(
            Expr::parse("Patient.name.matches('x')")
                .unwrap_err()
                .contains("matches")
        );
        assert!(Expr::parse("Patient.name[").is_err());
        assert!(Expr::parse("'open").is_err());
    }
}
