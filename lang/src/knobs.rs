//! The percentages a program is steered by: every `split(..)` or `bucket(..)` compared with a
//! number, what share of traffic that comparison selects, and a rewrite of the number that
//! makes it select another share — so a slider can move a rollout without the user editing
//! text, and the rewritten program is still the user's own, only that literal changed.
//!
//! Shares are counted over the values the evaluator can see, with the evaluator's own
//! comparison, so they are exact rather than approximate: a split is one of the million values
//! `0.0000 ..= 99.9999`, a bucket one of `1 ..= 100`, each equally likely.

use super::ast::{Expr, LiteralKind, Op, Program, ValueKind};
use super::lexer::{self, Tok};
use super::span::{Span, line_col};
use serde::Serialize;
use std::fmt;

/// One comparison of a split or bucket with a number literal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Knob {
    /// Position in [`knobs`]'s list (0-based): what [`set_knob`] takes.
    pub index: usize,
    /// The 1-based rule it is in (`rule N` in explanations and metrics).
    pub rule: usize,
    pub name: Option<String>,
    pub function: Function,
    pub op: &'static str,
    /// The literal as written.
    pub value: f64,
    /// The percent of traffic this comparison selects (0 to 100).
    pub share: f64,
    /// 1-based line and column of the literal in the program text.
    pub line: usize,
    pub column: usize,
    #[serde(skip)]
    pub span: Span,
    #[serde(skip)]
    order: Order,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Function {
    Split,
    Bucket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Function {
    /// How many distinct values the function takes (all equally likely), and the n-th of them
    /// as the evaluator sees it.
    fn grid(self) -> u32 {
        match self {
            Function::Split => crate::bucket::SPLIT_VALUES,
            Function::Bucket => crate::bucket::BUCKET_VALUES,
        }
    }

    fn value(self, i: u32) -> f64 {
        match self {
            Function::Split => crate::bucket::split_value(i),
            Function::Bucket => f64::from(i + 1),
        }
    }
}

impl Order {
    fn of(op: Op) -> Option<Order> {
        match op {
            Op::Lt => Some(Order::Lt),
            Op::Le => Some(Order::Le),
            Op::Gt => Some(Order::Gt),
            Op::Ge => Some(Order::Ge),
            _ => None,
        }
    }

    /// The evaluator's comparison (`eval.rs`, `Check::Order`): false when incomparable.
    fn holds(self, seen: f64, bound: f64) -> bool {
        match self {
            Order::Lt => seen < bound,
            Order::Le => seen <= bound,
            Order::Gt => seen > bound,
            Order::Ge => seen >= bound,
        }
    }
}

/// How many of the function's values `value op bound` selects. The values are sorted, so the
/// ones below (`<`, `<=`) or above (`>`, `>=`) the bound form one run; a binary search finds
/// its edge with the same floating-point comparison the evaluator makes.
fn selected(function: Function, order: Order, bound: f64) -> u32 {
    let n = function.grid();
    let below = matches!(order, Order::Lt | Order::Le);
    // The first index where the comparison's answer flips.
    let (mut lo, mut hi) = (0u32, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if order.holds(function.value(mid), bound) == below {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if below { lo } else { n - lo }
}

/// The percent of traffic `function(..) op bound` selects.
fn share_of(function: Function, order: Order, bound: f64) -> f64 {
    let count = selected(function, order, bound);
    match function {
        // A count of parts per million is a percentage the way a split value is.
        Function::Split => crate::bucket::split_value(count),
        Function::Bucket => f64::from(count),
    }
}

/// Every knob of a program, in source order. A program that does not parse still has the
/// knobs of its rules that do (numbered by where each `match`/`default` keyword stands).
pub fn knobs(source: &str) -> Vec<Knob> {
    let mut errors = Vec::new();
    let tokens = lexer::lex(source, &mut errors);
    let starts: Vec<usize> = tokens
        .iter()
        .filter(|t| matches!(&t.tok, Tok::Ident(w) if w == "match" || w == "default"))
        .map(|t| t.span.start)
        .collect();
    let program: Program = super::parse(source);
    let mut out = Vec::new();
    for rule in &program.rules {
        let Some(cond) = &rule.condition else {
            continue;
        };
        let number = starts.partition_point(|&s| s <= rule.keyword.start);
        let name = rule.name.as_ref().map(|n| n.node.clone());
        walk(cond, &mut |function, order, op, value, span| {
            let (line, column, _) = line_col(source, span.start);
            out.push(Knob {
                index: out.len(),
                rule: number,
                name: name.clone(),
                function,
                op,
                value,
                share: share_of(function, order, value),
                line,
                column,
                span,
                order,
            });
        });
    }
    out
}

type Visit<'a> = dyn FnMut(Function, Order, &'static str, f64, Span) + 'a;

fn walk(expr: &Expr, visit: &mut Visit<'_>) {
    match expr {
        Expr::Or(terms) | Expr::And(terms) => {
            for t in terms {
                walk(t, visit);
            }
        }
        Expr::Not(inner) => walk(inner, visit),
        Expr::Compare { value, op, literal } => {
            let function = match value.node {
                ValueKind::Split { .. } => Function::Split,
                ValueKind::Bucket { .. } => Function::Bucket,
                _ => return,
            };
            if let (Some(order), LiteralKind::Num(n)) = (Order::of(op.node), &literal.node) {
                visit(function, order, op.node.spelling(), *n, literal.span);
            }
        }
        Expr::Exists(_) | Expr::Bare(_) | Expr::Invalid => {}
    }
}

/// Why a knob cannot be set.
#[derive(Debug, Clone, PartialEq)]
pub enum KnobError {
    NoSuchKnob { index: usize, count: usize },
    Share(f64),
}

impl fmt::Display for KnobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KnobError::NoSuchKnob { index, count } => write!(
                f,
                "no knob {index}: the program has {count} (split or bucket compared with a number)"
            ),
            KnobError::Share(s) => write!(f, "share {s} is not a percentage from 0 to 100"),
        }
    }
}

/// The program with knob `index`'s literal rewritten so the comparison selects `share` percent
/// (rounded to what the function can express: 0.0001 for a split, 1 for a bucket). Nothing else
/// in the text changes.
pub fn set_knob(source: &str, index: usize, share: f64) -> Result<String, KnobError> {
    if !(0.0..=100.0).contains(&share) {
        return Err(KnobError::Share(share));
    }
    let all = knobs(source);
    let knob = all.get(index).ok_or(KnobError::NoSuchKnob {
        index,
        count: all.len(),
    })?;
    let literal = literal_for(knob.function, knob.order, share);
    let mut out = String::with_capacity(source.len() + 8);
    out.push_str(source.get(..knob.span.start).unwrap_or(""));
    out.push_str(&literal);
    out.push_str(source.get(knob.span.end..).unwrap_or(""));
    Ok(out)
}

/// The literal, as the language spells it, for which `function(..) order literal` selects
/// `share` percent. Counting in grid steps keeps it exact: `n` of the function's values wanted.
fn literal_for(function: Function, order: Order, share: f64) -> String {
    let grid = i64::from(function.grid());
    let step = match function {
        Function::Split => 10_000.0,
        Function::Bucket => 1.0,
    };
    // 0..=grid, so the float-to-int conversion is exact.
    let n = ((share * step).round() as i64).clamp(0, grid);
    // In grid steps: split step k is the value k/10,000; bucket step k is the value k+1.
    let k = match order {
        Order::Lt => n,            // values at steps 0..n
        Order::Le => n - 1,        // steps 0..=n-1
        Order::Gt => grid - n - 1, // steps above grid-n-1
        Order::Ge => grid - n,     // steps grid-n..
    };
    match function {
        Function::Split => decimal(k),
        Function::Bucket => (k + 1).to_string(),
    }
}

/// `k` ten-thousandths as a decimal without trailing zeros: 300000 → `30`, 1 → `0.0001`,
/// -1 → `-0.0001`.
fn decimal(k: i64) -> String {
    let sign = if k < 0 { "-" } else { "" };
    let k = k.unsigned_abs();
    let (whole, frac) = (k / 10_000, k % 10_000);
    if frac == 0 {
        format!("{sign}{whole}")
    } else {
        let frac = format!("{frac:04}");
        format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Counted one value at a time, with no binary search: the reference `selected` must match.
    fn brute(function: Function, order: Order, bound: f64) -> u32 {
        (0..function.grid())
            .filter(|&i| order.holds(function.value(i), bound))
            .count() as u32
    }

    const ORDERS: [Order; 4] = [Order::Lt, Order::Le, Order::Gt, Order::Ge];

    #[wasm_bindgen_test(unsupported = test)]
    fn shares_follow_the_rule_of_thumb() {
        let share = |f, o, b| share_of(f, o, b);
        // split: `< x` selects x percent, `> x` the rest, `<=` one millionth more.
        assert_eq!(share(Function::Split, Order::Lt, 30.0), 30.0);
        assert_eq!(share(Function::Split, Order::Le, 30.0), 30.0001);
        assert_eq!(share(Function::Split, Order::Gt, 30.0), 69.9999);
        assert_eq!(share(Function::Split, Order::Ge, 30.0), 70.0);
        assert_eq!(share(Function::Split, Order::Lt, 0.1), 0.1);
        assert_eq!(share(Function::Split, Order::Lt, 0.0), 0.0);
        assert_eq!(share(Function::Split, Order::Lt, 100.0), 100.0);
        assert_eq!(share(Function::Split, Order::Ge, -5.0), 100.0);
        // bucket 1..=100: `<= x` selects x, `< x` x-1, `>= x` 101-x, `> x` 100-x.
        assert_eq!(share(Function::Bucket, Order::Le, 30.0), 30.0);
        assert_eq!(share(Function::Bucket, Order::Lt, 30.0), 29.0);
        assert_eq!(share(Function::Bucket, Order::Ge, 30.0), 71.0);
        assert_eq!(share(Function::Bucket, Order::Gt, 30.0), 70.0);
        assert_eq!(share(Function::Bucket, Order::Le, 0.0), 0.0);
        assert_eq!(share(Function::Bucket, Order::Le, 250.0), 100.0);
        assert_eq!(share(Function::Bucket, Order::Lt, 10.5), 10.0);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn counting_by_search_equals_counting_every_value() {
        let bounds = [
            -1.0, 0.0, 0.0001, 0.0003, 0.1, 0.29, 1.0, 2.5, 33.3333, 50.0, 99.9999, 100.0, 101.0,
        ];
        for f in [Function::Split, Function::Bucket] {
            for o in ORDERS {
                for b in bounds {
                    assert_eq!(selected(f, o, b), brute(f, o, b), "{f:?} {o:?} {b}");
                }
            }
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn finds_every_split_and_bucket_compared_with_a_number() {
        let src = "match \"beta\" { split(header[\"x-user-id\"], \"beta\") < 12.5 } -> \"beta\"\n\
                   match { header[\"x\"] == \"1\" && !(bucket(header[\"x-user-id\"], \"c\") >= 91) } -> \"canary\"\n\
                   match { split(\"g\") == 3 || bucket(cookie[\"u\"], \"g\") <= 5 || header[\"n\"] < 4 } -> \"blue\"\n\
                   default -> \"stable\"\n";
        let k = knobs(src);
        assert_eq!(k.len(), 3, "{k:#?}");
        assert_eq!(
            (k[0].index, k[0].rule, k[0].name.as_deref()),
            (0, 1, Some("beta"))
        );
        assert_eq!(
            (k[0].function, k[0].op, k[0].value),
            (Function::Split, "<", 12.5)
        );
        assert_eq!(k[0].share, 12.5);
        assert_eq!((k[0].line, k[0].column), (1, 53));
        assert_eq!(k[0].span.text(src), "12.5");
        assert_eq!(
            (k[1].rule, k[1].function, k[1].op),
            (2, Function::Bucket, ">=")
        );
        assert_eq!((k[1].share, k[1].line), (10.0, 2));
        assert_eq!((k[2].rule, k[2].op, k[2].share), (3, "<=", 5.0));
        let json = serde_json::to_value(&k[1]).unwrap_or_default();
        assert_eq!(json["function"], "bucket");
        assert_eq!(json["name"], serde_json::Value::Null);
        assert!(json.get("span").is_none());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn set_knob_rewrites_only_the_literal() {
        let src = "match { split(\"g\") < 5 } -> \"canary\"\ndefault -> \"stable\"\n";
        let out = set_knob(src, 0, 30.0);
        assert_eq!(
            out.as_deref(),
            Ok("match { split(\"g\") < 30 } -> \"canary\"\ndefault -> \"stable\"\n")
        );
        assert_eq!(
            set_knob(src, 0, 0.05).as_deref(),
            Ok("match { split(\"g\") < 0.05 } -> \"canary\"\ndefault -> \"stable\"\n")
        );
        // Finer than a split can express: rounded to 0.0001.
        assert_eq!(
            knobs(&set_knob(src, 0, 12.345_67).unwrap_or_default())[0].value,
            12.3457
        );
        assert_eq!(
            set_knob(src, 1, 3.0),
            Err(KnobError::NoSuchKnob { index: 1, count: 1 })
        );
        assert_eq!(set_knob(src, 0, 100.5), Err(KnobError::Share(100.5)));
        assert!(set_knob(src, 0, f64::NAN).is_err());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn every_share_is_reached_exactly_with_every_operator() {
        for f in [Function::Split, Function::Bucket] {
            for o in ORDERS {
                let steps: &[f64] = match f {
                    Function::Split => &[0.0, 0.0001, 0.1, 29.9999, 30.0, 50.0, 99.9999, 100.0],
                    Function::Bucket => &[0.0, 1.0, 30.0, 99.0, 100.0],
                };
                for &share in steps {
                    let literal = literal_for(f, o, share);
                    let bound: f64 = literal.parse().unwrap_or(f64::NAN);
                    assert_eq!(
                        share_of(f, o, bound),
                        share,
                        "{f:?} {o:?} {share} -> {literal}"
                    );
                }
            }
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn decimals_are_spelled_as_the_lexer_reads_them() {
        assert_eq!(decimal(300_000), "30");
        assert_eq!(decimal(1), "0.0001");
        assert_eq!(decimal(-1), "-0.0001");
        assert_eq!(decimal(125_000), "12.5");
        assert_eq!(decimal(1_000_000), "100");
    }
}
