//! What Sluice adds to CEL for conditions: Argo's helpers (`len`, `isNaN`, `isInf`, `isNil`,
//! `asInt`, `asFloat`, `default`), numeric promotion for arithmetic and ordering, the check of
//! names at compile time, and the conversion of a JSON result into a CEL value. Pure; touches
//! only the `cel` crate's AST and values.
//!
//! Why promotion: CEL has no implicit int/double conversion (`1 + 1.5` is an error), while
//! Argo's expr language converts freely and users write `result * 100 > 5`. The parsed tree's
//! arithmetic, ordering and equality operators are redirected to functions of ours that
//! compute on doubles when either side is a double (int with int stays int, `/` is always a
//! double division as in expr; the interpreter's own `==` says `5 == 5.0` is false). The
//! function names start with `@`, which no CEL source can spell.

use cel::common::ast::{Expr, operators};
use cel::objects::{Key, Map};
use cel::{Context, ExecutionError, Value, extractors::Arguments, parser::Expression};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

const ADD: &str = "@add";
const SUB: &str = "@sub";
const MUL: &str = "@mul";
const DIV: &str = "@div";
const REM: &str = "@rem";
const LT: &str = "@lt";
const LE: &str = "@le";
const GT: &str = "@gt";
const GE: &str = "@ge";
const EQ: &str = "@eq";
const NE: &str = "@ne";

/// Functions a condition may call: CEL's standard ones this crate provides, and Argo's.
const KNOWN_FUNCTIONS: &[&str] = &[
    // CEL
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "string",
    "double",
    "int",
    "max",
    "min",
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    // Argo / expr
    "len",
    "isNaN",
    "isInf",
    "isNil",
    "asInt",
    "asFloat",
    "default",
];

/// Variables a condition sees besides the ones a macro binds.
const KNOWN_VARIABLES: &[&str] = &["result", "nil"];

/// Redirects arithmetic and ordering to the promoting functions, everywhere in the tree.
pub(super) fn promote(expr: &mut Expression) {
    match &mut expr.expr {
        Expr::Call(call) => {
            if call.target.is_none()
                && call.args.len() == 2
                && let Some(ours) = promoted(&call.func_name)
            {
                call.func_name = ours.to_string();
            }
            if let Some(target) = &mut call.target {
                promote(target);
            }
            call.args.iter_mut().for_each(promote);
        }
        Expr::Comprehension(c) => {
            for e in [
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ] {
                promote(e);
            }
        }
        Expr::List(list) => list.elements.iter_mut().for_each(promote),
        Expr::Select(select) => promote(&mut select.operand),
        Expr::Map(map) => {
            for entry in &mut map.entries {
                if let cel::common::ast::EntryExpr::MapEntry(e) = &mut entry.expr {
                    promote(&mut e.key);
                    promote(&mut e.value);
                }
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Struct(_) | Expr::Unspecified => {}
    }
}

fn promoted(operator: &str) -> Option<&'static str> {
    Some(match operator {
        operators::ADD => ADD,
        operators::SUBSTRACT => SUB,
        operators::MULTIPLY => MUL,
        operators::DIVIDE => DIV,
        operators::MODULO => REM,
        operators::LESS => LT,
        operators::LESS_EQUALS => LE,
        operators::GREATER => GT,
        operators::GREATER_EQUALS => GE,
        operators::EQUALS => EQ,
        operators::NOT_EQUALS => NE,
        _ => return None,
    })
}

/// The first unknown function or free variable of the tree, as a message.
pub(super) fn unknown_name(expr: &Expression) -> Option<String> {
    let mut bound = BTreeSet::new();
    first_unknown(expr, &mut bound)
}

fn first_unknown(expr: &Expression, bound: &mut BTreeSet<String>) -> Option<String> {
    match &expr.expr {
        Expr::Call(call) => {
            let name = call.func_name.as_str();
            let operator = name.starts_with('_') || name.starts_with('@') || name.ends_with('_');
            if !operator && !KNOWN_FUNCTIONS.contains(&name) {
                return Some(format!("unknown function {name:?}"));
            }
            call.target
                .iter()
                .map(|t| t.as_ref())
                .chain(call.args.iter())
                .find_map(|e| first_unknown(e, bound))
        }
        Expr::Comprehension(c) => {
            let outer = [&c.iter_range, &c.accu_init]
                .into_iter()
                .find_map(|e| first_unknown(e, bound));
            if outer.is_some() {
                return outer;
            }
            let mut inner = bound.clone();
            inner.insert(c.iter_var.clone());
            inner.extend(c.iter_var2.clone());
            inner.insert(c.accu_var.clone());
            [&c.loop_cond, &c.loop_step, &c.result]
                .into_iter()
                .find_map(|e| first_unknown(e, &mut inner))
        }
        Expr::Ident(name) => (!KNOWN_VARIABLES.contains(&name.as_str()) && !bound.contains(name))
            .then(|| format!("unknown name {name:?} (conditions see `result`)")),
        Expr::List(list) => list.elements.iter().find_map(|e| first_unknown(e, bound)),
        Expr::Select(select) => first_unknown(&select.operand, bound),
        Expr::Map(map) => map.entries.iter().find_map(|entry| match &entry.expr {
            cel::common::ast::EntryExpr::MapEntry(e) => {
                first_unknown(&e.key, bound).or_else(|| first_unknown(&e.value, bound))
            }
            cel::common::ast::EntryExpr::StructField(f) => first_unknown(&f.value, bound),
        }),
        Expr::Struct(s) => Some(format!(
            "message construction {:?} is not supported",
            s.type_name
        )),
        Expr::Literal(_) | Expr::Unspecified => None,
    }
}

/// A context holding `result`, `nil` and every helper.
pub(super) fn context(result: Value) -> Context<'static> {
    let mut ctx = Context::default();
    ctx.add_variable_from_value("result", result);
    ctx.add_variable_from_value("nil", Value::Null);
    ctx.add_function("len", len);
    ctx.add_function("isNaN", is_nan);
    ctx.add_function("isInf", is_inf);
    ctx.add_function("isNil", is_nil);
    ctx.add_function("asInt", as_int);
    ctx.add_function("asFloat", as_float);
    ctx.add_function("default", default);
    ctx.add_function(ADD, add);
    ctx.add_function(SUB, sub);
    ctx.add_function(MUL, mul);
    ctx.add_function(DIV, div);
    ctx.add_function(REM, rem);
    ctx.add_function(LT, lt);
    ctx.add_function(LE, le);
    ctx.add_function(GT, gt);
    ctx.add_function(GE, ge);
    ctx.add_function(EQ, eq);
    ctx.add_function(NE, ne);
    ctx
}

/// A JSON result as CEL sees it. Every JSON number is a double, as Go's `encoding/json` reads
/// it for Argo. JSON cannot carry NaN or infinities, so a provider passes them as the strings
/// `"NaN"`, `"+Inf"`, `"-Inf"` (Prometheus' own spelling), which become those doubles.
pub(super) fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => Value::Float(f64::NAN),
            "+Inf" | "Inf" => Value::Float(f64::INFINITY),
            "-Inf" => Value::Float(f64::NEG_INFINITY),
            _ => Value::String(Arc::new(s.clone())),
        },
        serde_json::Value::Array(items) => {
            Value::List(Arc::new(items.iter().map(from_json).collect()))
        }
        serde_json::Value::Object(fields) => {
            let map: HashMap<Key, Value> = fields
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), from_json(v)))
                .collect();
            Value::Map(Map::from(map))
        }
    }
}

type Outcome = Result<Value, ExecutionError>;

fn one<'a>(name: &str, args: &'a Arguments) -> Result<&'a Value, ExecutionError> {
    match args.0.as_slice() {
        [value] => Ok(value),
        other => Err(ExecutionError::function_error(
            name,
            format!("takes one argument, got {}", other.len()),
        )),
    }
}

fn two<'a>(name: &str, args: &'a Arguments) -> Result<(&'a Value, &'a Value), ExecutionError> {
    match args.0.as_slice() {
        [a, b] => Ok((a, b)),
        other => Err(ExecutionError::function_error(
            name,
            format!("takes two arguments, got {}", other.len()),
        )),
    }
}

fn len(args: Arguments) -> Outcome {
    let n = match one("len", &args)? {
        Value::List(items) => items.len(),
        Value::Map(map) => map.map.len(),
        Value::String(s) => s.chars().count(),
        other => {
            return Err(ExecutionError::function_error(
                "len",
                format!("needs a list, map or string, got {other:?}"),
            ));
        }
    };
    Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn number(name: &str, value: &Value) -> Result<f64, ExecutionError> {
    match value {
        Value::Float(f) => Ok(*f),
        // Precision loss above 2^53 is accepted: the value is compared, not stored.
        #[allow(clippy::cast_precision_loss)]
        Value::Int(i) => Ok(*i as f64),
        #[allow(clippy::cast_precision_loss)]
        Value::UInt(u) => Ok(*u as f64),
        other => Err(ExecutionError::function_error(
            name,
            format!("needs a number, got {other:?}"),
        )),
    }
}

fn is_nan(args: Arguments) -> Outcome {
    Ok(Value::Bool(number("isNaN", one("isNaN", &args)?)?.is_nan()))
}

fn is_inf(args: Arguments) -> Outcome {
    Ok(Value::Bool(
        number("isInf", one("isInf", &args)?)?.is_infinite(),
    ))
}

fn is_nil(args: Arguments) -> Outcome {
    Ok(Value::Bool(matches!(one("isNil", &args)?, Value::Null)))
}

fn as_int(args: Arguments) -> Outcome {
    match one("asInt", &args)? {
        Value::Int(i) => Ok(Value::Int(*i)),
        // Truncation towards zero, as Go's int64(float64) conversion.
        #[allow(clippy::cast_possible_truncation)]
        Value::Float(f) if f.is_finite() => Ok(Value::Int(f.trunc() as i64)),
        Value::String(s) => s.trim().parse::<i64>().map(Value::Int).map_err(|e| {
            ExecutionError::function_error("asInt", format!("{s:?} is not an integer: {e}"))
        }),
        other => Err(ExecutionError::function_error(
            "asInt",
            format!("cannot convert {other:?} to an integer"),
        )),
    }
}

fn as_float(args: Arguments) -> Outcome {
    match one("asFloat", &args)? {
        Value::String(s) => s.trim().parse::<f64>().map(Value::Float).map_err(|e| {
            ExecutionError::function_error("asFloat", format!("{s:?} is not a number: {e}"))
        }),
        other => number("asFloat", other).map(Value::Float),
    }
}

fn default(args: Arguments) -> Outcome {
    let (value, fallback) = two("default", &args)?;
    Ok(match value {
        Value::Null => fallback.clone(),
        other => other.clone(),
    })
}

/// Both sides as doubles when either is a double and both are numbers.
fn mixed(a: &Value, b: &Value) -> Option<(f64, f64)> {
    let numeric = |v: &Value| matches!(v, Value::Int(_) | Value::UInt(_) | Value::Float(_));
    let either_float = matches!(a, Value::Float(_)) || matches!(b, Value::Float(_));
    if numeric(a) && numeric(b) && either_float {
        Some((number("", a).ok()?, number("", b).ok()?))
    } else {
        None
    }
}

fn arithmetic(
    name: &str,
    args: &Arguments,
    on_doubles: fn(f64, f64) -> f64,
    otherwise: fn(Value, Value) -> Outcome,
) -> Outcome {
    let (a, b) = two(name, args)?;
    match mixed(a, b) {
        Some((x, y)) => Ok(Value::Float(on_doubles(x, y))),
        None => otherwise(a.clone(), b.clone()),
    }
}

fn add(args: Arguments) -> Outcome {
    arithmetic("+", &args, |x, y| x + y, |a, b| a + b)
}

fn sub(args: Arguments) -> Outcome {
    arithmetic("-", &args, |x, y| x - y, |a, b| a - b)
}

fn mul(args: Arguments) -> Outcome {
    arithmetic("*", &args, |x, y| x * y, |a, b| a * b)
}

fn rem(args: Arguments) -> Outcome {
    arithmetic("%", &args, |x, y| x % y, |a, b| a % b)
}

/// Division is on doubles whenever both sides are numbers (`5 / 2 == 2.5`), as in expr.
fn div(args: Arguments) -> Outcome {
    let (a, b) = two("/", &args)?;
    match (number("/", a), number("/", b)) {
        (Ok(x), Ok(y)) => Ok(Value::Float(x / y)),
        _ => a.clone() / b.clone(),
    }
}

/// Orders two values; numbers of either type compare as numbers, and any comparison with NaN
/// is false (never an error), as in Go.
fn order(name: &str, args: &Arguments, holds: fn(std::cmp::Ordering) -> bool) -> Outcome {
    let (a, b) = two(name, args)?;
    if let Some((x, y)) = mixed(a, b) {
        return Ok(Value::Bool(x.partial_cmp(&y).is_some_and(holds)));
    }
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(Value::Bool(holds(x.cmp(y)))),
        (Value::UInt(x), Value::UInt(y)) => Ok(Value::Bool(holds(x.cmp(y)))),
        (Value::Int(x), Value::UInt(y)) => {
            Ok(Value::Bool(holds(i128::from(*x).cmp(&i128::from(*y)))))
        }
        (Value::UInt(x), Value::Int(y)) => {
            Ok(Value::Bool(holds(i128::from(*x).cmp(&i128::from(*y)))))
        }
        (Value::String(x), Value::String(y)) => Ok(Value::Bool(holds(x.cmp(y)))),
        (Value::Bool(x), Value::Bool(y)) => Ok(Value::Bool(holds(x.cmp(y)))),
        _ => Err(ExecutionError::ValuesNotComparable(a.clone(), b.clone())),
    }
}

fn lt(args: Arguments) -> Outcome {
    order("<", &args, std::cmp::Ordering::is_lt)
}

fn le(args: Arguments) -> Outcome {
    order("<=", &args, std::cmp::Ordering::is_le)
}

fn gt(args: Arguments) -> Outcome {
    order(">", &args, std::cmp::Ordering::is_gt)
}

fn ge(args: Arguments) -> Outcome {
    order(">=", &args, std::cmp::Ordering::is_ge)
}

/// Equality of values, numbers by value whatever their type (`5 == 5.0`), also inside lists
/// and maps.
fn eq(args: Arguments) -> Outcome {
    let (a, b) = two("==", &args)?;
    Ok(Value::Bool(a == b))
}

fn ne(args: Arguments) -> Outcome {
    let (a, b) = two("!=", &args)?;
    Ok(Value::Bool(a != b))
}
