"""Given an architecture (slug or metadata claims), its config or metadata, and its tensor names:
the registry entry, or a refusal naming the architecture and everything missing or unsupported.

`resolve_architecture` is pure and returns a `Resolution`; `require_architecture` and
`spec_from_metadata` raise `UnsupportedArchitectureError` (exit 5) for the commands that run,
train or export a model. Nothing here guesses from a similar family: a claim names the entry, the
tensors must fit its schema, and every config request its module does not honour is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from apr.arch.features import Feature, requested_features, rope_scaling_type
from apr.arch.registry import IMPLEMENTED, NOT_IMPLEMENTED, ArchSpec, slug_of, spec_for
from apr.arch.schema import schema_problems
from apr.errors import UnsupportedArchitectureError

CLAIM_KEYS: tuple[str, ...] = ("architecture", "hf_model_type", "model_type", "hf_architecture")
KEEP_WORKING = "apr inspect, apr validate and apr stamp still work on this file"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an architecture cannot be run, trained or exported exactly."""

    architecture: str
    reasons: tuple[str, ...]
    hint: str

    @property
    def message(self) -> str:
        return f"the runtime does not implement architecture {self.architecture!r} exactly: {'; '.join(self.reasons)}"

    def error(self, *, path: str | None = None) -> UnsupportedArchitectureError:
        """The error to raise; a ``FILE`` placeholder in the hint becomes ``path`` (shell-quoted)."""
        import shlex

        hint = self.hint.replace(" FILE ", f" {shlex.quote(path)} ") if path else self.hint
        return UnsupportedArchitectureError(self.message, architecture=self.architecture, reasons=self.reasons,
                                            path=path, field="architecture", hint=hint)


@dataclass(frozen=True, slots=True)
class Resolution:
    """Exactly one of ``spec`` (the registry entry) and ``refusal``."""

    architecture: str
    spec: ArchSpec | None = None
    refusal: Refusal | None = None

    @property
    def ok(self) -> bool:
        return self.spec is not None


def _implemented_hint() -> str:
    return (f"the runtime implements {', '.join(IMPLEMENTED)}; run this model with transformers "
            f"({KEEP_WORKING})")


def _config_problems(spec: ArchSpec, settings: Mapping[str, Any]) -> list[str]:
    features, other = requested_features(settings)
    problems = list(other)
    for feature, value in features.items():
        if not spec.honours(feature):
            shown = f" ({value})" if feature in (Feature.SOFTCAPPING, Feature.GELU_TANH, Feature.QUERY_SCALAR,
                                                 Feature.ALTERNATING_WINDOW) else \
                f" of {value} tokens, shorter than the context" if feature is Feature.SLIDING_WINDOW else ""
            problems.append(f"{feature.value}{shown}, which the {spec.model_type} module does not implement")
    kind = rope_scaling_type(settings)
    if kind is not None and kind in spec.rope_scaling_types:
        problems.remove(f"rope scaling type {kind!r}")
    if settings.get("attention_bias") and not spec.honours(Feature.QKV_BIAS):
        problems.append("attention_bias")
    window = features.get(Feature.SLIDING_WINDOW)
    if window is not None and spec.honours(Feature.SLIDING_WINDOW) and \
            (isinstance(window, bool) or not isinstance(window, int) or window <= 0):
        problems.append(f"sliding_window {window!r} is not a positive integer")
    return problems


def resolve_architecture(
    architecture: str | None,
    settings: Mapping[str, Any] | None = None,
    tensor_names: Iterable[str] | None = None,
) -> Resolution:
    """The registry entry for ``architecture``, or why it is refused.

    Args:
        architecture: a slug, ``model_type`` or HF class (``None``: unknown).
        settings: config.json, or APR metadata carrying the same keys (`apr.arch.features.FLAG_KEYS`).
        tensor_names: the checkpoint's tensors (Hugging Face names), if any.

    Example:
        >>> resolve_architecture("gemma3").refusal.reasons[0][:34]
        'the runtime does not implement it:'
        >>> resolve_architecture("mistral", {"sliding_window": 4}).spec.model_type
        'mistral'
    """
    slug = slug_of(architecture) if architecture else None
    name = slug or architecture or "unknown"
    if slug in NOT_IMPLEMENTED:
        return Resolution(name, refusal=Refusal(name, (f"the runtime does not implement it: {NOT_IMPLEMENTED[slug]}",),
                                                _implemented_hint()))
    spec = spec_for(slug) if slug else None
    if spec is None:
        what = "no architecture is named" if not architecture else "it is not a model_type the registry knows"
        return Resolution(name, refusal=Refusal(name, (what,), _implemented_hint()))
    problems = _config_problems(spec, settings or {})
    if tensor_names is not None:
        problems += schema_problems(spec.schema, tensor_names)
    if problems:
        return Resolution(name, refusal=Refusal(name, tuple(problems), _implemented_hint()))
    return Resolution(name, spec=spec)


def _conflicting_claims(claims: list[tuple[str, str]], names: list[str] | None) -> Refusal:
    """Claims that name more than one architecture: the tensors say which stamp makes them agree."""
    from apr.identity import family_from_tensor_names, salvage_command

    shown = ", ".join(f"{k}={v!r}" for k, v in claims)
    reasons = [f"the metadata names more than one architecture ({shown})"]
    family = family_from_tensor_names(names) if names else "unknown"
    if family in IMPLEMENTED:
        reasons.append(f"the tensors are {family}")
        hint = salvage_command(family, "FILE").replace(" -o <stamped.apr>", " --in-place")
    else:
        hint = "apr stamp FILE --architecture SLUG --hf-architecture CLASS --hf-model-type SLUG --in-place, " \
               "with the architecture of the weights"
    named = sorted({slug_of(v) or v for _, v in claims})
    return Refusal(named[0], tuple(reasons), f"{hint} ({KEEP_WORKING})")


def architecture_from_metadata(metadata: Mapping[str, Any], tensor_names: Iterable[str] | None = None) -> Resolution:
    """The architecture APR metadata claims, as a `Resolution`.

    The claims (``architecture``, ``hf_model_type``, ``model_type``, ``hf_architecture``) must name
    one architecture; a file with no claim falls back on its tensor names' family
    (`apr.identity.family_from_tensor_names`), which only ever names llama, qwen2 or qwen3.
    """
    names = list(tensor_names) if tensor_names is not None else None
    claims = [(key, metadata[key]) for key in CLAIM_KEYS if isinstance(metadata.get(key), str) and metadata[key]]
    slugs = {value: slug_of(value) for _, value in claims}
    named = sorted({s or v for v, s in slugs.items()})
    if len(named) > 1:
        return Resolution(named[0], refusal=_conflicting_claims(claims, names))
    if named:
        return resolve_architecture(named[0], metadata, names)
    if names:
        from apr.identity import family_from_tensor_names

        family = family_from_tensor_names(names)
        if family != "unknown":
            return resolve_architecture(family, metadata, names)
    return resolve_architecture(None, metadata, names)


def spec_from_metadata(metadata: Mapping[str, Any], tensor_names: Iterable[str] | None = None, *,
                       path: str | None = None) -> ArchSpec:
    """`architecture_from_metadata`, raising its refusal.

    Raises:
        UnsupportedArchitectureError: naming the architecture and every reason (exit 5).
    """
    resolution = architecture_from_metadata(metadata, tensor_names)
    if resolution.refusal is not None:
        raise resolution.refusal.error(path=path)
    assert resolution.spec is not None
    return resolution.spec


def require_architecture(architecture: str | None, settings: Mapping[str, Any] | None = None,
                         tensor_names: Iterable[str] | None = None, *, path: str | None = None) -> ArchSpec:
    """`resolve_architecture`, raising its refusal.

    Raises:
        UnsupportedArchitectureError: naming the architecture and every reason (exit 5).
    """
    resolution = resolve_architecture(architecture, settings, tensor_names)
    if resolution.refusal is not None:
        raise resolution.refusal.error(path=path)
    assert resolution.spec is not None
    return resolution.spec


__all__ = ["CLAIM_KEYS", "Refusal", "Resolution", "architecture_from_metadata", "require_architecture",
           "resolve_architecture", "spec_from_metadata"]
