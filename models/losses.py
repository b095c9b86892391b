"""MMER's objectives, with the reference implementation's exact definitions.

Each function is usable on its own; `MMERModel.compute_objectives` combines them as
CE + lambda * (CTC + SCL + ACL) over the enabled auxiliaries.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from models.vocab import BLANK_ID


def supervised_contrastive_loss(
    z: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """SCL over a batch, as the reference computes it.

    z (batch, dim) projected features, *not* L2-normalised; S = z zᵀ;
    L = log_softmax(S, dim=1) / temperature (the division comes after the softmax);
    positives of anchor i are all j with y_j = y_i, i itself included;
    loss = -(sum of L over positive pairs) / (number of positive pairs).
    """
    with fp32(z):
        log_probs = torch.log_softmax(z.float() @ z.float().T, dim=1) / temperature
    positives = labels[:, None] == labels[None, :]
    # masked, not indexed: a boolean index waits for the mask's count on the host
    return -torch.where(positives, log_probs, 0.0).sum() / positives.sum()


def augmentation_contrastive_loss(
    z: torch.Tensor, z_augmented: torch.Tensor, temperature: float
) -> torch.Tensor:
    """InfoNCE between each utterance and its augmented view: logits = z z'ᵀ / τ, targets = diagonal."""
    with fp32(z):
        logits = z.float() @ z_augmented.float().T / temperature
    return F.cross_entropy(logits, torch.arange(len(z), device=z.device))


@contextlib.contextmanager
def fp32(like: torch.Tensor):
    """Autocast off: inside autocast `.float()` does not stop the next matmul from running in
    bf16, and dividing its rounded similarities by tau = 0.07 amplifies the error."""
    with torch.autocast(like.device.type, enabled=False):
        yield


def ctc_loss(
    ctc_logits: torch.Tensor,
    frame_lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """CTC summed over the batch (blank 0); `targets` (batch, chars) padded with -100.

    ctc_logits (batch, frames, vocab). An impossible alignment (more characters than
    frames, e.g. after cropping) contributes 0 instead of inf (`zero_infinity`): the
    reference let such a batch poison the step. The targets stay padded (CTC reads each
    row's first `target_lengths[i]`); give `frame_lengths` and `target_lengths` on the host
    (CPU tensors), else the GPU kernel waits for them to be copied back.
    """
    if target_lengths is None:
        target_lengths = (targets >= 0).sum(-1)
    log_probs = torch.log_softmax(ctc_logits.float(), dim=-1).transpose(
        0, 1
    )  # (frames, batch, vocab)
    return F.ctc_loss(
        log_probs,
        targets.clamp(min=0),
        frame_lengths,
        target_lengths,
        blank=BLANK_ID,
        reduction="sum",
        zero_infinity=True,
    )
