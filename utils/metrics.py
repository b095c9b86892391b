"""Emotion-recognition metrics with their standard names.

WA (weighted accuracy) = overall accuracy; UA (unweighted accuracy) = mean per-class
recall (balanced accuracy). The published MMER code had these two names swapped.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

CLASS_NAMES = ("hap", "ang", "neu", "sad")


def compute_metrics(y_true, y_pred, num_classes: int = len(CLASS_NAMES)) -> dict:
    """WA, UA, macro-F1, per-class recall and the confusion matrix (rows = true class).

    Classes absent from `y_true` are left out of UA and macro-F1 rather than counted as 0.
    """
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    if len(y_true) == 0:
        raise ValueError("no predictions to score")
    labels = list(range(num_classes))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    present = support > 0
    recall = np.divide(np.diag(cm), support, out=np.zeros(num_classes), where=present)
    present_labels = [c for c in labels if present[c]]
    return {
        "wa": float((y_true == y_pred).mean()),
        "ua": float(recall[present].mean()),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=present_labels, average="macro", zero_division=0)
        ),
        "recall": {
            CLASS_NAMES[c] if c < len(CLASS_NAMES) else str(c): float(recall[c])
            for c in present_labels
        },
        "confusion": cm.tolist(),
        "n": int(len(y_true)),
    }


def summarize_folds(fold_metrics: list[dict]) -> dict:
    """Mean and (population) standard deviation of WA, UA and macro-F1 over folds."""
    out = {}
    for key in ("wa", "ua", "macro_f1"):
        values = np.array([m[key] for m in fold_metrics], dtype=float)
        out[key] = {"mean": float(values.mean()), "std": float(values.std())}
    return out


def format_table(rows: list[tuple[str, dict]]) -> str:
    """A markdown table of WA / UA / macro-F1 (percent), one row per (name, metrics)."""
    lines = ["| fold | n | WA | UA | macro-F1 |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, m in rows:
        n = m.get("n", "")
        lines.append(
            f"| {name} | {n} | {100 * m['wa']:.1f} | {100 * m['ua']:.1f} | {100 * m['macro_f1']:.1f} |"
        )
    return "\n".join(lines)
