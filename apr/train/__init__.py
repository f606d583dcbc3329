"""Training: a plain llama/qwen2/qwen3 model file, a config record, one visible loop.

``torch`` is imported by the submodules that need it (``model``, ``loss``, ``loop``...), not here,
so ``from apr.train import ModelConfig`` stays cheap.
"""

from apr.train.chinchilla import ChinchillaVerdict, GateStatus, estimate_param_count, evaluate_chinchilla_gate
from apr.train.config import ModelConfig
from apr.train.schedule import LrSchedule

__all__ = [
    "ChinchillaVerdict",
    "GateStatus",
    "LrSchedule",
    "ModelConfig",
    "estimate_param_count",
    "evaluate_chinchilla_gate",
]
