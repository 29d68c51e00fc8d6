//! Chat templates: Hugging Face Jinja templates rendered with minijinja the way
//! transformers renders them (`trim_blocks`, `lstrip_blocks`, Python string/dict methods,
//! `tojson`, `raise_exception`, `strftime_now`).

mod json;

use std::collections::BTreeMap;

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};
use serde_json::{Map, Value as Json};

use crate::Error;

/// The special-token strings a template may use (`bos_token`, `eos_token`, `unk_token`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning-of-sequence token text.
    pub bos_token: Option<String>,
    /// End-of-sequence token text.
    pub eos_token: Option<String>,
    /// Unknown token text.
    pub unk_token: Option<String>,
}

impl SpecialTokens {
    /// Reads the tokens from `tokenizer_config.json`, where each is a string, `null`, or an
    /// added-token object with a `content` key.
    pub fn from_tokenizer_config(config: &Json) -> Self {
        let token = |key: &str| match config.get(key) {
            Some(Json::String(s)) => Some(s.clone()),
            Some(Json::Object(o)) => o.get("content").and_then(Json::as_str).map(str::to_owned),
            _ => None,
        };
        Self {
            bos_token: token("bos_token"),
            eos_token: token("eos_token"),
            unk_token: token("unk_token"),
        }
    }
}

/// What one rendering needs besides the template.
#[derive(Clone, Copy, Debug)]
pub struct ChatTemplateInput<'a> {
    /// The conversation: a JSON array of `{role, content, ...}` objects.
    pub messages: &'a Json,
    /// Tool definitions (a JSON array), or `None` for no tools.
    pub tools: Option<&'a Json>,
    /// Whether to end the prompt with the assistant turn header.
    pub add_generation_prompt: bool,
    /// Extra template variables, merged last (they override everything else).
    pub chat_template_args: Option<&'a Map<String, Json>>,
}

/// A compiled chat template (or set of named templates) plus the model's special tokens.
pub struct ChatTemplate {
    env: Environment<'static>,
    names: Vec<String>,
    special_tokens: SpecialTokens,
}

/// The error payload of `raise_exception`, recognized when rendering fails.
#[derive(Debug)]
struct RaisedByTemplate(String);

impl std::fmt::Display for RaisedByTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RaisedByTemplate {}

impl ChatTemplate {
    /// Compiles a `chat_template` value: a template string, or a list of
    /// `{"name", "template"}` objects (transformers' named templates).
    pub fn new(source: &Json, special_tokens: SpecialTokens) -> Result<Self, Error> {
        let mut env = environment();
        let mut names = Vec::new();
        match source {
            Json::String(template) => {
                add_template(&mut env, "default", template)?;
                names.push("default".to_owned());
            }
            Json::Array(entries) => {
                for entry in entries {
                    let (Some(name), Some(template)) = (
                        entry.get("name").and_then(Json::as_str),
                        entry.get("template").and_then(Json::as_str),
                    ) else {
                        return Err(Error::Template(
                            "a named chat template needs string \"name\" and \"template\"".into(),
                        ));
                    };
                    add_template(&mut env, name, template)?;
                    names.push(name.to_owned());
                }
            }
            _ => {
                return Err(Error::Template(
                    "chat_template must be a string or a list of named templates".into(),
                ));
            }
        }
        if names.is_empty() {
            return Err(Error::NoChatTemplate);
        }
        Ok(Self {
            env,
            names,
            special_tokens,
        })
    }

    /// Compiles the template of a parsed `tokenizer_config.json`, with its special tokens.
    pub fn from_tokenizer_config(config: &Json) -> Result<Self, Error> {
        let source = config.get("chat_template").ok_or(Error::NoChatTemplate)?;
        Self::new(source, SpecialTokens::from_tokenizer_config(config))
    }

    /// The names of the compiled templates (`["default"]` for a single template string).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The special tokens passed to the template.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special_tokens
    }

    /// Renders a prompt. With named templates, `tool_use` is chosen when tools are given and
    /// such a template exists, else `default`, else the only one (as transformers does).
    pub fn render(&self, input: &ChatTemplateInput<'_>) -> Result<String, Error> {
        let name = self.select(input.tools.is_some())?;
        let template = self
            .env
            .get_template(name)
            .map_err(|e| Error::Template(describe(&e)))?;

        let mut context: BTreeMap<String, Value> = BTreeMap::new();
        context.insert("messages".into(), Value::from_serialize(input.messages));
        context.insert(
            "tools".into(),
            input.tools.map_or(Value::from(()), Value::from_serialize),
        );
        let token = |t: &Option<String>| t.clone().map_or(Value::from(()), Value::from);
        context.insert("bos_token".into(), token(&self.special_tokens.bos_token));
        context.insert("eos_token".into(), token(&self.special_tokens.eos_token));
        context.insert("unk_token".into(), token(&self.special_tokens.unk_token));
        context.insert(
            "add_generation_prompt".into(),
            Value::from(input.add_generation_prompt),
        );
        for (key, value) in input.chat_template_args.into_iter().flatten() {
            context.insert(key.clone(), Value::from_serialize(value));
        }

        template.render(Value::from(context)).map_err(|e| {
            raised_message(&e).map_or_else(|| Error::Template(describe(&e)), Error::TemplateRaised)
        })
    }

    fn select(&self, has_tools: bool) -> Result<&str, Error> {
        let find = |wanted: &str| self.names.iter().find(|n| *n == wanted);
        let chosen = if has_tools { find("tool_use") } else { None }
            .or_else(|| find("default"))
            .or_else(|| (self.names.len() == 1).then(|| &self.names[0]));
        chosen.map(String::as_str).ok_or_else(|| {
            Error::Template(format!(
                "no default chat template among the named templates {:?}",
                self.names
            ))
        })
    }
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("names", &self.names)
            .field("special_tokens", &self.special_tokens)
            .finish_non_exhaustive()
    }
}

/// The minijinja environment configured like transformers' Jinja sandbox.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_filter("tojson", json::tojson);
    env.add_filter("fromjson", json::fromjson);
    env.add_filter("from_json", json::fromjson);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    env
}

fn add_template(env: &mut Environment<'static>, name: &str, source: &str) -> Result<(), Error> {
    env.add_template_owned(name.to_owned(), source.to_owned())
        .map_err(|e| Error::Template(describe(&e)))
}

fn raise_exception(message: String) -> Result<Value, JinjaError> {
    Err(
        JinjaError::new(ErrorKind::InvalidOperation, message.clone())
            .with_source(RaisedByTemplate(message)),
    )
}

/// `strftime_now(format)`: the local time formatted with a C `strftime` format.
fn strftime_now(format: &str) -> Result<String, JinjaError> {
    use chrono::format::{Item, StrftimeItems};
    let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
    if items.iter().any(|item| matches!(item, Item::Error)) {
        return Err(JinjaError::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: invalid format {format:?}"),
        ));
    }
    Ok(chrono::Local::now()
        .format_with_items(items.into_iter())
        .to_string())
}

fn raised_message(error: &JinjaError) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(raised) = e.downcast_ref::<RaisedByTemplate>() {
            return Some(raised.0.clone());
        }
        source = e.source();
    }
    None
}

/// A one-line description with the template location, for error messages.
fn describe(error: &JinjaError) -> String {
    match (error.name(), error.line()) {
        (Some(name), Some(line)) => format!(
            "{} ({name}:{line})",
            error.detail().unwrap_or(&error.kind().to_string())
        ),
        _ => error.to_string(),
    }
}
