"""Model dimensions from config.json or GGUF metadata, checked against the tensors before import.

Why: a 467 KB model whose config.json said ``num_hidden_layers: 1e9`` imported with exit 0, and
every command that builds the model from the metadata (``run``, ``qa``, ``pretrain --init``) then
grew to gigabytes; GGUF ``block_count = 2^63`` did the same. The dimensions written into an .apr
must describe the tensors it holds, so before anything is written `check_dimensions` requires:

1. every integer dimension to be an integer from 1 to its ceiling (`CEILINGS`: far above any
   published model), ``rope_theta`` > 0 and 0 < ``rms_norm_eps`` < 1;
2. where the tensor names tell (llama-style ``model.layers.N``, gpt2's ``transformer.h.N``,
   gpt-neox, opt), the layer count, the embedding's rows and width (vocab_size, hidden_size), the
   q/k projections' rows (heads × head_dim, kv heads × head_dim), the gate/up projections' rows
   (intermediate_size) and the expert count to equal the tensors';
3. the parameter count the dimensions imply (a lower bound: embedding + per layer q/k/v/o and a
   two-matrix MLP) to be at most `IMPLIED_PARAMS_FACTOR` times the parameters present, which
   bounds what a model built from the metadata can allocate even for tensor names not known here.

Every problem found is listed in one `ConvertError` (exit 5) naming the source, the key as the
source spells it, its value and what the tensors say.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeGuard

from apr.errors import ConvertError
from apr.format.dtypes import element_count

IMPLIED_PARAMS_FACTOR = 10
# Ceilings on single dimensions (largest published models: hidden 16384-25600, 126 layers,
# vocab 262144, context 10M tokens); a value above one is refused whatever the tensors say.
CEILINGS: dict[str, int] = {
    "hidden_size": 1 << 20, "num_layers": 1 << 16, "num_heads": 1 << 16, "num_kv_heads": 1 << 16,
    "vocab_size": 1 << 24, "intermediate_size": 1 << 22, "max_position_embeddings": 1 << 24,
    "head_dim": 1 << 16, "num_experts": 1 << 16, "num_experts_per_tok": 1 << 16,
    "moe_intermediate_size": 1 << 22,
}
_MAX_PROBLEMS = 12

# (embedding tensor, layer prefix): the naming schemes whose layers can be counted. (Not OPT: its
# embedding may be narrower than hidden_size, projected by project_in.)
_SCHEMES: tuple[tuple[str, str], ...] = (
    ("model.embed_tokens.weight", "model.layers."),
    ("transformer.wte.weight", "transformer.h."),
    ("gpt_neox.embed_in.weight", "gpt_neox.layers."),
)
_INDEX = re.compile(r"(0|[1-9][0-9]*)\.")
_EXPERT = re.compile(r"\.(?:mlp|block_sparse_moe)\.experts\.(0|[1-9][0-9]*)\.")

Spell = Callable[[str], str]


def implied_parameters(metadata: Mapping[str, Any]) -> int:
    """A lower bound on the parameters of a decoder with these dimensions (absent ones count 0).

    Embedding V·H, then per layer q/o 2·H·heads·head_dim, k/v 2·H·kv_heads·head_dim and an MLP of
    two H×I matrices (× experts for a mixture of experts). Exact Python integers: no overflow.

    Example:
        >>> implied_parameters({"vocab_size": 10, "hidden_size": 4, "num_layers": 1, "num_heads": 2,
        ...                     "intermediate_size": 8})
        168
    """
    def get(key: str) -> int:
        value = metadata.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    hidden, heads = get("hidden_size"), get("num_heads")
    kv_heads = get("num_kv_heads") or heads
    head_dim = get("head_dim") or (hidden // heads if heads else 0)
    experts = get("num_experts")
    mlp = 2 * hidden * (experts * (get("moe_intermediate_size") or get("intermediate_size"))
                        if experts else get("intermediate_size"))
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    return get("vocab_size") * hidden + get("num_layers") * (attention + mlp)


def _range_problems(metadata: Mapping[str, Any], spell: Spell) -> list[tuple[str, str]]:
    problems = []
    for key, ceiling in CEILINGS.items():
        value = metadata.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append((key, f"{spell(key)} = {value!r} is not an integer"))
        elif not 1 <= value <= ceiling:
            problems.append((key, f"{spell(key)} = {value} is outside 1 … {ceiling}"))
    for key, valid, rule in (("rope_theta", lambda v: v > 0, "> 0"), ("rms_norm_eps", lambda v: 0 < v < 1, "in (0, 1)")):
        value = metadata.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not valid(value):
            problems.append((key, f"{spell(key)} = {value!r} must be a finite number {rule}"))
    heads, kv = metadata.get("num_heads"), metadata.get("num_kv_heads")
    if _good(heads, "num_heads") and _good(kv, "num_kv_heads") and heads % kv:
        problems.append(("num_kv_heads", f"{spell('num_kv_heads')} = {kv} does not divide "
                                         f"{spell('num_heads')} = {heads} (each kv head serves whole query heads)"))
    experts, per_token = metadata.get("num_experts"), metadata.get("num_experts_per_tok")
    if _good(experts, "num_experts") and _good(per_token, "num_experts_per_tok") and per_token > experts:
        problems.append(("num_experts_per_tok", f"{spell('num_experts_per_tok')} = {per_token} is more than "
                                                f"{spell('num_experts')} = {experts}"))
    return problems


def _good(value: Any, key: str) -> TypeGuard[int]:
    return _is_int(value) and 1 <= value <= CEILINGS[key]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive(value: Any) -> TypeGuard[int]:
    return _is_int(value) and value >= 1


def _scheme(shapes: Mapping[str, tuple[int, ...]]) -> tuple[str, str] | None:
    for embed, prefix in _SCHEMES:
        if embed in shapes or any(n.startswith(prefix) and _INDEX.match(n, len(prefix)) for n in shapes):
            return embed, prefix
    return None


def layer_indices(names: Iterable[str], prefix: str) -> set[int]:
    """The N of every ``{prefix}N.`` tensor name."""
    found = set()
    for name in names:
        if name.startswith(prefix):
            match = _INDEX.match(name, len(prefix))
            if match:
                found.add(int(match.group(1)))
    return found


def _layers_text(indices: set[int], prefix: str) -> str:
    if not indices:
        return "no layer tensors"
    low, high = min(indices), max(indices)
    if indices == set(range(high + 1)):
        return f"1 layer ({prefix}0)" if high == 0 else f"{len(indices)} layers ({prefix}0 … {prefix}{high})"
    missing = sorted(set(range(high + 1)) - indices)[:5]
    return f"{len(indices)} layers numbered {low} … {high}, with {', '.join(map(str, missing))} missing"


def _tensor_problems(metadata: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]],
                     spell: Spell) -> list[tuple[str, str]]:
    scheme = _scheme(shapes)
    if scheme is None:
        return []
    embed_name, prefix = scheme
    problems: list[tuple[str, str]] = []

    def expect(key: str, actual: int, evidence: str) -> None:
        value = metadata.get(key)
        if _is_int(value) and value != actual:
            problems.append((key, f"{spell(key)} = {value}, but {evidence}"))

    layers = layer_indices(shapes, prefix)
    num_layers = metadata.get("num_layers")
    contiguous = layers == set(range(len(layers)))
    if _is_int(num_layers) and (num_layers != len(layers) or not contiguous):
        problems.append(("num_layers", f"{spell('num_layers')} = {num_layers}, but the tensors hold "
                                       f"{_layers_text(layers, prefix)}"))
    for name in (embed_name, "lm_head.weight"):
        shape = shapes.get(name)
        if shape is not None and len(shape) == 2:
            expect("vocab_size", shape[0], f"{name} has {shape[0]} rows")
            expect("hidden_size", shape[1], f"{name} is {shape[1]} wide")
    heads, kv, hidden = metadata.get("num_heads"), metadata.get("num_kv_heads"), metadata.get("hidden_size")
    head_dim = metadata.get("head_dim")
    if not _positive(head_dim) and _positive(heads) and _positive(hidden):
        head_dim = hidden // heads if hidden % heads == 0 else None
    for index in sorted(layers):
        layer = f"{prefix}{index}."
        problems += _projection_problems(shapes, layer, heads, kv, head_dim, _positive(metadata.get("head_dim")), spell)
        for part in ("gate_proj", "up_proj"):
            mlp = shapes.get(f"{layer}mlp.{part}.weight")
            if mlp is not None and len(mlp) == 2:
                expect("intermediate_size", mlp[0], f"{layer}mlp.{part}.weight has {mlp[0]} rows")
        if len(problems) >= _MAX_PROBLEMS:
            break
    experts = {int(m.group(1)) for n in shapes if n.startswith(f"{prefix}0.") for m in [_EXPERT.search(n)] if m}
    if experts:
        expect("num_experts", len(experts), f"layer 0 holds {len(experts)} experts")
    return _first_per_key(problems)


def _projection_problems(shapes: Mapping[str, tuple[int, ...]], layer: str, heads: Any, kv: Any, head_dim: Any,
                         head_dim_stated: bool, spell: Spell) -> list[tuple[str, str]]:
    """q_proj rows = heads × head_dim, k_proj rows = kv heads × head_dim. When both disagree and
    head_dim was stated, head_dim is the value at fault; a derived head_dim is hidden / heads."""
    rows: dict[str, int | None] = {}
    for proj in ("q_proj", "k_proj"):
        shape = shapes.get(f"{layer}self_attn.{proj}.weight")
        rows[proj] = shape[0] if shape is not None and len(shape) == 2 else None
    counts = {"q_proj": ("num_heads", heads), "k_proj": ("num_kv_heads", kv)}
    wrong = [proj for proj, (_, count) in counts.items() if rows[proj] is not None and _positive(count)
             and _positive(head_dim) and rows[proj] != count * head_dim]
    if len(wrong) == 2 and head_dim_stated:
        return [("head_dim", f"{spell('head_dim')} = {head_dim}, but {layer}self_attn.q_proj.weight has "
                             f"{rows['q_proj']} rows for {heads} heads and {layer}self_attn.k_proj.weight "
                             f"{rows['k_proj']} rows for {kv} kv heads")]
    derived = "" if head_dim_stated else f" ({spell('hidden_size')} / {spell('num_heads')})"
    problems = []
    for proj, (key, count) in counts.items():
        if proj in wrong:
            problems.append((key, f"{spell(key)} = {count} × head_dim {head_dim}{derived} = {count * head_dim}, "
                                  f"but {layer}self_attn.{proj}.weight has {rows[proj]} rows"))
        # (with a head_dim, a projection not in `wrong` has count × head_dim rows: always divisible)
        elif (found := rows[proj]) is not None and _positive(count) and found % count:
            problems.append((key, f"{spell(key)} = {count} does not divide the {rows[proj]} rows of "
                                  f"{layer}self_attn.{proj}.weight"))
    return problems


def _first_per_key(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    kept = []
    for key, text in problems:
        if key not in seen:
            seen.add(key)
            kept.append((key, text))
    return kept


def check_dimensions(
    metadata: Mapping[str, Any],
    shapes: Mapping[str, tuple[int, ...]],
    *,
    source: str,
    path: str | os.PathLike[str] | None,
    spell: Spell,
    hint: str,
) -> None:
    """Refuse dimensions that are absurd, contradict the tensors, or imply far more parameters.

    Args:
        metadata: the APR metadata about to be written (``num_layers``, ``hidden_size``, ...).
        shapes: every tensor present (Hugging Face names, row-major shapes), a tied copy excluded.
        source: where the dimensions come from, for the message (``"config.json"``).
        path: that file.
        spell: the key as the source spells it (``num_layers`` → ``num_hidden_layers``).
        hint: how to fix the source.

    Raises:
        ConvertError: listing every problem; ``field`` is the first problem's key as spelled.

    Example:
        >>> check_dimensions({"num_layers": 10**9}, {"model.layers.0.mlp.up_proj.weight": (8, 4)},
        ...                  source="config.json", path=None, spell=str, hint="fix it")
        Traceback (most recent call last):
        apr.errors.ConvertError: config.json does not describe the tensors beside it; nothing was written:
            num_layers = 1000000000, but the tensors hold 1 layer (model.layers.0)
          fix: fix it
    """
    problems = _tensor_problems(metadata, shapes, spell)  # the tensors' word first: the clearest message
    flagged = {key for key, _ in problems}
    problems += [p for p in _range_problems(metadata, spell) if p[0] not in flagged]
    if not problems:
        present = sum(element_count(shape) for shape in shapes.values())
        implied = implied_parameters(metadata)
        if implied > IMPLIED_PARAMS_FACTOR * present:
            keys = [k for k in ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
                                "intermediate_size", "num_experts", "moe_intermediate_size") if k in metadata]
            stated = ", ".join(f"{spell(k)} = {metadata[k]}" for k in keys)
            # implied > 0 needs at least one of these keys, so keys is never empty here
            problems.append(("num_layers" if "num_layers" in metadata else keys[0],
                             f"{stated} imply at least {implied:,} parameters, more than "
                             f"{IMPLIED_PARAMS_FACTOR}× the {present:,} in the tensors"))
    if problems:
        lines = "\n    ".join(text for _, text in problems[:_MAX_PROBLEMS])
        raise ConvertError(f"{source} does not describe the tensors beside it; nothing was written:\n    {lines}",
                           path=path, field=spell(problems[0][0]), hint=hint)


def check_vocabulary(tokens: int, metadata: Mapping[str, Any], *, source: str, path: str | os.PathLike[str] | None,
                     hint: str) -> None:
    """Refuse a tokenizer with more tokens than the embedding has rows (ids past it crash the model).

    Raises:
        ConvertError: naming both counts.
    """
    rows = metadata.get("vocab_size")
    if isinstance(rows, int) and tokens > rows:
        raise ConvertError(
            f"the tokenizer from {source} has {tokens} tokens but the embedding has {rows} rows: "
            f"token ids {rows} … {tokens - 1} would index past it; nothing was written",
            path=path, field="vocab_size", hint=hint,
        )


__all__ = ["CEILINGS", "IMPLIED_PARAMS_FACTOR", "check_dimensions", "check_vocabulary", "implied_parameters",
           "layer_indices"]
