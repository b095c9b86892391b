"""The training objective: CE + lambda_aux * sum(weight * auxiliary loss), the auxiliaries
being named entries of `AUXILIARY_LOSSES`.

The paper's three are registered here: CTC speech recognition on the encoder frames,
supervised contrastive (SCL) and augmentation contrastive (ACL) on the projected features.
A new auxiliary loss is one function registered with `@auxiliary_loss("name", ...)` plus its
weight in the config (`model.auxiliary_losses: {name: weight}`); reports and TensorBoard
pick its name up. The heads a loss alone trains are frozen while it is off (one checkpoint
layout for every ablation, and DDP needs no unused-parameter search).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .config import MMERConfig
from .losses import augmentation_contrastive_loss, ctc_loss, supervised_contrastive_loss


@dataclass
class LossInputs:
    """What an auxiliary loss sees: the model, the training batch and its forward output;
    `projected()` is P(f), computed once for the losses that share it."""

    model: Any  # MMERModel
    batch: Any  # models.batch.Batch
    output: Any  # MMEROutput of the original view
    _cache: dict = field(default_factory=dict)

    @property
    def config(self) -> MMERConfig:
        return self.model.config

    def projected(self) -> torch.Tensor:
        if "z" not in self._cache:
            self._cache["z"] = self.model.projection(self.output.features)
        return self._cache["z"]


@dataclass(frozen=True)
class AuxiliaryLoss:
    compute: Callable[[LossInputs], torch.Tensor | None]  # None: nothing to compute here
    heads: tuple[str, ...] = ()  # modules that only auxiliary losses train
    switch: str | None = None  # the MMERConfig bool that turns it off (use_ctc, ...)
    needs_audio: bool = False
    needs_ctc_logits: bool = False


AUXILIARY_LOSSES: dict[str, AuxiliaryLoss] = {}


def auxiliary_loss(name: str, **options) -> Callable:
    """Register `fn(LossInputs) -> loss tensor | None` as the auxiliary loss `name`."""

    def register(fn: Callable) -> Callable:
        AUXILIARY_LOSSES[name] = AuxiliaryLoss(fn, **options)
        return fn

    return register


def active_losses(config: MMERConfig) -> dict[str, float]:
    """name -> weight of the auxiliary losses this config trains with."""
    active = {}
    for name, weight in config.auxiliary_losses.items():
        entry = AUXILIARY_LOSSES[name]
        if entry.switch and not getattr(config, entry.switch):
            continue
        if entry.needs_audio and not config.uses_audio:
            continue
        if weight:
            active[name] = float(weight)
    return active


def frozen_heads(config: MMERConfig) -> set[str]:
    """Heads no active loss trains."""
    active = active_losses(config)
    used = {h for name in active for h in AUXILIARY_LOSSES[name].heads}
    return {h for entry in AUXILIARY_LOSSES.values() for h in entry.heads} - used


@auxiliary_loss("ctc", heads=("ctc_head",), switch="use_ctc", needs_audio=True,
                needs_ctc_logits=True)  # fmt: skip
def ctc(x: LossInputs) -> torch.Tensor:
    frame_lengths, host = x.output.frame_lengths, x.batch.view.audio_lengths_host
    if host is not None and x.batch.ctc_lengths_host is not None:  # CTC wants host lengths
        frame_lengths = x.model.audio_encoder._get_feat_extract_output_lengths(host)
        frame_lengths = frame_lengths.clamp(max=x.output.ctc_logits.shape[1])
    return ctc_loss(x.output.ctc_logits, frame_lengths, x.batch.ctc_targets,
                    x.batch.ctc_lengths_host)  # fmt: skip


@auxiliary_loss("scl", heads=("projection",), switch="use_scl")
def scl(x: LossInputs) -> torch.Tensor:
    return supervised_contrastive_loss(x.projected(), x.batch.labels, x.config.temperature)


@auxiliary_loss("acl", heads=("projection", "augmented_projection"), switch="use_acl")
def acl(x: LossInputs) -> torch.Tensor | None:
    if x.batch.augmented is None:
        return None
    # The augmented pass feeds only ACL: skip its CTC head (and that dropout).
    features = x.model(x.batch.augmented, with_ctc=False).features
    z_aug = x.model.augmented_projection(features)
    return augmentation_contrastive_loss(x.projected(), z_aug, x.config.temperature)
