"""The MMER network: wav2vec2 frames and text token embeddings fused by cross-attention.

    A  = encoder(audio)                       (batch, frames, audio_dim)
    S  = self_attention(dropout(text))        (batch, tokens, hidden)
    X1 = cross(S -> audio_keys(A))            text attends to audio
    X2 = cross(audio_queries(A) -> S)         audio attends to text
    X3 = cross(S -> X2)                       text attends to text-aware audio
    M  = [X3 ; sigmoid(gate([X3; X1])) * X1]  (batch, tokens, 2*hidden)
    f  = [maxpool(A) ; fused_proj(maxpool(M))] -> classifier -> emotion logits
See ../shared/DESIGN.md §1 and models/checkpoint.py for the authors' parameter names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.batch import Batch, View

from .attention import AttentionBlock
from .audio_encoder import build_audio_encoder, encode_audio
from .config import MMERConfig
from .dropout import use_fast_dropout
from .objectives import AUXILIARY_LOSSES, LossInputs, active_losses, frozen_heads

POOL_FILL = -9999.9999  # the reference's fill value for padded positions before max pooling


@dataclass
class MMEROutput:
    logits: torch.Tensor  # (batch, num_classes) emotion logits
    features: torch.Tensor  # (batch, feature_dim) pooled f = [audio ; multimodal]
    ctc_logits: torch.Tensor | None = None  # (batch, frames, ctc_vocab_size)
    frame_lengths: torch.Tensor | None = None  # (batch,) valid encoder frames


@dataclass
class Objectives:
    """The training loss, its CE part and each active auxiliary loss (unweighted) by name."""

    loss: torch.Tensor
    ce: torch.Tensor
    auxiliary: dict[str, torch.Tensor]
    output: MMEROutput

    def parts(self) -> dict[str, torch.Tensor]:
        """The parts as detached 0-dim tensors, on the loss's device (no host sync)."""
        named = {"loss": self.loss, "ce": self.ce, **self.auxiliary}
        return {k: v.detach() for k, v in named.items()}


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over time of x (batch, time, dim) where mask (batch, time) is True."""
    return x.masked_fill(~mask[..., None], POOL_FILL).max(dim=1).values


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def projection_head(in_dim: int, hidden: int) -> nn.Sequential:
    """P / P': Linear -> exact GELU -> Linear, feeding the contrastive losses."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))


class MMERModel(nn.Module):
    def __init__(self, config: MMERConfig):
        super().__init__()
        self.config = config
        d = config.hidden_size
        audio_dim = 0
        if config.uses_audio:
            self.audio_encoder = build_audio_encoder(config)
            audio_dim = self.audio_encoder.config.hidden_size
            self.ctc_dropout = nn.Dropout(config.ctc_dropout)
            self.ctc_head = nn.Linear(audio_dim, config.ctc_vocab_size)
        if config.uses_text:
            self.text_dropout = nn.Dropout(config.hidden_dropout)
            self.text_proj = (
                nn.Linear(config.text_dim, d) if config.text_dim != d else nn.Identity()
            )
            self.text_self_attention = AttentionBlock(config)
        if config.modalities == "both":
            self.audio_keys = nn.Linear(audio_dim, d)  # Linear_a: audio as keys for X1
            self.audio_queries = nn.Linear(audio_dim, d)  # Linear_b: audio as queries for X2
            self.text_to_audio = AttentionBlock(config)  # X1
            self.audio_to_text = AttentionBlock(config)  # X2
            self.text_to_text_aware_audio = AttentionBlock(config)  # X3
            self.gate = nn.Linear(2 * d, d)
            self.fused_proj = nn.Linear(2 * d, d)

        # f = [pooled audio frames (audio_dim) ; pooled fusion or text (hidden)]
        self.feature_dim = (audio_dim if config.uses_audio else 0) + (d if config.uses_text else 0)
        self.classifier = nn.Linear(self.feature_dim, config.num_classes)
        self.projection = projection_head(self.feature_dim, d)  # P, original view
        self.augmented_projection = projection_head(self.feature_dim, d)  # P', augmented view
        # Heads of disabled losses stay in the state dict (one checkpoint layout for every
        # ablation) but are frozen: nothing trains them, and DDP needs no unused-parameter search.
        for name in frozen_heads(config):
            head = getattr(self, name, None)
            if head is not None:
                head.requires_grad_(False)
        if config.fast_dropout:
            use_fast_dropout(self)  # every nn.Dropout, the audio encoder's included

    # -- forward ---------------------------------------------------------------------------
    def encode_audio(
        self,
        audio: torch.Tensor,
        audio_lengths: torch.Tensor,
        audio_lengths_host: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (batch, samples) -> frames (batch, frames, audio_dim), frame_lengths (batch,)."""
        return encode_audio(
            self.audio_encoder, audio, audio_lengths, self.config.audio_padding, audio_lengths_host
        )

    def fuse(
        self,
        frames: torch.Tensor | None,
        frame_lengths: torch.Tensor | None,
        text: torch.Tensor | None,
        text_mask: torch.Tensor | None,
        with_ctc: bool = True,
    ) -> MMEROutput:
        """Everything after the audio encoder: fusion, pooling, heads (CTC if `with_ctc`)."""
        pooled = []
        ctc_logits = None
        if self.config.uses_audio:
            frame_mask = lengths_to_mask(frame_lengths, frames.shape[1])
            pooled.append(masked_max(frames, frame_mask))
            if with_ctc:
                ctc_logits = self.ctc_head(self.ctc_dropout(frames))
        if self.config.uses_text:
            s = self.text_proj(self.text_dropout(text))
            s = self.text_self_attention(s, s, text_mask)  # (batch, tokens, hidden)
            if self.config.modalities == "text":
                pooled.append(masked_max(s, text_mask))
            else:
                x1 = self.text_to_audio(s, self.audio_keys(frames), frame_mask)
                x2 = self.audio_to_text(self.audio_queries(frames), s, text_mask)
                x3 = self.text_to_text_aware_audio(s, x2, frame_mask)
                gate = torch.sigmoid(self.gate(torch.cat([x3, x1], dim=-1)))
                fused = torch.cat([x3, gate * x1], dim=-1)  # (batch, tokens, 2*hidden)
                pooled.append(self.fused_proj(masked_max(fused, text_mask)))
        if self.config.pooled_feature_norm:
            pooled = [F.layer_norm(p, p.shape[-1:]) for p in pooled]
        features = torch.cat(pooled, dim=-1)
        return MMEROutput(self.classifier(features), features, ctc_logits, frame_lengths)

    def forward(self, inputs: View | Batch, with_ctc: bool = True) -> MMEROutput | Objectives:
        """A View gives predictions (`MMEROutput`); a training Batch gives its `Objectives`.

        (Training goes through forward too so that DistributedDataParallel sees the call.)
        """
        if isinstance(inputs, Batch):
            return self.compute_objectives(inputs)
        view = inputs
        frames = frame_lengths = None
        if self.config.uses_audio:
            frames, frame_lengths = self.encode_audio(
                view.audio, view.audio_lengths, view.audio_lengths_host
            )
        text = view.text if self.config.uses_text else None
        return self.fuse(frames, frame_lengths, text, view.text_mask, with_ctc)

    # -- objectives --------------------------------------------------------------------------
    def compute_objectives(self, batch: Batch) -> Objectives:
        """CE + lambda * sum(weight * auxiliary) for a training batch (the reference's loss
        with its three auxiliaries; models/objectives.py)."""
        active = active_losses(self.config)
        needs_ctc = any(AUXILIARY_LOSSES[name].needs_ctc_logits for name in active)
        out = self(batch.view, with_ctc=needs_ctc)
        ce = F.cross_entropy(out.logits.float(), batch.labels)
        inputs = LossInputs(self, batch, out)
        auxiliary = {}
        for name in active:
            value = AUXILIARY_LOSSES[name].compute(inputs)
            if value is not None:
                auxiliary[name] = value
        if not auxiliary:
            return Objectives(ce, ce, auxiliary, out)
        weighted = torch.stack([active[k] * v for k, v in auxiliary.items()]).sum()
        return Objectives(ce + self.config.lambda_aux * weighted, ce, auxiliary, out)
