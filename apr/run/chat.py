"""The prompt a chat model expects: its own template from metadata, rendered in a sandbox.

Hugging Face chat templates are Jinja; like transformers we render them with jinja2's
``ImmutableSandboxedEnvironment`` (no attribute access to Python internals, no mutation), so a
template from a model file can format text but not run code. Without jinja2 or without a
template, ChatML (``<|im_start|>role\\n...<|im_end|>``) is the fallback.
"""

from __future__ import annotations

import logging
from typing import Any

from apr.errors import InferenceError

log = logging.getLogger(__name__)


def chatml(messages: list[dict[str, str]], *, add_generation_prompt: bool = True) -> str:
    """ChatML text for ``messages``."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def render_chat(template: str | None, messages: list[dict[str, str]], *, bos_token: str | None = None,
                eos_token: str | None = None) -> str:
    """The prompt text: ``template`` rendered with ``messages`` (ChatML when there is none).

    Raises:
        InferenceError: the template does not render (a syntax error or ``raise_exception``).
    """
    if not template:
        return chatml(messages)
    try:
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:  # pragma: no cover - jinja2 comes with torch
        log.warning("jinja2 is not installed: using ChatML instead of the model's chat template")
        return chatml(messages)

    def raise_exception(message: str) -> Any:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(
            messages=messages, add_generation_prompt=True, bos_token=bos_token or "", eos_token=eos_token or "",
        )
    except TemplateError as err:
        raise InferenceError(f"the model's chat template does not render: {err}", field="chat_template",
                             hint="run without --chat, or re-stamp the checkpoint with a working template") from err


__all__ = ["chatml", "render_chat"]
