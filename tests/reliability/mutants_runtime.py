"""Deliberate faults for FALSIFY-RELIABILITY-013/014/015 (runtime bounds, issue 14): each must turn
its falsifier's tests red. Children started by those tests pick the same fault up through
``APR_CONTRACTS_MUTANT`` (`falsifiers.mutation.install_inherited_mutant`, called by
`tests.reliability.runtime_probe`).

Each fault is chosen so that a test can catch it without hanging or filling the machine: the
in-process tests use small lies, and the huge ones run in a child under an address-space limit.
"""

from __future__ import annotations

from typing import Any

HUGE = 2**62


# --- FALSIFY-RELIABILITY-013: shapes against tensors and the ceiling -----------------------------


def config_without_bounds(reader: Any, path: str) -> Any:
    """apr.run.load.checked_config as it was: the metadata's shape trusted, the tensors unread."""
    from apr.errors import ConvertError, ModelConfigError
    from apr.train.config import ModelConfig

    try:
        return ModelConfig.from_metadata(reader.metadata, reader.keys(), path=path)
    except ModelConfigError as err:
        raise ConvertError(f"cannot run this model: {err.message}", path=path, field=err.field) from err


# --- FALSIFY-RELIABILITY-014: chat templates, streamed tokenize --------------------------------


def unbounded_output(messages: Any) -> int:
    """apr.run.chat.output_limit without a bound: a template may print as much as it likes."""
    return HUGE


def no_safe_split(record: Any) -> tuple[None, str]:
    """apr.tokenizer.stream.split_rule that never splits: every file is encoded whole (as before)."""
    return None, "mutant: no split"


def cut_at_any_newline(text: str) -> int:
    """apr.tokenizer.stream.cut_after_newline that cuts after the last newline whatever follows it."""
    return text.rfind("\n", 0, len(text) - 1) + 1


# --- FALSIFY-RELIABILITY-015: typed settings, ids in range ---------------------------------------


def added_tokens_unchecked(entries: Any, size: int, path: Any) -> tuple:
    """apr.tokenizer.embed._added_tokens as it was: iterates whatever the key holds."""
    from apr.tokenizer.record import AddedToken

    return tuple(AddedToken(id=entry["id"], content=entry["content"]) for entry in entries or [])


def pick_token_unshifted(logits: Any, sampling: Any, generator: Any) -> int:
    """apr.run.generate.pick_token as it was: logits / temperature in float32 (1e-45 gives inf - inf)."""
    import torch

    if sampling.temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def ids_unchecked(ids: Any, vocab_size: int, **kwargs: Any) -> None:
    """apr.train.shards.check_token_ids that accepts every id."""
    return None


def split_ids_unchecked(plan: Any) -> None:
    """apr.train.loop.check_split_ids that accepts every id."""
    return None
