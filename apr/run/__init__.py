"""Load, tokenize, generate: ``apr run`` as a library.

Example:
    >>> from apr.run import load_model, generate_text, SamplingConfig
    >>> loaded = load_model("smollm2.apr")  # doctest: +SKIP
    >>> "".join(generate_text(loaded, "What is the capital of France?", SamplingConfig(max_tokens=20), chat=True))  # doctest: +SKIP
    'The capital of France is Paris.'
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from apr.run.chat import chatml, render_chat
from apr.run.load import LoadedModel, load_model, missing_tokenizer_error, read_tokenizer_record

if TYPE_CHECKING:  # pragma: no cover
    from apr.run.generate import SamplingConfig


def stop_ids_for(loaded: LoadedModel, *, chat: bool) -> frozenset[int]:
    """EOS (tokenizer, generation_config) plus, in chat mode, the end-of-turn tokens."""
    ids: set[int] = set()
    if loaded.record.eos_token_id is not None:
        ids.add(loaded.record.eos_token_id)
    generation = loaded.metadata.get("generation_config")
    if isinstance(generation, dict):
        eos = generation.get("eos_token_id")
        for value in eos if isinstance(eos, list) else [eos]:
            if isinstance(value, int) and not isinstance(value, bool):
                ids.add(value)
    if chat:
        for token in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"):
            index = loaded.tokenizer.token_to_id(token)
            if index is not None:
                ids.add(index)
    return frozenset(ids)


def prompt_ids(loaded: LoadedModel, prompt: str, *, chat: bool) -> list[int]:
    """The prompt's token ids (rendered through the chat template with ``chat``)."""
    text = prompt
    if chat:
        template = loaded.metadata.get("chat_template")
        record = loaded.record
        bos = record.vocabulary[record.bos_token_id] if record.bos_token_id is not None else None
        eos = record.vocabulary[record.eos_token_id] if record.eos_token_id is not None else None
        text = render_chat(template if isinstance(template, str) else None,
                           [{"role": "user", "content": prompt}], bos_token=bos, eos_token=eos)
    return loaded.tokenizer.encode(text, add_special_tokens=False).ids


def generate_text(loaded: LoadedModel, prompt: str, sampling: SamplingConfig, *, chat: bool = False) -> Iterator[str]:
    """Yield text increments as tokens are generated."""
    from apr.run.generate import TextStream, generate_ids

    stream = TextStream(loaded.tokenizer)
    for token in generate_ids(loaded.model, prompt_ids(loaded, prompt, chat=chat), sampling,
                              stop_ids_for(loaded, chat=chat)):
        delta = stream.push(token)
        if delta:
            yield delta


def __getattr__(name: str) -> object:
    """``SamplingConfig`` on first use (PEP 562): `apr.run.generate` imports torch, which this
    package's importers (`apr.qa`, the CLI) should pay for only when they generate."""
    if name == "SamplingConfig":
        from apr.run.generate import SamplingConfig

        return SamplingConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LoadedModel",
    "SamplingConfig",
    "chatml",
    "generate_text",
    "load_model",
    "missing_tokenizer_error",
    "prompt_ids",
    "read_tokenizer_record",
    "render_chat",
    "stop_ids_for",
]
