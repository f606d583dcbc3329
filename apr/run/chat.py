"""The prompt a chat model expects: its own template from metadata, rendered in a sandbox with limits.

Hugging Face chat templates are Jinja; like transformers we render them with jinja2's
``ImmutableSandboxedEnvironment`` (no attribute access to Python internals, no mutation), so a
template from a model file can format text but not run code. Without jinja2 or without a
template, ChatML (``<|im_start|>role\\n...<|im_end|>``) is the fallback.

The sandbox guards what a template may *touch*, not what it may *cost*: ``{{ 'x' * 2000000000 }}``
asks for 2 GB in one expression and nested ``range()`` loops spin for hours, and Python offers no
way to interrupt either from inside the process. So the template is rendered in a child process
(`apr.run.template_child`) that caps its own address space (`RENDER_MEMORY_BYTES`) and CPU time,
and stops once its output passes the size limit. Its time budget is CPU time (`RENDER_SECONDS`,
the child's ``RLIMIT_CPU``), not wall time, so a busy machine that starts the child slowly does not
refuse a valid template; the parent's wall clock (`RENDER_WALL_SECONDS`) is only a backstop. An
operating-system limit holds whatever the template does, which a list of overridden operators
(``*``, ``range``, string methods, filters...) never could.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import signal
import subprocess
import sys
from typing import Any

from apr.errors import InferenceError

log = logging.getLogger(__name__)

RENDER_SECONDS = 5.0
"""CPU time limit for one render, process start included (a real template takes milliseconds)."""

RENDER_WALL_SECONDS = 120.0
"""Wall-clock backstop: a renderer that has not ended by then is killed (a template cannot block on
I/O, so only a machine stalled far beyond any load seen gets there)."""

RENDER_MEMORY_BYTES = 1 << 30
"""Address-space limit of the rendering process (1 GiB; Python and jinja2 need about 40 MB)."""

MIN_OUTPUT_CHARS = 1 << 20
"""The rendered prompt may reach this many characters, or 16 times the messages' own length."""

_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "template_child.py")
_HINT = "run without --chat, or re-stamp the checkpoint with a working template"


def chatml(messages: list[dict[str, str]], *, add_generation_prompt: bool = True) -> str:
    """ChatML text for ``messages``."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def output_limit(messages: list[dict[str, str]]) -> int:
    """How many characters a rendered prompt may have: generous for real templates, bounded."""
    return max(MIN_OUTPUT_CHARS, 16 * sum(len(m.get("role", "")) + len(m.get("content", "")) for m in messages))


def render_chat(template: str | None, messages: list[dict[str, str]], *, bos_token: str | None = None,
                eos_token: str | None = None) -> str:
    """The prompt text: ``template`` rendered with ``messages`` (ChatML when there is none).

    Raises:
        InferenceError: the template does not render (a syntax error, ``raise_exception``, any
            error it raises), or passes a limit: `RENDER_SECONDS`, `RENDER_MEMORY_BYTES`, or
            `output_limit` characters.
    """
    if not template:
        return chatml(messages)
    if importlib.util.find_spec("jinja2") is None:  # pragma: no cover - jinja2 comes with torch
        log.warning("jinja2 is not installed: using ChatML instead of the model's chat template")
        return chatml(messages)
    request = json.dumps({"template": template, "messages": messages, "bos_token": bos_token or "",
                          "eos_token": eos_token or "", "max_chars": output_limit(messages)})
    reply = _run_child(request.encode("ascii"))  # JSON escapes keep any text, lone surrogates included
    if "text" in reply and isinstance(reply["text"], str):
        return reply["text"]
    kind, message = reply.get("kind"), str(reply.get("error", "no reply"))
    if kind == "template":
        raise InferenceError(f"the model's chat template does not render: {message}", field="chat_template",
                             hint=_HINT)
    raise InferenceError(f"the model's chat template was stopped: {message}", field="chat_template", hint=_HINT)


def _run_child(request: bytes) -> dict[str, Any]:
    """Start the renderer, feed it ``request``, and return its reply (or raise on a limit)."""
    cpu_seconds = math.ceil(RENDER_SECONDS)
    command = [sys.executable, "-I", _CHILD, str(RENDER_MEMORY_BYTES), str(cpu_seconds)]
    try:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError as err:
        raise InferenceError(f"cannot start the chat template renderer: {err.strerror or err}",
                             field="chat_template", hint="run without --chat") from err
    try:
        out, _ = proc.communicate(request, timeout=RENDER_WALL_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise InferenceError(f"the model's chat template did not finish rendering within {RENDER_WALL_SECONDS:g} s",
                             field="chat_template", hint=_HINT) from None
    try:
        reply = json.loads(out.decode("ascii")) if out else None
    except (UnicodeDecodeError, ValueError):
        reply = None
    if not isinstance(reply, dict) and proc.returncode == -getattr(signal, "SIGXCPU", 0):  # RLIMIT_CPU's signal
        raise InferenceError(f"the model's chat template did not finish rendering within {cpu_seconds} s of CPU "
                             "time", field="chat_template", hint=_HINT)
    if not isinstance(reply, dict):
        raise InferenceError(f"the chat template renderer ended without a reply (exit status {proc.returncode}); "
                             "it ran out of memory or time", field="chat_template", hint=_HINT)
    return reply


__all__ = ["RENDER_MEMORY_BYTES", "RENDER_SECONDS", "chatml", "output_limit", "render_chat"]
