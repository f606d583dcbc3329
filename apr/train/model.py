"""A decoder-only transformer (llama, mistral, qwen2, qwen3, gemma, gemma2, phi3) in plain PyTorch, top to bottom.

Parameter names and maths are Hugging Face's (``model.layers.N.self_attn.q_proj.weight``, RMSNorm
computed in fp32, RoPE with rotate-half, SwiGLU, grouped-query attention, mistral's sliding window, gemma's
(1 + weight) norms, GELU (tanh) MLP and scaled embeddings), so a state dict moves
between this model and ``transformers``' ``*ForCausalLM`` unchanged and both give the same logits.
Attention goes through ``scaled_dot_product_attention`` (flash / memory-efficient kernels on CUDA).
The same forward serves training (no cache) and generation (``cache=``: an `apr.train.kv_cache.KVCache`
that keeps each layer's keys and values, so a step feeds only the new tokens).

Shape letters: B batch, T time (sequence), C hidden size, H query heads, K key/value heads,
D head_dim, V vocabulary, I intermediate size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from apr.train.config import ModelConfig
from apr.train.kv_cache import KVCache
from apr.train.loss import linear_cross_entropy, softcap_logits


class RMSNorm(nn.Module):
    """x / rms(x) * weight, computed in fp32 whatever the input dtype (as Hugging Face does).

    ``plus_one`` is Gemma's form: the weight is centred on zero (initialised to zeros) and the
    product (x / rms(x)) * (1 + weight) is taken in fp32 before the cast back, as GemmaRMSNorm does.
    """

    def __init__(self, dim: int, eps: float, *, plus_one: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim) if plus_one else torch.ones(dim))
        self.eps = eps
        self.plus_one = plus_one

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.plus_one:
            return (x * (1.0 + self.weight.float())).to(dtype)
        return self.weight * x.to(dtype)


def rope_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables for rotate-half RoPE, computed in fp32 then cast. Returns (T, D) twice."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.int64).float() / head_dim))
    freqs = torch.outer(positions.float(), inv_freq)  # (T, D/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, D)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def causal_mask(queries: torch.Tensor, keys: torch.Tensor, window: int | None) -> torch.Tensor:
    """Which keys each query attends to: (Tq, Tk) bool, from absolute positions.

    Causal (key <= query) and, with a sliding ``window``, only the last ``window`` positions:
    query - key < window (Hugging Face's ``sliding_window_overlay``: ``kv_idx > q_idx - window``).
    """
    q, k = queries[:, None], keys[None, :]
    allowed = k <= q
    if window is not None:
        allowed = allowed & (q - k < window)
    return allowed


def attention_mask(start: int, T: int, window: int | None, device: torch.device) -> torch.Tensor | None:
    """Which of the ``start + T`` keys each of the T new queries (positions ``start ..``) sees, or
    None when plain causal attention (T > 1) or no mask at all (one query) says it.

    A sliding window that the sequence outgrows keeps the last ``window`` positions; a chunk after a
    cached prefix sees all of the prefix and the causal triangle of itself (SDPA's ``is_causal``
    aligns the triangle top-left, which is wrong once the keys outnumber the queries).
    """
    S = start + T
    if window is not None and S > window:
        return causal_mask(torch.arange(start, S, device=device), torch.arange(S, device=device), window)  # (T, S)
    if T > 1 and start > 0:
        return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=start)
    return None


def repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, K, S, D) -> (B, K * groups, S, D), each key/value head repeated for its query group
    (Hugging Face's repeat_kv); every SDPA backend, flash included, accepts the result."""
    if groups == 1:
        return x
    B, K, S, D = x.shape
    return x[:, :, None].expand(B, K, groups, S, D).reshape(B, K * groups, S, D)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (i, i + D/2) of each head by its position's angle. x: (B, H, T, D)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)  # rotate_half
    return x * cos + rotated * sin


class Attention(nn.Module):
    """Causal grouped-query self-attention with RoPE (plus q/k biases for qwen2, q/k norms for qwen3)."""

    def __init__(self, config: ModelConfig, layer: int = 0) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = config.num_heads, config.num_kv_heads, config.head_dim
        self.layer = layer  # its slot in a KVCache
        self.sliding_window = config.window_for(layer)
        # gemma2: scores scaled by 1 / sqrt(query_pre_attn_scalar) and squashed by cap * tanh(s / cap)
        self.scale = config.query_pre_attn_scalar ** -0.5 if config.query_pre_attn_scalar is not None else None
        self.softcap = config.attn_softcap
        q_dim, kv_dim = config.num_heads * config.head_dim, config.num_kv_heads * config.head_dim
        self.fused = config.fused_projections
        if self.fused:  # phi3: rows q | k | v
            self.qkv_proj = nn.Linear(config.hidden_size, q_dim + 2 * kv_dim, bias=False)
        else:
            self.q_proj = nn.Linear(config.hidden_size, q_dim, bias=config.qkv_bias)
            self.k_proj = nn.Linear(config.hidden_size, kv_dim, bias=config.qkv_bias)
            self.v_proj = nn.Linear(config.hidden_size, kv_dim, bias=config.qkv_bias)
        self.o_proj = nn.Linear(q_dim, config.hidden_size, bias=False)
        if config.qk_norm:
            self.q_norm = RMSNorm(config.head_dim, config.rms_norm_eps, plus_one=config.norm_plus_one)
            self.k_norm = RMSNorm(config.head_dim, config.rms_norm_eps, plus_one=config.norm_plus_one)
        self.qk_norm = config.qk_norm

    def project(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """q (B, H, T, D), k and v (B, K, T, D): projected, normed (qwen3), rotated."""
        B, T, _ = x.shape
        q_dim, kv_dim = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        if self.fused:
            q, k, v = self.qkv_proj(x).split((q_dim, kv_dim, kv_dim), dim=-1)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = q.view(B, T, self.num_heads, self.head_dim)  # (B, T, H, D)
        k = k.view(B, T, self.num_kv_heads, self.head_dim)  # (B, T, K, D)
        v = v.view(B, T, self.num_kv_heads, self.head_dim)  # (B, T, K, D)
        if self.qk_norm:  # qwen3: per-head RMSNorm before RoPE
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H|K, T, D)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, *,
               causal: bool) -> torch.Tensor:
        """softmax(q k^T * scale) v over (B, H, S, D) keys/values already expanded to H heads.

        ``mask`` (Tq, S) bool says which keys each query sees; without one, ``causal`` makes it
        the causal triangle. Softcapped attention (gemma2) cannot go through SDPA: it is computed
        here with the softmax in fp32, as transformers' eager attention does.
        """
        if self.softcap is None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None,
                                                  scale=self.scale)
        scores = (q @ k.transpose(-1, -2)) * (self.scale if self.scale is not None else self.head_dim ** -0.5)
        scores = softcap_logits(scores, self.softcap)  # (B, H, Tq, S)
        if mask is None and causal:
            mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril(
                diagonal=k.shape[-2] - q.shape[-2])
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype) @ v

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: KVCache | None = None) -> torch.Tensor:
        """x (B, T, C) at positions ``cache.length ..`` (0 without a cache); the new keys and values
        join the cache's, and the queries attend over all of them."""
        B, T, _ = x.shape
        start = cache.length if cache is not None else 0
        q, k, v = self.project(x, cos, sin)
        if cache is not None:
            k, v = cache.store(self.layer, k, v)  # (B, K, S, D), S = start + T
        groups = self.num_heads // self.num_kv_heads
        k, v = repeat_kv(k, groups), repeat_kv(v, groups)  # (B, H, S, D)
        mask = attention_mask(start, T, self.sliding_window, x.device)
        y = self.attend(q, k, v, mask, causal=T > 1)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, self.num_heads * self.head_dim)  # (B, T, H*D)
        return self.o_proj(y)  # (B, T, C)


def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    """The MLP's gate activation by its config.json name (`apr.arch.features.ACTIVATIONS`)."""
    if name == "gelu_pytorch_tanh":
        return F.gelu(x, approximate="tanh")
    return F.silu(x)


class MLP(nn.Module):
    """Gated MLP: down(act(gate(x)) * up(x)); SwiGLU with silu, GeGLU (tanh) for gemma."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.fused = config.fused_projections
        if self.fused:  # phi3: rows gate | up
            self.gate_up_proj = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        else:
            self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
            self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.hidden_act = config.hidden_act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        else:
            gate, up = self.gate_proj(x), self.up_proj(x)
        return self.down_proj(activation(self.hidden_act, gate) * up)  # (B, T, I) -> (B, T, C)


class DecoderLayer(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x)).

    gemma2's sandwich: x + norm(attn(norm(x))), then x + norm(mlp(norm(x))); its
    ``post_attention_layernorm`` normalises the attention output, ``pre_feedforward_layernorm`` the
    MLP input and ``post_feedforward_layernorm`` its output.
    """

    def __init__(self, config: ModelConfig, layer: int = 0) -> None:
        super().__init__()
        plus_one = config.norm_plus_one
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, plus_one=plus_one)
        self.self_attn = Attention(config, layer)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, plus_one=plus_one)
        self.sandwich = config.sandwich_norms
        if self.sandwich:
            self.pre_feedforward_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, plus_one=plus_one)
            self.post_feedforward_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, plus_one=plus_one)
        self.mlp = MLP(config)

    def add_attention(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """The residual after attention (``attended``: the o_proj output)."""
        return x + (self.post_attention_layernorm(attended) if self.sandwich else attended)

    def add_mlp(self, x: torch.Tensor) -> torch.Tensor:
        """The residual after the feed-forward block."""
        if self.sandwich:
            return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))
        return x + self.mlp(self.post_attention_layernorm(x))

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: KVCache | None = None) -> torch.Tensor:
        return self.add_mlp(self.add_attention(x, self.self_attn(self.input_layernorm(x), cos, sin, cache)))


class DecoderStack(nn.Module):
    """Embedding, the layers and the final norm: Hugging Face's ``model.`` prefix."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps, plus_one=config.norm_plus_one)
        self.head_dim, self.rope_theta = config.head_dim, config.rope_theta
        self.embed_scale = config.embed_scale

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings (B, T, C); gemma scales them by sqrt(hidden_size), cast to their dtype first."""
        x = self.embed_tokens(input_ids)
        if self.embed_scale is not None:
            x = x * torch.tensor(self.embed_scale, dtype=torch.float32, device=x.device).to(x.dtype)
        return x

    def forward(self, input_ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Final hidden states (B, T, C) of ``input_ids`` (B, T); with a ``cache`` they continue the
        cached sequence (positions from ``cache.length``) and the cache grows by T.

        Raises:
            InferenceError: the cache cannot hold T more positions.
        """
        x = self.embed(input_ids)  # (B, T, C)
        T = input_ids.shape[1]
        start = 0
        if cache is not None:
            start = cache.length
            cache.reserve(start + T)
        positions = torch.arange(start, start + T, device=input_ids.device)
        dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype
        cos, sin = rope_cos_sin(positions, self.head_dim, self.rope_theta, dtype)  # (T, D)
        for layer in self.layers:
            x = layer(x, cos, sin, cache)
        if cache is not None:
            cache.advance(T)
        return self.norm(x)  # (B, T, C)


class CausalLM(nn.Module):
    """The language model: ``model`` (the stack) and ``lm_head`` (tied to the embedding or not)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.model = DecoderStack(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """Hugging Face's init: normal(0, initializer_range) for weights, zeros for biases."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)

    def forward(
        self, input_ids: torch.Tensor, targets: torch.Tensor | None = None, *, loss_chunk_rows: int | None = None,
        cache: KVCache | None = None, last_only: bool = False,
    ) -> torch.Tensor:
        """Logits (B, T, V) without ``targets``; with them, the mean next-token cross-entropy.

        With targets the head and the loss are fused and chunked (`linear_cross_entropy`), so the
        (B*T, V) logits never exist at once: on a 150k vocabulary that is the largest tensor of
        the step. With a ``cache`` the tokens continue the cached sequence (generation); with
        ``last_only`` only the last position's logits (B, 1, V) are computed (a prompt's prefill
        needs no more).
        """
        h = self.model(input_ids, cache)  # (B, T, C)
        if targets is None:
            return self.logits(h[:, -1:] if last_only else h)  # (B, T | 1, V)
        return linear_cross_entropy(
            h.reshape(-1, h.shape[-1]), self.lm_head.weight, targets.reshape(-1), chunk_rows=loss_chunk_rows,
            softcap=self.config.final_softcap,
        )

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """The head on final hidden states; gemma2 squashes them by cap * tanh(z / cap)."""
        logits = self.lm_head(h)
        return softcap_logits(logits, self.config.final_softcap) if self.config.final_softcap is not None else logits

    def hf_state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters under their Hugging Face names; a tied ``lm_head.weight`` is left out."""
        state = {name: tensor for name, tensor in self.state_dict().items()}
        if self.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        return state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # shared (tied) tensors counted once


def flops_per_token(config: ModelConfig, seq_length: int) -> float:
    """Training FLOPs per token: 6·N + 12·layers·hidden·seq (the PaLM appendix-B count)."""
    return 6.0 * config.param_count + 12.0 * config.num_layers * config.hidden_size * seq_length


__all__ = ["CausalLM", "KVCache", "RMSNorm", "activation", "apply_rope", "attention_mask", "causal_mask",
           "flops_per_token", "repeat_kv", "rope_cos_sin"]
