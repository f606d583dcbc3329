"""What a checkpoint is: its family from tensor names, its claimed identity, its quality score."""

from apr.identity.family import (
    FAMILIES,
    HF_CLASS_FOR_FAMILY,
    HF_MODEL_TYPE_FOR_FAMILY,
    family_from_tensor_names,
    normalize_metadata_arch_family,
    salvage_command,
    validate_init_arch_matches_tensor_evidence,
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
