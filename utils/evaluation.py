"""Running a model over a loader: predictions, logits and metrics (eval mode, no grad)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

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


@torch.inference_mode()
def predict(
    model: torch.nn.Module, loader: DataLoader, device: torch.device, precision: str = "fp32"
) -> Predictions:
    """Logits for every utterance of `loader`, in loader order. Always in eval mode
    (the published inference script forgot it and ran with dropout on)."""
    was_training = model.training
    model.eval()
    names, labels, logits = [], [], []
    try:
        for batch in loader:
            batch = batch.to(device)
            with autocast(device, precision):
                out = model(batch.view)
            names += batch.names
            labels.append(batch.labels.cpu())
            logits.append(out.logits.float().cpu())
    finally:
        model.train(was_training)
    return Predictions(names, torch.cat(labels).numpy(), torch.cat(logits).numpy())
