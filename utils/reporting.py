"""Run outputs a person reads: results.md, confusion-matrix PNGs, predictions CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.io import atomic_path, write_text_atomic
from utils.metrics import CLASS_NAMES, format_table


def plot_confusion(confusion: list[list[int]], path: str | Path, title: str) -> Path:
    """Row-normalised confusion matrix (rows = true class) with counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, dtype=float)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    names = CLASS_NAMES[: len(cm)]
    fig, ax = plt.subplots(figsize=(4.2, 3.8), dpi=120)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(cm)):
        for j in range(len(cm)):
            color = "white" if rates[i, j] > 0.5 else "black"
            ax.text(
                j,
                i,
                f"{rates[i, j]:.2f}\n({int(cm[i, j])})",
                ha="center",
                va="center",
                fontsize=8,
                color=color,
            )
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def write_predictions_csv(predictions, path: str | Path) -> None:
    """One row per utterance: FileName, Label, Pred, logit_<class>... (model index order).
    `predictions`: training.evaluation.Predictions (names, labels, preds, logits)."""
    header = ["FileName", "Label", "Pred"] + [
        f"logit_{c}" for c in CLASS_NAMES[: predictions.logits.shape[1]]
    ]
    lines = [",".join(header)]
    for name, label, pred, row in zip(
        predictions.names, predictions.labels, predictions.preds, predictions.logits, strict=True
    ):
        lines.append(
            ",".join([name, CLASS_NAMES[label], CLASS_NAMES[pred]] + [f"{v:.6f}" for v in row])
        )
    write_text_atomic(path, "\n".join(lines) + "\n")


def write_results_md(results: dict, path: str | Path) -> str:
    rows = [(str(k), f["test"]) for k, f in results["folds"].items()]
    rows.append(("pooled", results["pooled"]))
    mean = results["mean"]
    text = "\n".join(
        [
            f"# MMER results ({len(results['folds'])} fold(s), {results.get('corpus', 'iemocap')}, "
            f"{results.get('protocol', 'leave_one_group_out').replace('_', '-')})",
            "",
            f"Model selection: **{results['selection']}** — {results['selection_note']}",
            f"Config hash: `{results['config_hash']}`",
            "",
            format_table(rows),
            "",
            f"Mean ± std over folds: WA {100 * mean['wa']['mean']:.1f} ± {100 * mean['wa']['std']:.1f}, "
            f"UA {100 * mean['ua']['mean']:.1f} ± {100 * mean['ua']['std']:.1f}, "
            f"macro-F1 {100 * mean['macro_f1']['mean']:.1f} ± {100 * mean['macro_f1']['std']:.1f}",
            "",
            "WA = overall accuracy; UA = mean per-class recall (the published code swapped the names).",
            "",
        ]
    )
    write_text_atomic(path, text)
    return text
