"""Shared fixtures: a tiny MMER config and a random padded batch (CPU, seconds)."""

from __future__ import annotations

import pytest
import torch

from models.config import MMERConfig
from utils.batch import Batch, View

TINY = dict(
    audio_encoder="wav2vec2-tiny",
    audio_encoder_pretrained=False,
    text_dim=32,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=64,
)


@pytest.fixture
def tiny_config() -> MMERConfig:
    return MMERConfig(**TINY)


def random_view(lengths=(16000, 11000, 6400), tokens=(7, 4, 2), text_dim=32, seed=0) -> View:
    g = torch.Generator().manual_seed(seed)
    audio = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        audio[i, :n] = torch.randn(n, generator=g)
    text = torch.zeros(len(tokens), max(tokens), text_dim)
    mask = torch.zeros(len(tokens), max(tokens), dtype=torch.bool)
    for i, t in enumerate(tokens):
        text[i, :t] = torch.randn(t, text_dim, generator=g)
        mask[i, :t] = True
    return View(audio, torch.tensor(lengths), text, mask)


def random_batch(text_dim=32, seed=0, augmented=True) -> Batch:
    view = random_view(text_dim=text_dim, seed=seed)
    aug = random_view((9000, 16000, 12000), (5, 6, 3), text_dim, seed + 1) if augmented else None
    ctc = torch.tensor([[11, 4, 5, 6], [7, 8, -100, -100], [9, -100, -100, -100]])
    return Batch(view, torch.tensor([0, 2, 0]), ctc, ["a", "b", "c"], aug)


@pytest.fixture
def batch() -> Batch:
    return random_batch()
