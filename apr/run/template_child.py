"""The process that renders one chat template, under the limits `apr.run.chat` gives it.

Run as ``python -I template_child.py MEMORY_BYTES CPU_SECONDS`` with one JSON request on stdin
(``template``, ``messages``, ``bos_token``, ``eos_token``, ``max_chars``); writes one JSON reply
on stdout (both ASCII JSON): ``{"text": ...}`` or ``{"error": ..., "kind": "template" | "size" | "memory"}``.

It imports nothing but the standard library and jinja2 (``-I``: no user site, no environment
variables, not even this folder on ``sys.path``), caps its own address space, CPU time and file
writes before it reads the request, and renders with jinja2's ``ImmutableSandboxedEnvironment``
(as transformers does) one output piece at a time, stopping as soon as the text passes
``max_chars``. Whatever the template does, the parent loses at most this process.
"""

from __future__ import annotations

import json
import sys


def _limit(memory_bytes: int, cpu_seconds: int) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX: the parent's timeout still applies
        return
    # CPU: SIGXCPU at the budget (the parent names it), SIGKILL a second later if that is caught
    for kind, soft, hard in ((resource.RLIMIT_AS, memory_bytes, memory_bytes),
                             (resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1), (resource.RLIMIT_FSIZE, 0, 0)):
        try:
            resource.setrlimit(kind, (soft, hard))
        except (ValueError, OSError):  # a hard limit already lower: keep it
            pass


def render(request: dict) -> dict:
    """The reply for one request (pure apart from the rendering itself)."""
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    limit = int(request["max_chars"])
    pieces: list[str] = []
    size = 0
    try:
        stream = env.from_string(request["template"]).generate(
            messages=request["messages"], add_generation_prompt=True,
            bos_token=request["bos_token"], eos_token=request["eos_token"],
        )
        for piece in stream:
            size += len(piece)
            if size > limit:
                return {"error": f"the rendered prompt passed {limit:,} characters", "kind": "size"}
            pieces.append(piece)
    except MemoryError:
        return {"error": "rendering ran out of its memory limit", "kind": "memory"}
    except TemplateError as err:
        return {"error": f"{type(err).__name__}: {err}", "kind": "template"}
    except RecursionError:
        return {"error": "the template recursed too deeply", "kind": "template"}
    except Exception as err:  # noqa: BLE001 - anything a template raises (TypeError, ZeroDivisionError...)
        return {"error": f"{type(err).__name__}: {err}", "kind": "template"}
    return {"text": "".join(pieces)}


def main(argv: list[str]) -> int:
    _limit(int(argv[1]), int(argv[2]))
    try:
        reply = render(json.loads(sys.stdin.buffer.read()))
    except MemoryError:
        reply = {"error": "rendering ran out of its memory limit", "kind": "memory"}
    sys.stdout.write(json.dumps(reply))  # ASCII: escapes carry any text, lone surrogates included
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
