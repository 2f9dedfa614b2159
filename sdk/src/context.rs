//! osquery's query context, the JSON a table's `generate` call carries in its `context` key:
//! `{"constraints": [{"name": column, "affinity": type, "list": [{"op": code, "expr":
//! text}]}], "colsUsed": [column, ...]}`. The manager writes it ([`Context::to_json`]); a
//! table plugin reads it ([`Context::parse`]) to narrow what it generates. SQLite checks every
//! constraint again on the rows returned, so a plugin may ignore any of them.

use serde_json::{Value, json};

/// A constraint's operator, with osquery's codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=` (2)
    Eq,
    /// `>` (4)
    Gt,
    /// `<=` (8)
    Le,
    /// `<` (16)
    Lt,
    /// `>=` (32)
    Ge,
    /// `LIKE` (65)
    Like,
    /// `GLOB` (66)
    Glob,
    /// `!=` (68)
    Ne,
    /// A code this crate does not know (passed on as it came).
    Other(i64),
}

impl Op {
    /// osquery's code of the operator.
    pub fn code(self) -> i64 {
        match self {
            Op::Eq => 2,
            Op::Gt => 4,
            Op::Le => 8,
            Op::Lt => 16,
            Op::Ge => 32,
            Op::Like => 65,
            Op::Glob => 66,
            Op::Ne => 68,
            Op::Other(c) => c,
        }
    }

    /// The operator of osquery's code `c`.
    pub fn from_code(c: i64) -> Self {
        match c {
            2 => Op::Eq,
            4 => Op::Gt,
            8 => Op::Le,
            16 => Op::Lt,
            32 => Op::Ge,
            65 => Op::Like,
            66 => Op::Glob,
            68 => Op::Ne,
            c => Op::Other(c),
        }
    }
}

/// One constraint of the statement on a column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    pub column: String,
    pub op: Op,
    /// The value compared with, as text.
    pub expr: String,
}

/// The constraints and the columns a statement uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    pub constraints: Vec<Constraint>,
    pub columns_used: Vec<String>,
    /// Each constrained column's type name (osquery's "affinity"), in order of first use.
    pub affinity: Vec<(String, String)>,
}

impl Context {
    /// The values of `column = value` constraints.
    pub fn equals<'a>(&'a self, column: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.constraints
            .iter()
            .filter(move |c| c.column == column && c.op == Op::Eq)
            .map(|c| c.expr.as_str())
    }

    /// The constraints on `column`.
    pub fn on<'a>(&'a self, column: &'a str) -> impl Iterator<Item = &'a Constraint> + 'a {
        self.constraints.iter().filter(move |c| c.column == column)
    }

    /// Whether the statement uses `column` (true when the manager sent no list).
    pub fn uses(&self, column: &str) -> bool {
        self.columns_used.is_empty() || self.columns_used.iter().any(|c| c == column)
    }

    /// The context as osquery writes it: constraints grouped by column, in order.
    pub fn to_json(&self) -> String {
        let mut groups: Vec<(&str, Vec<Value>)> = Vec::new();
        for c in &self.constraints {
            let item = json!({"op": c.op.code(), "expr": c.expr});
            match groups.iter_mut().find(|(n, _)| *n == c.column) {
                Some((_, list)) => list.push(item),
                None => groups.push((&c.column, vec![item])),
            }
        }
        let constraints: Vec<Value> = groups
            .into_iter()
            .map(|(name, list)| {
                let affinity = self
                    .affinity
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or("TEXT", |(_, t)| t.as_str());
                json!({"name": name, "list": list, "affinity": affinity})
            })
            .collect();
        json!({"constraints": constraints, "colsUsed": self.columns_used}).to_string()
    }

    /// Reads a context. Fields of other shapes are skipped (osquery versions differ: `op` may
    /// be a number or a numeric string, `expr` a string or a number); only text that is not
    /// JSON, or JSON that is not an object, is an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let v: Value = serde_json::from_str(text).map_err(|e| format!("context: {e}"))?;
        let Value::Object(o) = v else {
            return Err("context: not a JSON object".to_owned());
        };
        let mut ctx = Self::default();
        for group in o
            .get("constraints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(name) = group.get("name").and_then(Value::as_str) else {
                continue;
            };
            if let Some(t) = group.get("affinity").and_then(Value::as_str) {
                ctx.affinity.push((name.to_owned(), t.to_owned()));
            }
            for item in group
                .get("list")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let op = match item.get("op") {
                    Some(Value::Number(n)) => n.as_i64(),
                    Some(Value::String(s)) => s.trim().parse().ok(),
                    _ => None,
                };
                let expr = match item.get("expr") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
                    _ => None,
                };
                if let (Some(op), Some(expr)) = (op, expr) {
                    ctx.constraints.push(Constraint {
                        column: name.to_owned(),
                        op: Op::from_code(op),
                        expr,
                    });
                }
            }
        }
        ctx.columns_used = o
            .get("colsUsed")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect();
        Ok(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_reads_back_as_it_was_written() {
        let ctx = Context {
            constraints: vec![
                Constraint {
                    column: "n".into(),
                    op: Op::Gt,
                    expr: "3".into(),
                },
                Constraint {
                    column: "name".into(),
                    op: Op::Like,
                    expr: "a%".into(),
                },
                Constraint {
                    column: "n".into(),
                    op: Op::Le,
                    expr: "9".into(),
                },
            ],
            columns_used: vec!["n".into(), "name".into()],
            affinity: vec![
                ("n".into(), "INTEGER".into()),
                ("name".into(), "TEXT".into()),
            ],
        };
        let text = ctx.to_json();
        assert_eq!(
            text,
            r#"{"constraints":[{"name":"n","list":[{"op":4,"expr":"3"},{"op":8,"expr":"9"}],"affinity":"INTEGER"},{"name":"name","list":[{"op":65,"expr":"a%"}],"affinity":"TEXT"}],"colsUsed":["n","name"]}"#
        );
        let back = Context::parse(&text).unwrap();
        // Grouped by column on the way out.
        assert_eq!(back.constraints.len(), 3);
        assert_eq!(back.equals("n").count(), 0);
        assert_eq!(
            back.on("n")
                .map(|c| (c.op, c.expr.as_str()))
                .collect::<Vec<_>>(),
            [(Op::Gt, "3"), (Op::Le, "9")]
        );
        assert!(back.uses("name") && !back.uses("other"));
    }

    #[test]
    fn other_shapes_are_skipped_and_only_non_objects_are_errors() {
        let ctx = Context::parse(
            r#"{"constraints":[{"name":"a","list":[{"op":"2","expr":7},{"op":[],"expr":"x"}]},{"list":[]},5],"colsUsed":[1,"a"]}"#,
        )
        .unwrap();
        assert_eq!(ctx.equals("a").collect::<Vec<_>>(), ["7"]);
        assert_eq!(ctx.columns_used, ["a"]);
        assert_eq!(Context::parse("").unwrap(), Context::default());
        assert_eq!(
            Context::parse("[1]").unwrap_err(),
            "context: not a JSON object"
        );
        assert!(Context::parse("{").unwrap_err().starts_with("context: "));
    }
}
