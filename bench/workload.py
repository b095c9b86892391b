"""The benchmark's synthetic workload: IEMOCAP-like utterance lengths, batching, batches.

No files are read: waveforms and text embeddings are random (speed does not depend on
their values). Batches come from the training sampler (`training.data.LengthBucketSampler`);
`padded_width` is `collate`'s own rule (training.data: pad up to a multiple of `pad_quantum` samples).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from models.batch import Batch, View
from training.data import LengthBucketSampler, padded_width
from utils.audio import MAX_AUDIO_SAMPLES

SAMPLE_RATE = 16000  # Hz
MAX_SAMPLES = MAX_AUDIO_SAMPLES  # the authors' crop
TEXT_TOKENS = 12  # RoBERTa tokens per utterance, <s> and </s> included
CHARS_PER_SECOND = 14  # CTC target length of conversational English, roughly


def utterance_lengths(n: int, seed: int = 0) -> np.ndarray:
    """(n,) int64 samples: log-normal, median 3.6 s, sigma 0.6, clipped to [0.6 s, 210000]."""
    rng = np.random.default_rng(seed)
    seconds = np.exp(rng.normal(math.log(3.6), 0.6, size=n))
    return np.clip(np.round(seconds * SAMPLE_RATE), 0.6 * SAMPLE_RATE, MAX_SAMPLES).astype(np.int64)


def augmented_lengths(lengths: np.ndarray, seed: int = 0) -> np.ndarray:
    """TTS of a paraphrase: about as long as the original (x exp(N(0, 0.2))), same clipping."""
    rng = np.random.default_rng([seed, 1])
    scaled = lengths * np.exp(rng.normal(0.0, 0.2, size=len(lengths)))
    return np.clip(np.round(scaled), 0.6 * SAMPLE_RATE, MAX_SAMPLES).astype(np.int64)


def batch_order(
    lengths: np.ndarray, batch_size: int, bucket: bool, seed: int = 0
) -> list[list[int]]:
    """One epoch's batches of indices from the training sampler: shuffled random batches
    (the reference), or length-bucketed ones (this project's default)."""
    return list(LengthBucketSampler(lengths, batch_size, shuffle=True, seed=seed, bucket=bucket))


def padding_fraction(batches: list[list[int]], views: list[np.ndarray], quantum: int) -> float:
    """Share of the padded audio samples that are padding, over all `views` (length arrays)."""
    real = padded = 0
    for lengths in views:
        for b in batches:
            real += int(lengths[b].sum())
            padded += padded_width(lengths[b], quantum) * len(b)
    return 1.0 - real / padded


def make_view(lengths: list[int], quantum: int, seed: int) -> View:
    """Random unit-variance audio zero-padded to `padded_width`, 12 random 768-d tokens each."""
    g = torch.Generator().manual_seed(seed)
    audio = torch.zeros(len(lengths), padded_width(lengths, quantum))
    for i, n in enumerate(lengths):
        audio[i, :n] = torch.randn(int(n), generator=g)
    text = torch.randn(len(lengths), TEXT_TOKENS, 768, generator=g)
    mask = torch.ones(len(lengths), TEXT_TOKENS, dtype=torch.bool)
    return View(audio, torch.as_tensor(lengths, dtype=torch.int64), text, mask)


def make_batch(lengths: list[int], aug_lengths: list[int] | None, quantum: int, seed: int) -> Batch:
    """A training (or, without `aug_lengths`, inference) batch with random labels and CTC ids."""
    g = torch.Generator().manual_seed(seed)
    chars = [max(1, round(n / SAMPLE_RATE * CHARS_PER_SECOND)) for n in lengths]
    ctc = torch.full((len(lengths), max(chars)), -100, dtype=torch.int64)
    for i, c in enumerate(chars):
        ctc[i, :c] = torch.randint(4, 32, (c,), generator=g)
    labels = torch.randint(0, 4, (len(lengths),), generator=g)
    aug = None if aug_lengths is None else make_view(aug_lengths, quantum, seed + 1)
    names = [f"utt{seed}_{i}" for i in range(len(lengths))]
    return Batch(make_view(lengths, quantum, seed), labels, ctc, names, aug)
