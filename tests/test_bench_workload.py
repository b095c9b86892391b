"""bench/'s workload and FLOP count (pure Python: no model is run)."""

from __future__ import annotations

import numpy as np

from bench import workload
from bench.flops import batch_flops
from models.audio_encoder import load_encoder_config
from models.config import MMERConfig


def test_lengths_follow_the_issue():
    lengths = workload.utterance_lengths(5531, seed=0)
    assert lengths.min() >= 0.6 * 16000 and lengths.max() <= 210000
    assert abs(np.median(lengths) / 16000 - 3.6) < 0.1


def test_bucketing_with_quantum_padding_pads_less_than_random_batches():
    lengths = workload.utterance_lengths(2000, seed=0)
    rand = workload.batch_order(lengths, 2, bucket=False)
    buck = workload.batch_order(lengths, 2, bucket=True)
    assert sorted(i for b in buck for i in b) == list(range(2000))
    assert workload.padding_fraction(buck, [lengths], 4000) < 0.5 * workload.padding_fraction(
        rand, [lengths], 1
    )
    assert workload.padded_width([4001, 100], 4000) == 8000


def test_epoch_flops_match_the_issue_estimate():
    """Issue 7: an IEMOCAP-sized epoch (both views) is about 1.6 PFLOP of training work."""
    lengths = workload.utterance_lengths(5531, seed=0)
    views = [*lengths, *workload.augmented_lengths(lengths)]
    enc = load_encoder_config("facebook/wav2vec2-base")
    total = batch_flops(views, workload.TEXT_TOKENS, enc, MMERConfig(), training=True)
    assert 1.3e15 < total < 2.1e15
