"""The batch contract between the data loader and the model / training loop."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass
class View:
    """One view (original or augmented) of a batch: what `MMERModel.forward` consumes."""

    audio: torch.Tensor  # (batch, samples) float32, normalised per utterance, zero-padded
    audio_lengths: torch.Tensor  # (batch,) int64, true sample counts
    text: torch.Tensor  # (batch, tokens, text_dim) float32, zero-padded token embeddings
    text_mask: torch.Tensor  # (batch, tokens) bool, True for real tokens

    def to(self, device: torch.device | str) -> View:
        return replace(
            self,
            **{f.name: getattr(self, f.name).to(device, non_blocking=True) for f in fields(self)},
        )

    def astype(self, dtype: torch.dtype) -> View:
        """The float inputs (audio, text) in `dtype`, e.g. for a model with bf16 weights."""
        return replace(self, audio=self.audio.to(dtype), text=self.text.to(dtype))


@dataclass
class Batch:
    """A collated batch of utterances (see `utils.data.collate`)."""

    view: View
    labels: torch.Tensor  # (batch,) int64 emotion class ids (0 hap, 1 ang, 2 neu, 3 sad)
    ctc_targets: torch.Tensor  # (batch, chars) int64 CTC ids, padded with -100
    names: list[str]  # FileName of each utterance
    augmented: View | None = None  # paraphrase + other-voice view, training only

    def to(self, device: torch.device | str) -> Batch:
        return replace(
            self,
            view=self.view.to(device),
            labels=self.labels.to(device, non_blocking=True),
            ctc_targets=self.ctc_targets.to(device, non_blocking=True),
            augmented=None if self.augmented is None else self.augmented.to(device),
        )

    def __len__(self) -> int:
        return len(self.names)
