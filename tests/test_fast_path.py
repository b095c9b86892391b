"""The fast inference path (bf16 autocast, SDPA, inference_mode) keeps fp32's predictions.

Numerics only, no timings. With MMER_FAST_PATH_CHECKPOINT=<checkpoint dir> the check runs
on that trained model and requires >= 99% agreement on all utterances; without it, on the
tiny random model of conftest.py, whose untrained logits have many near-ties (top-2 gaps
of 1e-4), so there the 99% is required on utterances with a top-2 gap >= DECISIVE_MARGIN.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

from models.batch import View
from models.checkpoint import load_model
from models.config import MMERConfig
from models.mmer import MMERModel
from training.evaluation import to_inference_precision
from utils.precision import autocast

from .conftest import TINY

# Stated tolerance of bf16-autocast logits against fp32 (absolute, logit units).
LOGIT_MAX_ABS_DIFF = 0.1
LOGIT_MEAN_ABS_DIFF = 0.02
DECISIVE_MARGIN = 0.1  # only for the untrained tiny model, see the module docstring
MIN_AGREEMENT = 0.99
UTTERANCES, GROUP = 300, 20  # groups of equal-length utterances: batched, but no padding


def fast_path_model() -> tuple[MMERModel, bool]:
    """(model in eval mode, trained?) from MMER_FAST_PATH_CHECKPOINT or the tiny config."""
    path = os.environ.get("MMER_FAST_PATH_CHECKPOINT")
    if path:
        return load_model(path), True
    torch.manual_seed(0)
    return MMERModel(MMERConfig(**TINY)).eval(), False


def random_utterances(model: MMERModel, seed: int = 0):
    """Yield views of GROUP equal-length random utterances (0.5-2 s), UTTERANCES in all."""
    g = torch.Generator().manual_seed(seed)
    text_dim = model.config.text_dim
    for _ in range(UTTERANCES // GROUP):
        n = int(torch.randint(8000, 32000, (1,), generator=g))
        audio = torch.randn(GROUP, n, generator=g) * torch.rand(GROUP, 1, generator=g)
        audio = (audio - audio.mean(1, keepdim=True)) / audio.std(1, keepdim=True)
        text = torch.randn(GROUP, 12, text_dim, generator=g)
        yield View(audio, torch.full((GROUP,), n), text, torch.ones(GROUP, 12, dtype=torch.bool))


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="bf16 on CPU needs oneDNN")
@pytest.mark.parametrize("path", ["autocast", "bf16_weights"])
def test_bf16_inference_agrees_with_fp32(path):
    """`autocast` is how training evaluates; `bf16_weights` is infer.py's default on this CPU."""
    model, trained = fast_path_model()
    cpu = torch.device("cpu")
    fast_model = to_inference_precision(copy.deepcopy(model), "bf16")
    fp32, bf16 = [], []
    with torch.inference_mode():
        for view in random_utterances(model):
            fp32.append(model(view).logits)
            if path == "autocast":
                with autocast(cpu, "bf16"):
                    bf16.append(model(view).logits.float())
            else:
                view = view.astype(torch.bfloat16)
                bf16.append(fast_model(view).logits.float())
    fp32, bf16 = torch.cat(fp32), torch.cat(bf16)
    diff = (bf16 - fp32).abs()
    assert diff.max() <= LOGIT_MAX_ABS_DIFF, f"max |logit diff| {diff.max():.4f}"
    assert diff.mean() <= LOGIT_MEAN_ABS_DIFF, f"mean |logit diff| {diff.mean():.4f}"

    agree = fp32.argmax(1) == bf16.argmax(1)
    if not trained:
        top2 = fp32.topk(2, dim=1).values
        agree = agree[top2[:, 0] - top2[:, 1] >= DECISIVE_MARGIN]
        assert len(agree) >= UTTERANCES // 2, "too few decisive utterances to judge"
    assert agree.float().mean() >= MIN_AGREEMENT, f"agreement {agree.float().mean():.3f}"
