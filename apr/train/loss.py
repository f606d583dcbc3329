"""Next-token cross-entropy fused with the output projection, computed in row chunks.

For a 150k vocabulary the (B*T, V) logits are the largest tensor of a training step (16x1024
rows: 5 GB in bf16, twice that once upcast for the softmax). `linear_cross_entropy` never holds
more than one chunk of them: the forward pass computes each chunk's loss *and* its gradients
with respect to the hidden states and the head weight (softmax minus one-hot), so the backward
pass is a multiplication by the incoming scalar. Same idea as Liger-Kernel's fused linear
cross-entropy, in plain PyTorch so it runs on CPU, CUDA and under ``torch.compile``.

Targets equal to ``IGNORE_INDEX`` (-100, as in PyTorch) contribute nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
# Rows per chunk by default: 4096 rows x 150k vocab x 4 bytes ~ 2.4 GB of fp32 logits at a time.
DEFAULT_CHUNK_ROWS = 4096


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_rows: int,
                softcap: float | None = None) -> torch.Tensor:
        # hidden (N, C) in the compute dtype; weight (V, C), master copy (fp32 under autocast)
        compute_dtype = hidden.dtype
        stats_dtype = torch.promote_types(compute_dtype, torch.float32)  # fp32, or fp64 for fp64 inputs
        w = weight.to(compute_dtype)  # (V, C)
        valid = targets != IGNORE_INDEX  # (N,)
        count = valid.sum().clamp_min(1).to(stats_dtype)
        needs_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        grad_hidden = torch.empty_like(hidden) if needs_grad else None
        grad_weight = torch.zeros(weight.shape, dtype=stats_dtype, device=weight.device) if needs_grad else None
        total = torch.zeros((), dtype=stats_dtype, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk_rows):
            h = hidden[start:start + chunk_rows]  # (n, C)
            t = targets[start:start + chunk_rows]  # (n,)
            keep = valid[start:start + chunk_rows]  # (n,)
            safe_t = torch.where(keep, t, torch.zeros_like(t))
            logits = (h @ w.t()).to(stats_dtype)  # (n, V), softmax statistics in fp32
            if softcap is not None:  # gemma2: cap * tanh(z / cap); its derivative is 1 - tanh^2
                squashed = torch.tanh(logits / softcap)
                logits = squashed * softcap
            lse = torch.logsumexp(logits, dim=-1)  # (n,)
            picked = logits.gather(1, safe_t[:, None])[:, 0]  # (n,)
            total = total + torch.where(keep, lse - picked, torch.zeros_like(lse)).sum()
            if needs_grad:
                probs = torch.exp(logits - lse[:, None])  # (n, V): d loss / d logits, before the one-hot
                probs.scatter_add_(1, safe_t[:, None], torch.full_like(lse[:, None], -1.0))
                probs = probs * (keep.to(stats_dtype) / count)[:, None]  # mean over valid targets
                if softcap is not None:
                    probs = probs * (1 - squashed * squashed)  # chain rule through the cap
                g = probs.to(compute_dtype)  # (n, V)
                assert grad_hidden is not None and grad_weight is not None  # allocated when needs_grad
                grad_hidden[start:start + chunk_rows] = g @ w  # (n, C)
                grad_weight += (g.t() @ h).to(stats_dtype)  # (V, C)
        if grad_hidden is not None and grad_weight is not None:  # needs_grad
            ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        return total / count

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        return (grad_hidden * grad_output.to(grad_hidden.dtype), grad_weight * grad_output.to(grad_weight.dtype),
                None, None, None)


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *, chunk_rows: int | None = None,
    softcap: float | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of ``hidden @ weight.T`` against ``targets``, chunked over rows.

    Args:
        hidden: (N, C) final hidden states.
        weight: (V, C) output projection (the embedding when tied).
        targets: (N,) token ids, ``IGNORE_INDEX`` to skip a position.
        chunk_rows: rows per chunk; ``None`` uses `DEFAULT_CHUNK_ROWS`; ``0`` computes the full
            logits and calls ``F.cross_entropy`` (the reference the chunked path is tested against).
        softcap: Gemma 2's final-logit softcapping: the loss is taken on ``cap * tanh(z / cap)``.

    Returns:
        A scalar fp32 tensor.

    Example:
        >>> h, w = torch.randn(6, 4), torch.randn(10, 4)
        >>> t = torch.tensor([1, 2, 3, 4, 5, 6])
        >>> ref = F.cross_entropy(h @ w.T, t)
        >>> bool(torch.allclose(linear_cross_entropy(h, w, t, chunk_rows=4), ref, atol=1e-6))
        True
    """
    if chunk_rows == 0:
        logits = (hidden @ weight.to(hidden.dtype).t()).to(torch.promote_types(hidden.dtype, torch.float32))  # (N, V)
        if softcap is not None:
            logits = softcap_logits(logits, softcap)
        return F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)
    return _ChunkedLinearCrossEntropy.apply(hidden, weight, targets, chunk_rows or DEFAULT_CHUNK_ROWS, softcap)


def softcap_logits(logits: torch.Tensor, cap: float) -> torch.Tensor:
    """``cap * tanh(logits / cap)``: Gemma 2's attention and final-logit softcapping."""
    return torch.tanh(logits / cap) * cap
