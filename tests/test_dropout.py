"""The cheaper CPU dropout: what F.dropout promises (rate, scale, gradient, seed), and that
MMER uses it everywhere a dropout module was."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from models.dropout import Dropout, dropout
from models.mmer import MMERModel


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_keeps_one_minus_p_and_preserves_the_expectation(p):
    torch.manual_seed(0)
    out = dropout(torch.ones(2_000_000), p)
    kept = out > 0
    assert abs(kept.float().mean().item() - (1 - p)) < 2e-3
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / (1 - p)), rtol=1e-4)
    assert abs(out.mean().item() - 1.0) < 3e-3


def test_gradient_is_the_mask_times_the_scale_and_eval_is_identity():
    x = torch.randn(4, 3, 50, dtype=torch.float32, requires_grad=True)
    out = dropout(x, 0.2)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out != 0).float() / (1 - 0.2), rtol=1e-4, atol=1e-6)
    assert dropout(x, 0.2, training=False) is x
    assert dropout(x.bfloat16(), 0.2).dtype == torch.bfloat16


def test_same_seed_same_mask_and_masks_differ_between_calls():
    torch.manual_seed(3)
    a, b = dropout(torch.ones(1000), 0.5), dropout(torch.ones(1000), 0.5)
    torch.manual_seed(3)
    assert torch.equal(dropout(torch.ones(1000), 0.5), a)
    assert not torch.equal(a, b)


def test_mmer_replaces_every_dropout_module_unless_disabled(tiny_config):
    model = MMERModel(tiny_config)
    kinds = {type(m) for m in model.modules() if isinstance(m, nn.Dropout)}
    assert kinds == {Dropout}  # fusion blocks, text/CTC dropout and the HF encoder's
    plain = MMERModel(dataclasses.replace(tiny_config, fast_dropout=False))
    assert {type(m) for m in plain.modules() if isinstance(m, nn.Dropout)} == {nn.Dropout}
