"""Which model family a checkpoint is, from its tensor names and from its metadata claim.

This is the evidence behind INV-INIT-ARCH-MATCH-001 (docs/aprender-format.md §5.1–5.3): the tensor
names are the ground truth of what a checkpoint *is*; the ``architecture`` metadata string is only
a claim. When both resolve to concrete, different families the checkpoint is lying about itself and
resuming from it would silently train from random weights (the seed's SPEC §86 incident).

The rules, their order and the strings are aprender's, so our answers equal its answers.
"""

from __future__ import annotations

from collections.abc import Iterable

from apr.errors import ArchitectureMismatchError

FAMILIES: tuple[str, ...] = (
    "qwen3",
    "qwen2",
    "llama",
    "mamba",
    "rwkv",
    "gpt-neox",
    "opt",
    "bert",
    "gpt2",
    "unknown",
)

# family slug -> the Hugging Face class that `apr stamp --hf-architecture` should write (§5.3).
HF_CLASS_FOR_FAMILY: dict[str, str] = {
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "llama": "LlamaForCausalLM",
    "gpt2": "GPT2LMHeadModel",
    "gpt-neox": "GPTNeoXForCausalLM",
    "mamba": "MambaForCausalLM",
    "rwkv": "RwkvForCausalLM",
    "bert": "BertModel",
    "opt": "OPTForCausalLM",
}

# family slug -> config.json `model_type` (Hugging Face's own spelling).
HF_MODEL_TYPE_FOR_FAMILY: dict[str, str] = {
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "llama": "llama",
    "gpt2": "gpt2",
    "gpt-neox": "gpt_neox",
    "mamba": "mamba",
    "rwkv": "rwkv",
    "bert": "bert",
    "opt": "opt",
}

# Exact-string table of §5.2: HF classes, slugs and capitalised legacy names.
_ARCH_CLAIM_TO_FAMILY: dict[str, str] = {
    # HF classes
    "Qwen2ForCausalLM": "qwen2",
    "Qwen2.5ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3",
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "llama",
    "Phi3ForCausalLM": "llama",
    "PhiForCausalLM": "llama",
    "GPT2LMHeadModel": "gpt2",
    "GPTNeoXForCausalLM": "gpt-neox",
    "MambaForCausalLM": "mamba",
    "RwkvForCausalLM": "rwkv",
    "Rwkv6ForCausalLM": "rwkv",
    "BertModel": "bert",
    "BertForMaskedLM": "bert",
    "OPTForCausalLM": "opt",
    # slugs
    "qwen2": "qwen2",
    "qwen2.5": "qwen2",
    "qwen": "qwen2",
    "qwen3": "qwen3",
    "qwen3_5": "qwen3",
    "qwen3.5": "qwen3",
    "llama": "llama",
    "mistral": "llama",
    "phi": "llama",
    "phi3": "llama",
    "phi4": "llama",
    "gpt2": "gpt2",
    "gpt-neox": "gpt-neox",
    "gpt_neox": "gpt-neox",
    "gptneox": "gpt-neox",
    "pythia": "gpt-neox",
    "mamba": "mamba",
    "rwkv": "rwkv",
    "bert": "bert",
    "opt": "opt",
    # capitalised legacy names
    "Qwen2": "qwen2",
    "Qwen2.5": "qwen2",
    "Qwen": "qwen2",
    "Qwen3": "qwen3",
    "Llama": "llama",
    "Mistral": "llama",
    "Phi": "llama",
    "Phi3": "llama",
    "Phi4": "llama",
    "Gpt2": "gpt2",
    "GPT2": "gpt2",
}


def family_from_tensor_names(names: Iterable[str]) -> str:
    """Infer the model family from tensor names, with aprender's rules in aprender's order.

    Args:
        names: the tensor names of a checkpoint (any iterable; read once).

    Returns:
        One of `FAMILIES`; ``"unknown"`` when the names are ambiguous (e.g. GGUF ``blk.N``).

    Example:
        >>> family_from_tensor_names(["model.layers.0.self_attn.q_proj.bias"])
        'qwen2'
    """
    names = list(names)

    def any_contains(fragment: str) -> bool:
        return any(fragment in n for n in names)

    def any_startswith(prefix: str) -> bool:
        return any(n.startswith(prefix) for n in names)

    # 1. distinctive prefixes, checked before the generic `model.layers`
    if any_contains("mixer.in_proj") or any_contains("mixer.out_proj"):
        return "mamba"
    if any_startswith("rwkv.blocks.") or any_contains("blocks.0.att."):
        return "rwkv"
    if any_startswith("gpt_neox."):
        return "gpt-neox"
    if any_startswith("model.decoder.layers."):
        return "opt"
    if any_startswith("bert."):
        return "bert"
    # 2. the llama-like decoders, told apart by qk-norm (qwen3) and q bias / fused qkv (qwen2)
    if any_contains("model.layers"):
        if any_contains("self_attn.q_norm.weight"):
            return "qwen3"
        if any_contains("self_attn.q_proj.bias") or any_contains("qkv_proj.weight"):
            return "qwen2"
        return "llama"
    # 3. gpt2
    if any_contains("transformer.h") or any(n.startswith("h.") and ".attn." in n for n in names):
        return "gpt2"
    # 4./5. GGUF `blk.` names are ambiguous; everything else is unknown
    return "unknown"


def normalize_metadata_arch_family(arch: str | None) -> str | None:
    """Map an ``architecture`` claim (HF class, slug or legacy name) to a family slug.

    Exact-string match, as aprender does; ``None`` means "no usable claim: skip the cross-check".

    Example:
        >>> normalize_metadata_arch_family("LlamaForCausalLM")
        'llama'
        >>> normalize_metadata_arch_family("WeirdNovelArchForCausalLM") is None
        True
    """
    if arch is None:
        return None
    return _ARCH_CLAIM_TO_FAMILY.get(arch)


def salvage_command(tensor_family: str, path: str = "<input.apr>", output: str = "<stamped.apr>") -> str:
    """The `apr stamp` command that makes a checkpoint's identity agree with its tensors."""
    import shlex

    def quote(arg: str) -> str:  # placeholders stay readable; real paths must survive the shell
        return arg if arg.startswith("<") and arg.endswith(">") else shlex.quote(arg)

    hf_class = HF_CLASS_FOR_FAMILY.get(tensor_family)
    parts = ["apr stamp", quote(path), "--architecture", tensor_family]
    if hf_class:
        parts += ["--hf-architecture", hf_class]
    model_type = HF_MODEL_TYPE_FOR_FAMILY.get(tensor_family)
    if model_type:
        parts += ["--hf-model-type", model_type]
    parts += ["-o", quote(output)]
    return " ".join(parts)


def validate_init_arch_matches_tensor_evidence(
    metadata_arch: str | None, tensor_names: Iterable[str], *, path: str | None = None
) -> None:
    """INV-INIT-ARCH-MATCH-001: refuse a checkpoint whose architecture claim contradicts its tensors.

    Skip rules (§5.3): no claim, an unmappable claim, or tensors whose family is "unknown" never
    fail — the gate only fires when both sides are concrete and different.

    Args:
        metadata_arch: the raw ``architecture`` string of the checkpoint's metadata (not
            ``hf_architecture``), or ``None``.
        tensor_names: the checkpoint's tensor names.
        path: the checkpoint's path, used in the salvage command of the error.

    Raises:
        ArchitectureMismatchError: naming both families and the exact `apr stamp` salvage command.

    Example:
        >>> validate_init_arch_matches_tensor_evidence(
        ...     "qwen2", ["model.layers.0.self_attn.q_proj.bias"])  # agrees: returns None
    """
    metadata_family = normalize_metadata_arch_family(metadata_arch)
    if metadata_family is None:
        return
    tensor_family = family_from_tensor_names(tensor_names)
    if tensor_family == "unknown" or tensor_family == metadata_family:
        return
    command = salvage_command(tensor_family, path or "<input.apr>")  # output: <stamped.apr>
    message = (
        f"FALSIFY-INIT-ARCH-MATCH-001: --init APR metadata claims architecture family "
        f"`{metadata_family}` (from `{metadata_arch}`) but tensor naming implies family "
        f"`{tensor_family}`. This is the SPEC §86 silent-failure pattern: a checkpoint stamped "
        f"with the wrong family loads as random-init and trains from scratch."
    )
    raise ArchitectureMismatchError(
        message,
        path=path,
        field="architecture",
        hint=f"{command}  (then re-run with --init <stamped.apr>)",
        claimed_family=metadata_family,
        tensor_family=tensor_family,
        salvage=command,
    )


__all__ = [
    "FAMILIES",
    "HF_CLASS_FOR_FAMILY",
    "HF_MODEL_TYPE_FOR_FAMILY",
    "family_from_tensor_names",
    "normalize_metadata_arch_family",
    "salvage_command",
    "validate_init_arch_matches_tensor_evidence",
]
