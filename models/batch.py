"""The batch contract between the data loader and the model / training loop."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass
class View:
    """One view (original or augmented) of a batch: what `MMERModel.forward` consumes."""

    audio: torch.Tensor  # (batch, samples) float32, normalised per utterance, zero-padded
    audio_lengths: torch.Tensor  # (batch,) int64, true sample counts
    text: torch.Tensor  # (batch, tokens, text_dim) float32, zero-padded token embeddings
    text_mask: torch.Tensor  # (batch, tokens) bool, True for real tokens
    # (batch,) int64: audio_lengths kept on the host by `to()`, for code that needs the counts
    # in Python (per-utterance GroupNorm, CTC lengths) without waiting for the device
    audio_lengths_host: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> View:
        host = self.audio_lengths_host
        if host is None and self.audio_lengths.device.type == "cpu":
            host = self.audio_lengths
        moved = {name: getattr(self, name).to(device, non_blocking=True) for name in _VIEW_TENSORS}
        return replace(self, **moved, audio_lengths_host=host)

    def pin_memory(self) -> View:
        """Page-locked copies (DataLoader(pin_memory=True) calls this: torch's pinning does
        not look inside dataclasses), so that `to(cuda)` copies asynchronously."""
        pinned = {name: getattr(self, name).pin_memory() for name in _VIEW_TENSORS}
        return replace(self, **pinned)

    def astype(self, dtype: torch.dtype) -> View:
        """The float inputs (audio, text) in `dtype`, e.g. for a model with bf16 weights."""
        return replace(self, audio=self.audio.to(dtype), text=self.text.to(dtype))


@dataclass
class Batch:
    """A collated batch of utterances (see `training.data.collate`)."""

    view: View
    labels: torch.Tensor  # (batch,) int64 emotion class ids (0 hap, 1 ang, 2 neu, 3 sad)
    ctc_targets: torch.Tensor  # (batch, chars) int64 CTC ids, padded with -100
    names: list[str]  # FileName of each utterance
    augmented: View | None = None  # paraphrase + other-voice view, training only
    ctc_lengths_host: torch.Tensor | None = None  # (batch,) int64 characters, set by `to()`

    def to(self, device: torch.device | str) -> Batch:
        host = self.ctc_lengths_host
        if host is None and self.ctc_targets.device.type == "cpu":
            host = (self.ctc_targets >= 0).sum(-1)
        return replace(
            self,
            view=self.view.to(device),
            labels=self.labels.to(device, non_blocking=True),
            ctc_targets=self.ctc_targets.to(device, non_blocking=True),
            augmented=None if self.augmented is None else self.augmented.to(device),
            ctc_lengths_host=host,
        )

    def pin_memory(self) -> Batch:
        return replace(
            self,
            view=self.view.pin_memory(),
            labels=self.labels.pin_memory(),
            ctc_targets=self.ctc_targets.pin_memory(),
            augmented=None if self.augmented is None else self.augmented.pin_memory(),
        )

    def __len__(self) -> int:
        return len(self.names)


_VIEW_TENSORS = ("audio", "audio_lengths", "text", "text_mask")
