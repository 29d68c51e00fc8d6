#!/usr/bin/env python3
"""Smoke test: the official `openai` Python SDK against a running Stator frontend.

Usage: openai_smoke.py [BASE_URL] [MODEL]
  BASE_URL defaults to $STATOR_URL or http://127.0.0.1:8000/v1
  MODEL    defaults to $STATOR_MODEL or qwen2.5-0.5b-mock
Exits non-zero on the first failed check.
"""

import os
import sys

from openai import OpenAI


def main() -> int:
    base_url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "STATOR_URL", "http://127.0.0.1:8000/v1")
    model = sys.argv[2] if len(sys.argv) > 2 else os.environ.get(
        "STATOR_MODEL", "qwen2.5-0.5b-mock")
    client = OpenAI(base_url=base_url, api_key="unused")

    models = [m.id for m in client.models.list()]
    assert model in models, f"{model} not in {models}"

    messages = [{"role": "user", "content": "Write one sentence about the ocean."}]
    unary = client.chat.completions.create(model=model, messages=messages, max_tokens=8)
    assert len(unary.choices) == 1, unary
    assert unary.choices[0].message.role == "assistant", unary
    assert unary.choices[0].finish_reason in ("length", "stop"), unary
    assert unary.usage is not None and unary.usage.completion_tokens > 0, unary

    stream = client.chat.completions.create(
        model=model, messages=messages, max_tokens=8, stream=True,
        stream_options={"include_usage": True})
    text, finish, usage = "", None, None
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    assert finish in ("length", "stop"), finish
    assert usage is not None and usage.completion_tokens > 0, usage

    completion = client.completions.create(model=model, prompt="The ocean is", max_tokens=4)
    assert completion.choices and completion.choices[0].finish_reason, completion

    print(f"openai smoke ok: unary {unary.choices[0].message.content!r}, streamed {text!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
