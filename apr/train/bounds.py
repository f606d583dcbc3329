"""A model's shape checked against evidence before anything is built from it.

Metadata and ``config.json`` are data anyone can write: ``num_layers: 1000000000`` costs ten bytes,
and trusted it builds a billion layers (gigabytes and minutes before anything fails), while a
``hidden_size`` that disagrees with the tensors crashes deep inside torch. So every shape is
checked first, in plain integer arithmetic, against what backs it:

* a checkpoint's shape against **its tensors** (`check_against_tensors`): each dimension that a
  tensor pins down must equal it (``vocab_size`` and ``hidden_size`` are the embedding's rows and
  columns, ``num_layers`` the number of ``model.layers.N`` blocks named, ...), and the parameter
  count the metadata implies may be at most `MAX_PARAMETER_RATIO` times the values the file really
  holds (the backstop for a dimension no tensor present confirms);
* a shape with no tensors behind it (``apr pretrain --config``) against **a stated ceiling**
  (`check_config_ceiling`): at most `MAX_CONFIG_PARAMETERS` parameters, and fp32 weights that fit
  in this machine's memory.

`tensor_shape_problems` then lists every tensor missing, misshapen or unexpected; it enumerates
``parameter_shapes()``, which is safe only once `check_against_tensors` has passed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from apr.errors import ModelConfigError
from apr.train.config import ModelConfig

MAX_PARAMETER_RATIO = 10
"""A checkpoint's metadata may imply at most this many times the values its tensors hold."""

MAX_CONFIG_PARAMETERS = 2**35
"""Parameters a ``--config`` may ask for (about 34.4 billion).

The trainer is data-parallel only: every rank holds the whole model, its gradients and AdamW's two
moments, 16 bytes per parameter in fp32, so 2**35 parameters is 512 GiB per rank, more than any
single accelerator or usual host holds. No flag lifts it: a run past it cannot start anyway.
"""

FP32_BYTES = 4
_LAYER = re.compile(r"model\.layers\.(\d+)\.")
_DIMENSIONS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size",
               "head_dim")


@dataclass(frozen=True, slots=True)
class Disagreement:
    """One metadata field the tensors contradict (or cannot bound)."""

    field: str
    claimed: int
    found: str  # what the tensors say, as a phrase

    def __str__(self) -> str:
        return f"{self.field} = {self.claimed} in the metadata, but {self.found}"


def layer_count(names: Sequence[str]) -> int:
    """Layers the tensor names imply: one past the highest ``model.layers.N`` index (0 if none)."""
    indices = [int(match.group(1)) for match in map(_LAYER.match, names) if match]
    return max(indices) + 1 if indices else 0


def disagreements(config: ModelConfig, shapes: Mapping[str, Sequence[int]]) -> list[Disagreement]:
    """Every dimension of ``config`` that the tensors ``shapes`` contradict, then the ceiling.

    Pure integer work on the shapes alone: nothing the size of the claim is built.

    Example:
        >>> from apr.train.config import ModelConfig
        >>> config = ModelConfig("llama", vocab_size=8, hidden_size=4, num_layers=10**9, num_heads=1,
        ...                      num_kv_heads=1, intermediate_size=8, head_dim=4)
        >>> [str(d) for d in disagreements(config, {"model.embed_tokens.weight": (8, 4)})]
        ['num_layers = 1000000000 in the metadata, but the tensors name no model.layers.N block']
    """
    found: list[Disagreement] = []
    confirmed: set[str] = set()

    def expect(field: str, claimed: int, name: str, shape: Sequence[int] | None, axis: int, ndim: int,
               what: str) -> None:
        if shape is None:
            return
        shape = tuple(shape)
        if len(shape) != ndim:
            found.append(Disagreement(field, claimed, f"{name} has shape {list(shape)}, not {ndim}-D"))
        elif shape[axis] != claimed:
            found.append(Disagreement(field, claimed, f"{name} has {shape[axis]} {what} (shape {list(shape)})"))
        confirmed.add(field)

    h = config.hidden_size
    embed = shapes.get("model.embed_tokens.weight")
    expect("vocab_size", config.vocab_size, "model.embed_tokens.weight", embed, 0, 2, "rows")
    expect("hidden_size", h, "model.embed_tokens.weight", embed, 1, 2, "columns")
    if embed is None:
        norm = "model.norm.weight" if "model.norm.weight" in shapes else "model.layers.0.input_layernorm.weight"
        expect("hidden_size", h, norm, shapes.get(norm), 0, 1, "values")
    if not config.tie_word_embeddings and embed is None:
        expect("vocab_size", config.vocab_size, "lm_head.weight", shapes.get("lm_head.weight"), 0, 2, "rows")

    layers = layer_count(list(shapes))
    if layers != config.num_layers:
        found.append(Disagreement("num_layers", config.num_layers,
                                  f"the tensors name model.layers.0 to model.layers.{layers - 1} ({layers} layers)"
                                  if layers else "the tensors name no model.layers.N block"))
    confirmed.add("num_layers")

    p = "model.layers.0."
    if config.qk_norm:
        expect("head_dim", config.head_dim, p + "self_attn.q_norm.weight", shapes.get(p + "self_attn.q_norm.weight"),
               0, 1, "values")
    for field, heads, proj in (("num_heads", config.num_heads, "q_proj"),
                               ("num_kv_heads", config.num_kv_heads, "k_proj")):
        name = p + f"self_attn.{proj}.weight"
        shape = shapes.get(name)
        if shape is None:
            continue
        if len(shape) != 2:
            found.append(Disagreement(field, heads, f"{name} has shape {list(shape)}, not 2-D"))
        elif shape[0] != heads * config.head_dim:
            found.append(Disagreement(field, heads, f"{name} has {shape[0]} rows, not {field} x head_dim = "
                                                    f"{heads} x {config.head_dim}"))
        confirmed.update((field, "head_dim"))
    expect("intermediate_size", config.intermediate_size, p + "mlp.gate_proj.weight",
           shapes.get(p + "mlp.gate_proj.weight"), 0, 2, "rows")
    if found:
        return found
    return _ceiling(config, shapes, confirmed)


def _ceiling(config: ModelConfig, shapes: Mapping[str, Sequence[int]], confirmed: set[str]) -> list[Disagreement]:
    present = sum(_count(shape) for shape in shapes.values())
    implied = config.param_count
    if implied <= MAX_PARAMETER_RATIO * max(present, 1):
        return []
    unconfirmed = [name for name in _DIMENSIONS if name not in confirmed] or ["vocab_size"]
    return [Disagreement(unconfirmed[0], getattr(config, unconfirmed[0]),
                         f"the metadata implies {implied:,} parameters, over {MAX_PARAMETER_RATIO}x the "
                         f"{present:,} values the tensors hold (no tensor present confirms "
                         f"{', '.join(unconfirmed)})")]


def _count(shape: Sequence[int]) -> int:
    count = 1
    for dim in shape:
        count *= int(dim)
    return count


def check_against_tensors(config: ModelConfig, shapes: Mapping[str, Sequence[int]], *,
                          path: str | os.PathLike[str] | None = None) -> None:
    """Refuse a shape its tensors contradict, before any model or buffer is built from it.

    Args:
        config: the shape the metadata describes.
        shapes: tensor name -> shape, for every tensor in the file.
        path: the file, for the message.

    Raises:
        ModelConfigError: naming the first field, with every disagreement in the message.
    """
    found = disagreements(config, shapes)
    if found:
        raise ModelConfigError(
            "metadata disagrees with the tensors: " + "; ".join(map(str, found[:6]))
            + (f"; ... ({len(found)} in all)" if len(found) > 6 else ""),
            path=path, field=found[0].field,
            hint="the metadata was edited or written for another model: compare them with `apr inspect FILE`, "
                 "and re-import or re-export the checkpoint from its source",
        )


def tensor_shape_problems(config: ModelConfig, shapes: Mapping[str, Sequence[int]]) -> list[str]:
    """``"name: missing"``, ``"name: shape [..] != expected [..]"``, ``"name: unexpected ..."``.

    Call it after `check_against_tensors`: it enumerates the config's tensors, which is only as
    cheap as the tensors present once the layer count has been checked against them.
    """
    expected = config.parameter_shapes()
    problems = []
    for name, shape in expected.items():
        if name not in shapes:
            problems.append(f"{name}: missing")
        elif tuple(shapes[name]) != shape:
            problems.append(f"{name}: shape {list(shapes[name])} != expected {list(shape)}")
    tolerated = {"lm_head.weight"}  # beside a tied embedding (an untied model expects it anyway)
    problems += [f"{name}: unexpected tensor for a {config.family} model"
                 for name in sorted(set(shapes) - set(expected) - tolerated)]
    return problems


def physical_memory() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):  # pragma: no cover - not POSIX
        return None


def check_config_ceiling(config: ModelConfig, *, path: str | os.PathLike[str] | None = None,
                         field: str = "--config") -> None:
    """Refuse a shape with no tensors behind it that no run could build.

    Two stated limits: at most `MAX_CONFIG_PARAMETERS` parameters, and fp32 weights (4 bytes per
    parameter; the model is always built on the host first) within this machine's memory.

    Raises:
        ModelConfigError: naming the count, the limit and the dimensions that make it.
    """
    count = config.param_count
    dims = (f"vocab_size {config.vocab_size}, hidden_size {config.hidden_size}, num_layers {config.num_layers}, "
            f"intermediate_size {config.intermediate_size}")
    if count > MAX_CONFIG_PARAMETERS:
        raise ModelConfigError(
            f"the model has {count:,} parameters ({dims}), over the trainer's ceiling of "
            f"{MAX_CONFIG_PARAMETERS:,} (2**35: 16 bytes of training state each, per rank)",
            path=path, field=field, hint="lower num_hidden_layers, hidden_size, intermediate_size or vocab_size",
        )
    memory = physical_memory()
    if memory is not None and count * FP32_BYTES > memory:
        raise ModelConfigError(
            f"the model's fp32 weights alone need {count * FP32_BYTES / 2**30:,.1f} GiB ({count:,} parameters: "
            f"{dims}); this machine has {memory / 2**30:,.1f} GiB of memory", path=path, field=field,
            hint="train a smaller model here, or run on a machine with more memory",
        )


__all__ = [
    "MAX_CONFIG_PARAMETERS",
    "MAX_PARAMETER_RATIO",
    "Disagreement",
    "check_against_tensors",
    "check_config_ceiling",
    "disagreements",
    "layer_count",
    "physical_memory",
    "tensor_shape_problems",
]
