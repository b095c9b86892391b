"""Dropout with a cheaper random mask on CPU.

Dropout's cost on a CPU is the random number generator, not the arithmetic: torch draws one
Bernoulli sample per element (about 6 ns each, single-threaded), which made dropout the second
largest cost of a demo training step and about 6 % of a full-size one. Here each element's
keep/drop decision uses 15 bits of a 64-bit random word (four decisions per word), so the keep
probability is 1 - p rounded to a multiple of 1/32768 (p = 0.1 -> 0.100006) and the kept values
are scaled by the exact inverse of it: the expectation is unchanged, as in `F.dropout`.
Other devices use `F.dropout` (GPU generators are already fast). Timings: docs/performance.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 15  # decisions use the low 15 bits of each 16-bit slice of a random word


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """`F.dropout(x, p, training)` with the mask drawn as described above on CPU."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not 0.0 < p < 1.0:
        return F.dropout(x, p, training)
    threshold = round(p * _LEVELS)
    words = torch.empty(x.numel() // 4 + 1, dtype=torch.int64).random_()  # 63 random bits
    keep = (words.view(torch.int16)[: x.numel()].view(x.shape) & (_LEVELS - 1)) >= threshold
    return x * keep * (_LEVELS / (_LEVELS - threshold))


class Dropout(nn.Dropout):
    """`nn.Dropout` computed by `dropout` (same `p`, same state dict: none)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


def use_fast_dropout(model: nn.Module) -> nn.Module:
    """Replace every `nn.Dropout` in `model` (the HF encoder's included) by `Dropout`."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, Dropout(child.p, child.inplace))
    return model
