//! Chat template rendering against the shipped Qwen2.5 `tokenizer_config.json`.
//!
//! Expected strings were derived by reading the template and cross-checked against Python
//! jinja2 (`trim_blocks`, `lstrip_blocks`, transformers' `tojson`) rendering the same inputs.

use std::path::Path;

use serde_json::{Value, json};
use stator_llm::Error;
use stator_llm::template::{ChatTemplate, ChatTemplateInput, SpecialTokens};

fn qwen() -> ChatTemplate {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/qwen2.5-0.5b-mock/tokenizer_config.json");
    let config: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    ChatTemplate::from_tokenizer_config(&config).unwrap()
}

fn render(template: &ChatTemplate, messages: &Value, tools: Option<&Value>, agp: bool) -> String {
    template
        .render(&ChatTemplateInput {
            messages,
            tools,
            add_generation_prompt: agp,
            chat_template_args: None,
        })
        .unwrap()
}

const DEFAULT_SYSTEM: &str = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {
        "name": "get_weather",
        "description": "Get the weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }}])
}

fn tools_system_block() -> String {
    format!(
        "<|im_start|>system\n{DEFAULT_SYSTEM}\n\n# Tools\n\nYou may call one or more functions to assist \
         with the user query.\n\nYou are provided with function signatures within <tools></tools> XML \
         tags:\n<tools>\n{}\n</tools>\n\nFor each function call, return a json object with function \
         name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{{\"name\": \
         <function-name>, \"arguments\": <args-json-object>}}\n</tool_call><|im_end|>\n",
        r#"{"type": "function", "function": {"name": "get_weather", "description": "Get the weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}"#
    )
}

#[test]
fn special_tokens_come_from_the_config() {
    let template = qwen();
    assert_eq!(template.names(), ["default"]);
    assert_eq!(
        template.special_tokens(),
        &SpecialTokens {
            bos_token: None,
            eos_token: Some("<|im_end|>".into()),
            unk_token: None
        }
    );
}

#[test]
fn system_and_user() {
    let messages = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi there"}
    ]);
    assert_eq!(
        render(&qwen(), &messages, None, true),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn multi_turn_with_assistant() {
    let messages = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "How are you?"}
    ]);
    assert_eq!(
        render(&qwen(), &messages, None, true),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
         <|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
}

#[test]
fn no_system_message_gets_the_default_and_generation_prompt_is_optional() {
    let messages = json!([{"role": "user", "content": "Hi"}]);
    let without =
        format!("<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
    assert_eq!(render(&qwen(), &messages, None, false), without);
    assert_eq!(
        render(&qwen(), &messages, None, true),
        format!("{without}<|im_start|>assistant\n")
    );
}

#[test]
fn tools_block_renders_with_python_json() {
    let messages = json!([{"role": "user", "content": "Weather in Paris?"}]);
    let tools = weather_tool();
    assert_eq!(
        render(&qwen(), &messages, Some(&tools), true),
        format!(
            "{}<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n",
            tools_system_block()
        )
    );
}

#[test]
fn tool_call_history_and_tool_response() {
    let messages = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "22°C, sunny"}
    ]);
    let tools = weather_tool();
    assert_eq!(
        render(&qwen(), &messages, Some(&tools), true),
        format!(
            "{}<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n\
             {{\"name\": \"get_weather\", \"arguments\": {{\"city\": \"Paris\"}}}}\n</tool_call><|im_end|>\n\
             <|im_start|>user\n<tool_response>\n22°C, sunny\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
            tools_system_block()
        )
    );
}

#[test]
fn raise_exception_surfaces_its_message() {
    let template = ChatTemplate::new(
        &json!("{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with a user message') }}{% endif %}ok"),
        SpecialTokens::default(),
    )
    .unwrap();
    let messages = json!([{"role": "assistant", "content": "x"}]);
    let err = template
        .render(&ChatTemplateInput {
            messages: &messages,
            tools: None,
            add_generation_prompt: false,
            chat_template_args: None,
        })
        .unwrap_err();
    match err {
        Error::TemplateRaised(message) => {
            assert_eq!(message, "Conversation must start with a user message");
        }
        other => panic!("expected TemplateRaised, got {other:?}"),
    }
}

#[test]
fn template_syntax_errors_are_reported_at_compile_time() {
    let err = ChatTemplate::new(&json!("{% if %}"), SpecialTokens::default()).unwrap_err();
    assert!(matches!(err, Error::Template(_)), "{err}");
    let err = ChatTemplate::new(&json!(42), SpecialTokens::default()).unwrap_err();
    assert!(matches!(err, Error::Template(_)), "{err}");
}

#[test]
fn chat_template_args_are_merged_last_and_python_methods_work() {
    let template = ChatTemplate::new(
        &json!("{{ bos_token }}{% for m in messages %}{{ m.role.upper() }}:{{ m.content.strip() }};{% endfor %}\
                {% if enable_thinking %}<think>{% endif %}{{ add_generation_prompt }}\
                {% for k, v in extra.items() %}|{{ k }}={{ v }}{% endfor %}|{{ strftime_now('%Y') | length }}"),
        SpecialTokens {
            bos_token: Some("<s>".into()),
            ..SpecialTokens::default()
        },
    )
    .unwrap();
    let messages = json!([{"role": "user", "content": "  hi  "}]);
    let args = json!({"enable_thinking": true, "add_generation_prompt": "overridden", "extra": {"b": 1, "a": 2}});
    let rendered = template
        .render(&ChatTemplateInput {
            messages: &messages,
            tools: None,
            add_generation_prompt: true,
            chat_template_args: args.as_object(),
        })
        .unwrap();
    assert_eq!(rendered, "<s>USER:hi;<think>overridden|b=1|a=2|4");
}

#[test]
fn named_templates_pick_tool_use_when_tools_are_given() {
    let template = ChatTemplate::new(
        &json!([
            {"name": "default", "template": "plain"},
            {"name": "tool_use", "template": "tools:{{ tools | length }}"}
        ]),
        SpecialTokens::default(),
    )
    .unwrap();
    let messages = json!([]);
    let tools = weather_tool();
    assert_eq!(render(&template, &messages, None, true), "plain");
    assert_eq!(render(&template, &messages, Some(&tools), true), "tools:1");
}

#[test]
fn common_python_idioms_of_hf_templates_render() {
    let template = ChatTemplate::new(
        &json!(
            "{%- for m in messages %}\
             {%- set content = m.content.split('</think>')[-1].lstrip('\\n') %}\
             {%- if m.role.startswith('assi') %}[{{ content }}]{% else %}{{ content | trim }}{% endif %}\
             {{- m.get('name', '?') }}\
             {%- endfor %}\
             {%- set ns = namespace(n=0) %}{% for t in tools %}{% set ns.n = ns.n + 1 %}{% endfor %}#{{ ns.n }}\
             {{- tools[0].function.parameters | tojson }}"
        ),
        SpecialTokens::default(),
    )
    .unwrap();
    let messages = json!([
        {"role": "user", "content": "  hi ", "name": "ann"},
        {"role": "assistant", "content": "<think>hmm</think>\n\nhello"}
    ]);
    let tools = weather_tool();
    assert_eq!(
        render(&template, &messages, Some(&tools), true),
        r#"hiann[hello]?#1{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}"#
    );
}
