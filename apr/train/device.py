"""Where training runs, and the few torch capability checks, in one place.

``--device`` follows aprender's grammar ``^(cpu|cuda(:[0-9]|:1[0-5])?|auto)$``. On CUDA the step
runs under bf16 autocast with fp32 master weights (and TF32 matmuls for what stays fp32); on CPU
everything is fp32, which keeps resume continuity exact there.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
from collections.abc import Iterator

import numpy as np
import torch

from apr.errors import UsageError

DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:[0-9]|:1[0-5])?|auto)$")


def check_device_spec(spec: str) -> str:
    """Validate ``--device`` text (no torch query), returning it."""
    if not DEVICE_PATTERN.match(spec):
        raise UsageError(f"--device {spec!r} is not auto, cpu, cuda or cuda:N", field="--device",
                         hint="use --device auto, --device cpu or --device cuda:0")
    return spec


def resolve_device(spec: str, *, local_rank: int | None = None) -> torch.device:
    """The torch device for ``--device`` (under torchrun, ``cuda`` means ``cuda:LOCAL_RANK``).

    Raises:
        UsageError: a CUDA device was asked for and is not there.
    """
    check_device_spec(spec)
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UsageError(f"--device {spec} asked for CUDA, but torch sees no CUDA device", field="--device",
                         hint="use --device cpu (or auto), or install a CUDA build of torch")
    index = int(spec.split(":")[1]) if ":" in spec else (local_rank or 0)
    if index >= torch.cuda.device_count():
        raise UsageError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present", field="--device")
    return torch.device("cuda", index)


def autocast(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast on CUDA; nothing on CPU (fp32 there: bf16 brings no speed on CPU, see formats §6)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices) so model init and dropout-free training repeat."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def configure_backends(device: torch.device) -> None:
    """TF32 for the fp32 matmuls left on CUDA; nothing to do on CPU."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def make_optimizer(model: torch.nn.Module, *, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW with decay on matrices only (nanoGPT), fused on CUDA; its state starts empty.

    An ``--init`` run gets a fresh optimizer: only weights are inherited (FALSIFY-APR-PRETRAIN-INIT-009).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, **extra)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op threads (tests pin 1 for reproducible timing)."""
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value and value.isdigit() else default
