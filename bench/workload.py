"""The benchmark's workloads: which experiment is trained, and the shape of its corpus.

    base   configs/mmer.yaml as published (wav2vec2-base shape, 768-wide fusion, random
           weights), IEMOCAP-like utterances: log-normal, median 3.6 s, sigma 0.6
    demo   configs/demo.yaml (`make demo`: 2-layer 64-wide encoder, MiniLM 384-d text),
           utterances like the demo corpus' (median 2.2 s, sigma 0.47)

The lengths here define the corpus `bench/corpus.py` writes; everything after that (crop,
padding, batching) is the training code's own (`training/data.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from training.data import LengthBucketSampler, padding_fraction
from utils.audio import MAX_AUDIO_SAMPLES

SAMPLE_RATE = 16000  # Hz
IEMOCAP_UTTERANCES = 5531  # IEMOCAP-4: the epoch padding is estimated over


@dataclass(frozen=True)
class Workload:
    name: str
    config: str  # the experiment, configs/*.yaml
    median_s: float  # utterance length: log-normal with this median (seconds) ...
    sigma: float  # ... and this standard deviation of log-seconds
    train_utterances: int  # utterances in one benchmark epoch (fold 1's training sessions)
    tokens: int = 12  # text tokens per utterance (<s> and </s> included)
    model_overrides: dict = field(default_factory=dict)

    def lengths(self, n: int, seed: int = 0) -> np.ndarray:
        """(n,) int64 samples, clipped to [0.6 s, the authors' 210000-sample cut]."""
        rng = np.random.default_rng(seed)
        seconds = np.exp(rng.normal(math.log(self.median_s), self.sigma, size=n))
        return np.clip(
            np.round(seconds * SAMPLE_RATE), 0.6 * SAMPLE_RATE, MAX_AUDIO_SAMPLES
        ).astype(np.int64)


def augmented_lengths(lengths: np.ndarray, seed: int = 0) -> np.ndarray:
    """TTS of a paraphrase: about as long as the original (x exp(N(0, 0.2))), same clipping."""
    rng = np.random.default_rng([seed, 1])
    scaled = lengths * np.exp(rng.normal(0.0, 0.2, size=len(lengths)))
    return np.clip(np.round(scaled), 0.6 * SAMPLE_RATE, MAX_AUDIO_SAMPLES).astype(np.int64)


WORKLOADS = {
    # random weights: nothing to download, and speed does not depend on their values
    "base": Workload(
        "base",
        "configs/mmer.yaml",
        3.6,
        0.6,
        16,
        model_overrides={"audio_encoder_pretrained": False},
    ),  # fmt: skip
    # a demo fold trains ~290 utterances per epoch in batches of 8; 96 keeps 12 steps
    "demo": Workload("demo", "configs/demo.yaml", 2.2, 0.47, 96),
}
BASE = WORKLOADS["base"]


def utterance_lengths(n: int, seed: int = 0) -> np.ndarray:
    """(n,) int64 samples of IEMOCAP-like utterances (the base workload's distribution)."""
    return BASE.lengths(n, seed)


def epoch_padding(
    workload: Workload, batch_size: int, bucket: bool, pad_quantum: int, seed: int = 0
) -> float:
    """Share of the padded audio samples that are padding over one IEMOCAP-sized epoch of
    this workload's lengths, both views, batched by the training sampler with `collate`'s
    padding rule (`training.data.padding_fraction`)."""
    lengths = workload.lengths(IEMOCAP_UTTERANCES, seed)
    batches = list(LengthBucketSampler(lengths, batch_size, shuffle=True, seed=seed, bucket=bucket))
    real = padded = 0.0
    for view in (lengths, augmented_lengths(lengths, seed)):
        pad = padding_fraction(batches, view, pad_quantum)
        real += float(view.sum())
        padded += float(view.sum()) / (1.0 - pad)
    return 1.0 - real / padded
