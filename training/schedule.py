"""The learning rate of each optimizer step: optional linear warmup, then constant, cosine or
linear decay (`train.lr_schedule`, `train.warmup_steps` or `train.warmup_fraction`,
`train.min_lr_ratio`).

A pure function of the step count, which the resumable state stores: a resumed run uses
exactly the rates of an uninterrupted one, and there is no scheduler state to save.
"""

from __future__ import annotations

import math

from training.experiment import TrainConfig


def warmup_length(t: TrainConfig, total_steps: int) -> int:
    """Optimizer steps of linear warmup: `warmup_steps`, or `warmup_fraction` of all steps
    (the config allows at most one of them)."""
    return t.warmup_steps or round(t.warmup_fraction * total_steps)


def scheduled_lr(t: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step `step` (0-based) of `total_steps`.

    "constant" without warmup is `t.lr` throughout, the published pipeline's behaviour.
    """
    warmup = warmup_length(t, total_steps)
    if step < warmup:
        return t.lr * (step + 1) / warmup
    if t.lr_schedule == "constant":
        return t.lr
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if t.lr_schedule == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:  # linear
        factor = 1.0 - progress
    return t.lr * (t.min_lr_ratio + (1.0 - t.min_lr_ratio) * factor)
