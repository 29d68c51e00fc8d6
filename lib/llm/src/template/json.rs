//! JSON filters with Python's `json.dumps` output, as Hugging Face chat templates expect.

use std::fmt::Write as _;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, ErrorKind, Value};

/// `value | tojson(indent=None, sort_keys=False, ensure_ascii=False, separators=None)`.
///
/// Matches transformers' `tojson` (a thin wrapper over `json.dumps`): `", "` and `": "`
/// separators, keys in insertion order, non-ASCII kept as is, floats written like Python's
/// `repr` (`1.0`, `1e-05`). Unlike minijinja's built-in filter it does not HTML-escape.
#[expect(
    clippy::needless_pass_by_value,
    reason = "minijinja hands keyword arguments to filters by value"
)]
pub(crate) fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<Value> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;

    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_owned(),
            None => " ".repeat(usize::try_from(v).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: indent must be a count or a string",
                )
            })?),
        }),
    };
    let (item_sep, key_sep) = match separators.as_deref() {
        Some([item, key]) => (item.clone(), key.clone()),
        Some(_) => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "tojson: separators must be a pair of strings",
            ));
        }
        None if indent.is_some() => (",".to_owned(), ": ".to_owned()),
        None => (", ".to_owned(), ": ".to_owned()),
    };
    let mut writer = PyJson {
        out: String::new(),
        indent,
        item_sep,
        key_sep,
        sort_keys: sort_keys.unwrap_or(false),
        ensure_ascii: ensure_ascii.unwrap_or(false),
    };
    writer.value(value, 0)?;
    Ok(Value::from_safe_string(writer.out))
}

/// `text | fromjson`: parses a JSON string into a value.
pub(crate) fn fromjson(text: &str) -> Result<Value, Error> {
    serde_json::from_str::<serde_json::Value>(text)
        .map(Value::from_serialize)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("fromjson: {e}")))
}

struct PyJson {
    out: String,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
    ensure_ascii: bool,
}

impl PyJson {
    fn value(&mut self, value: &Value, depth: usize) -> Result<(), Error> {
        match value.kind() {
            ValueKind::Undefined | ValueKind::None => self.out.push_str("null"),
            ValueKind::Bool => self
                .out
                .push_str(if value.is_true() { "true" } else { "false" }),
            ValueKind::Number => self.number(value),
            ValueKind::String => self.string(value.as_str().unwrap_or_default()),
            ValueKind::Bytes => {
                self.string(&String::from_utf8_lossy(
                    value.as_bytes().unwrap_or_default(),
                ));
            }
            ValueKind::Map => {
                let mut entries = Vec::new();
                for key in value.try_iter()? {
                    let item = value.get_item(&key)?;
                    entries.push((key_string(&key), item));
                }
                if self.sort_keys {
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                }
                self.container('{', '}', entries.len(), depth, |w, i| {
                    w.string(&entries[i].0);
                    w.out.push_str(&w.key_sep.clone());
                    w.value(&entries[i].1, depth + 1)
                })?;
            }
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = value.try_iter()?.collect();
                self.container('[', ']', items.len(), depth, |w, i| {
                    w.value(&items[i], depth + 1)
                })?;
            }
            ValueKind::Plain | ValueKind::Invalid | _ => self.string(&value.to_string()),
        }
        Ok(())
    }

    fn container(
        &mut self,
        open: char,
        close: char,
        len: usize,
        depth: usize,
        mut item: impl FnMut(&mut Self, usize) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.out.push(open);
        if len == 0 {
            self.out.push(close);
            return Ok(());
        }
        for i in 0..len {
            if i > 0 {
                self.out.push_str(&self.item_sep.clone());
            }
            self.newline(depth + 1);
            item(self, i)?;
        }
        self.newline(depth);
        self.out.push(close);
        Ok(())
    }

    fn newline(&mut self, depth: usize) {
        if let Some(indent) = &self.indent {
            self.out.push('\n');
            for _ in 0..depth {
                self.out.push_str(indent);
            }
        }
    }

    fn number(&mut self, value: &Value) {
        if value.is_integer() {
            let _ = write!(self.out, "{value}");
            return;
        }
        let x = f64::try_from(value.clone()).unwrap_or(f64::NAN);
        self.out.push_str(&python_float(x));
    }

    fn string(&mut self, s: &str) {
        let quoted = serde_json::to_string(s).expect("a str always serializes");
        if !self.ensure_ascii || s.is_ascii() {
            self.out.push_str(&quoted);
            return;
        }
        for c in quoted.chars() {
            if c.is_ascii() {
                self.out.push(c);
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(self.out, "\\u{unit:04x}");
                }
            }
        }
    }
}

/// Python's `json.dumps` turns non-string keys into strings.
fn key_string(key: &Value) -> String {
    match key.kind() {
        ValueKind::String => key.as_str().unwrap_or_default().to_owned(),
        ValueKind::None | ValueKind::Undefined => "null".to_owned(),
        ValueKind::Bool => if key.is_true() { "true" } else { "false" }.to_owned(),
        _ => key.to_string(),
    }
}

/// A float as Python's `json.dumps` writes it: `repr` digits, `Infinity`/`NaN`.
fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    // Rust's Debug is the shortest round-trip form and switches to exponent notation at the
    // same thresholds as Python's repr; only the exponent spelling differs (1e16 vs 1e+16).
    let repr = format!("{x:?}");
    match repr.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => repr,
    }
}

#[cfg(test)]
mod tests {
    use minijinja::{Environment, context};

    use super::*;

    fn render(template: &str, value: serde_json::Value) -> String {
        let mut env = Environment::new();
        env.add_filter("tojson", tojson);
        env.add_filter("fromjson", fromjson);
        env.render_str(template, context! { x => Value::from_serialize(value) })
            .unwrap()
    }

    #[test]
    fn tojson_spaces_like_python_and_keeps_key_order() {
        let value = serde_json::json!({"b": [1, 2.5, "é<>"], "a": {"t": true, "n": null}});
        assert_eq!(
            render("{{ x | tojson }}", value.clone()),
            r#"{"b": [1, 2.5, "é<>"], "a": {"t": true, "n": null}}"#
        );
        assert_eq!(
            render("{{ x | tojson(sort_keys=true) }}", value.clone()),
            r#"{"a": {"n": null, "t": true}, "b": [1, 2.5, "é<>"]}"#
        );
        assert_eq!(
            render("{{ x | tojson(indent=2) }}", value),
            "{\n  \"b\": [\n    1,\n    2.5,\n    \"é<>\"\n  ],\n  \"a\": {\n    \"t\": true,\n    \"n\": null\n  }\n}"
        );
    }

    #[test]
    fn tojson_escapes_like_python() {
        let value = serde_json::json!(["q\"\\\n\u{1}", "日本", {}, []]);
        assert_eq!(
            render("{{ x | tojson }}", value.clone()),
            r#"["q\"\\\n\u0001", "日本", {}, []]"#
        );
        assert_eq!(
            render("{{ x | tojson(ensure_ascii=true) }}", value),
            r#"["q\"\\\n\u0001", "\u65e5\u672c", {}, []]"#
        );
    }

    #[test]
    fn floats_follow_python_repr() {
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(0.1), "0.1");
        assert_eq!(python_float(1e-5), "1e-05");
        assert_eq!(python_float(1e16), "1e+16");
        assert_eq!(python_float(1.5e300), "1.5e+300");
        assert_eq!(python_float(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn fromjson_parses_strings() {
        assert_eq!(
            render("{{ (x | fromjson).k }}", serde_json::json!(r#"{"k": 7}"#)),
            "7"
        );
    }
}
