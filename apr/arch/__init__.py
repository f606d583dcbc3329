"""The registry of architectures the runtime implements exactly, and refusal for the rest.

Modules, one job each: `features` (what a config asks for), `schema` (tensor names per family),
`registry` (the entries), `config_keys` (HF config.json / APR metadata / GGUF keys),
`resolve` (entry or refusal). Light to import: no torch.
"""

from apr.arch.features import FLAG_KEYS, Feature
from apr.arch.registry import IMPLEMENTED, NOT_IMPLEMENTED, REGISTRY, ArchSpec, slug_of, spec_for
from apr.arch.resolve import (
    Refusal,
    Resolution,
    architecture_from_metadata,
    require_architecture,
    resolve_architecture,
    spec_from_metadata,
)

__all__ = [
    "FLAG_KEYS",
    "IMPLEMENTED",
    "NOT_IMPLEMENTED",
    "REGISTRY",
    "ArchSpec",
    "Feature",
    "Refusal",
    "Resolution",
    "architecture_from_metadata",
    "require_architecture",
    "resolve_architecture",
    "slug_of",
    "spec_for",
    "spec_from_metadata",
]
