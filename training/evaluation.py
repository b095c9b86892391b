"""Running a model over a loader: predictions, logits and metrics (eval mode, no grad)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from models.batch import View
from utils.distributed import DistContext, gather_objects
from utils.metrics import compute_metrics
from utils.precision import autocast


@dataclass
class Predictions:
    names: list[str]
    labels: np.ndarray  # (n,) true class ids
    logits: np.ndarray  # (n, num_classes) float32

    @property
    def preds(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    def metrics(self) -> dict:
        return compute_metrics(self.labels, self.preds, self.logits.shape[1])

    @staticmethod
    def concat(parts: list[Predictions]) -> Predictions:
        return Predictions(
            [n for p in parts for n in p.names],
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.logits for p in parts]),
        )


def to_inference_precision(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """For inference only: bf16 runs the model with bf16 *weights* (in place) rather than
    under autocast, which re-casts every weight on every call (faster: docs/performance.md).
    Training keeps fp32 master weights and autocast."""
    return model.to(torch.bfloat16) if precision == "bf16" else model


@torch.inference_mode()
def forward_logits(
    model: torch.nn.Module, view: View, device: torch.device, precision: str = "fp32"
) -> torch.Tensor:
    """Emotion logits (batch, num_classes), float32 on the CPU, of a model in eval mode
    (bf16 models from `to_inference_precision` take bf16 inputs; fp32 ones may autocast)."""
    weights_dtype = next(model.parameters()).dtype
    view = view.to(device).astype(weights_dtype)
    with autocast(device, precision if weights_dtype == torch.float32 else "fp32"):
        out = model(view, with_ctc=False)  # the CTC head is for training only
    return out.logits.float().cpu()


@torch.inference_mode()
def predict(
    model: torch.nn.Module, loader: DataLoader, device: torch.device, precision: str = "fp32"
) -> Predictions:
    """Logits for every utterance of `loader`, in loader order. Always in eval mode
    (the published inference script forgot it and ran with dropout on)."""
    was_training = model.training
    model.eval()
    try:
        return collect(lambda view: forward_logits(model, view, device, precision), loader)
    finally:
        model.train(was_training)


def collect(forward: Callable[[View], torch.Tensor], loader: Iterable) -> Predictions:
    """Names, labels and `forward(view)` logits of every batch of `loader`, in loader order."""
    names, labels, logits = [], [], []
    for batch in loader:
        names += batch.names
        labels.append(batch.labels.cpu())
        logits.append(forward(batch.view))
    return Predictions(names, torch.cat(labels).numpy(), torch.cat(logits).numpy())


def gather_predictions(preds: Predictions, ctx: DistContext) -> Predictions:
    """Every rank's predictions, merged once per utterance (samplers pad shards by repetition)."""
    if not ctx.enabled:
        return preds
    parts = gather_objects(preds, ctx)
    merged = Predictions.concat([p for p in parts if p is not None])
    _, first = np.unique(np.asarray(merged.names), return_index=True)
    keep = np.sort(first)
    return Predictions([merged.names[i] for i in keep], merged.labels[keep], merged.logits[keep])
