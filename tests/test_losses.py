"""The auxiliary losses against small cases computed by hand."""

import math

import pytest
import torch

from models.losses import augmentation_contrastive_loss, ctc_loss, supervised_contrastive_loss


def test_scl_matches_hand_computation_with_repeats_and_singleton():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 3])  # class 0 twice, class 3 a singleton
    tau = 0.07
    sim = [[1, 0, 1], [0, 1, 1], [1, 1, 2]]  # z zᵀ, no normalisation

    def log_softmax_row(row, j):
        return row[j] - math.log(sum(math.exp(v) for v in row))

    positives = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2)]  # i itself included
    expected = -sum(log_softmax_row(sim[i], j) / tau for i, j in positives) / len(positives)
    got = supervised_contrastive_loss(z, labels, tau)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_scl_divides_by_tau_after_log_softmax():
    z = torch.randn(4, 3)
    labels = torch.tensor([1, 1, 2, 2])
    a = supervised_contrastive_loss(z, labels, 1.0)
    b = supervised_contrastive_loss(z, labels, 0.5)
    assert b.item() == pytest.approx(2 * a.item(), rel=1e-5)


def test_infonce_targets_are_the_diagonal():
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    z_aug = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    tau = 0.5
    logits = [[2.0, 0.0], [4.0, 4.0]]  # z z'ᵀ / tau
    expected = -0.5 * sum(
        logits[i][i] - math.log(sum(math.exp(v) for v in logits[i])) for i in range(2)
    )
    assert augmentation_contrastive_loss(z, z_aug, tau).item() == pytest.approx(expected, rel=1e-6)


def test_ctc_on_a_known_alignment():
    # Two frames, vocab {blank, A}: target "A" has paths (A,A), (A,blank), (blank,A).
    probs = torch.tensor([[0.6, 0.4], [0.3, 0.7]])  # (frames, vocab)
    logits = probs.log()[None]  # log_softmax of log-probs is the identity
    p = probs[0, 1] * probs[1, 1] + probs[0, 1] * probs[1, 0] + probs[0, 0] * probs[1, 1]
    got = ctc_loss(logits, torch.tensor([2]), torch.tensor([[1, -100]]))
    assert got.item() == pytest.approx(-math.log(p.item()), rel=1e-5)


def test_ctc_sums_over_the_batch_and_ignores_padding():
    logits = torch.randn(2, 6, 5)
    targets = torch.tensor([[1, 2, -100], [3, 3, 4]])
    both = ctc_loss(logits, torch.tensor([6, 5]), targets)
    one = ctc_loss(logits[:1], torch.tensor([6]), targets[:1, :2])
    two = ctc_loss(logits[1:, :5], torch.tensor([5]), targets[1:])
    assert both.item() == pytest.approx(one.item() + two.item(), rel=1e-5)


def test_ctc_impossible_alignment_is_zero_not_inf():
    loss = ctc_loss(torch.randn(1, 2, 5), torch.tensor([2]), torch.tensor([[1, 2, 3, 4]]))
    assert torch.isfinite(loss) and loss.item() == 0.0


def test_contrastive_logits_are_fp32_under_bf16_autocast():
    # `.float()` inside autocast does not keep the next matmul out of bf16; divided by
    # tau = 0.07 its rounding would move the loss by ~1e-2
    g = torch.Generator().manual_seed(0)
    z, z_aug = torch.randn(8, 768, generator=g) * 0.05, torch.randn(8, 768, generator=g) * 0.05
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 0])
    scl, acl = (
        supervised_contrastive_loss(z, labels, 0.07),
        augmentation_contrastive_loss(z, z_aug, 0.07),
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scl_bf16 = supervised_contrastive_loss(z, labels, 0.07)
        acl_bf16 = augmentation_contrastive_loss(z, z_aug, 0.07)
        unprotected = z.float() @ z_aug.float().T / 0.07  # what the losses computed before
    torch.testing.assert_close(scl_bf16, scl, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(acl_bf16, acl, rtol=1e-5, atol=1e-5)
    assert unprotected.dtype == torch.bfloat16
    unprotected_acl = torch.nn.functional.cross_entropy(unprotected.float(), torch.arange(8))
    assert (unprotected_acl - acl).abs() > 1e-3
