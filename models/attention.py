"""BERT-style post-LayerNorm attention blocks used by MMER's fusion.

One block = (self or cross) attention -> dense -> dropout -> LayerNorm(x + query input)
-> FFN(hidden -> intermediate, exact erf GELU, -> hidden) -> dropout -> LayerNorm(x + residual).
Masks are additive, `(1 - mask) * -10000`, exactly as the reference computes them.

Which kernel computes softmax(QK^T / sqrt(d) + mask) V is a speed choice, not a numerical one
(they agree to float rounding): `attention_implementation: auto` uses torch SDPA on GPUs and
the plain matmul-softmax-matmul on CPU, where SDPA's kernels fall back to an unfused path
with dropout and are slower in bf16 (measurements: docs/performance.md, "Kernel choices").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import MMERConfig
from .dropout import dropout as fast_dropout

MASK_VALUE = -10000.0


def use_sdpa(implementation: str, device: torch.device) -> bool:
    """Whether `attention_implementation` means torch SDPA on tensors on `device`."""
    return implementation == "sdpa" or (implementation == "auto" and device.type != "cpu")


def plain_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    dropout: float,
    scale: float | None = None,
    fast_dropout_masks: bool = True,
) -> torch.Tensor:
    """softmax(q k^T * scale + mask) v with dropout on the probabilities; (batch, heads, T, d).

    `mask` is additive (float) or boolean (True = attend), broadcastable to the scores.
    `fast_dropout_masks`: draw the dropout mask with `models.dropout` (else `F.dropout`).
    """
    scores = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5 if scale is None else scale)
    if mask is not None:  # in place: `scores` is this function's own tensor
        if mask.dtype == torch.bool:
            scores.masked_fill_(~mask, torch.finfo(scores.dtype).min)
        else:
            scores.add_(mask.to(scores.dtype))
    drop = fast_dropout if fast_dropout_masks else F.dropout
    return drop(scores.softmax(dim=-1), dropout, dropout > 0) @ v


def additive_mask(key_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, keys) bool -> (batch, 1, 1, keys) additive mask: 0 for real keys, -10000 for padding."""
    return (1.0 - key_mask[:, None, None, :].to(dtype)) * MASK_VALUE


class AttentionBlock(nn.Module):
    """One post-LN transformer layer whose queries and keys may come from different sequences.

    With `keys is queries` it is BERT's self-attention layer; otherwise the queries
    (batch, Tq, hidden) attend to `keys` (batch, Tk, hidden), and the residual path
    carries the queries.
    """

    def __init__(self, config: MMERConfig):
        super().__init__()
        hidden = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = hidden // self.num_heads
        self.attention_dropout = config.attention_dropout
        self.implementation = config.attention_implementation
        self.fast_dropout = config.fast_dropout

        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.ffn_in = nn.Linear(hidden, config.intermediate_size)
        self.ffn_out = nn.Linear(config.intermediate_size, hidden)
        self.ffn_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # (batch, time, hidden) -> (batch, heads, time, head_dim)
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def attend(self, queries: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Multi-head attention; `mask` is additive, (batch, 1, 1, Tk)."""
        q, k, v = (
            self._heads(self.query(queries)),
            self._heads(self.key(keys)),
            self._heads(self.value(keys)),
        )
        p = self.attention_dropout if self.training else 0.0
        if use_sdpa(self.implementation, q.device):
            context = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask.to(q.dtype), dropout_p=p
            )
        else:
            context = plain_attention(
                q, k, v, mask, p, 1 / math.sqrt(self.head_dim), self.fast_dropout
            )
        return context.transpose(1, 2).flatten(2)  # (batch, Tq, hidden)

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor
    ) -> torch.Tensor:
        """queries (batch, Tq, hidden), keys (batch, Tk, hidden), key_mask (batch, Tk) bool."""
        mask = additive_mask(key_mask, queries.dtype)
        x = self.attn_norm(self.dropout(self.attn_out(self.attend(queries, keys, mask))) + queries)
        h = self.ffn_out(F.gelu(self.ffn_in(x)))  # exact (erf) GELU, as BERT
        return self.ffn_norm(self.dropout(h) + x)
