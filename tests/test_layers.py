"""Imports point one way: utils <- models <- training <- inference <- entry points.

utils/ is self-contained helpers; models/ (network, encoders, losses, config, checkpoints,
batch and vocab types) uses only utils; training/ (corpus, manifest, dataset, experiment,
trainer) uses models; inference/ (Predictor, ASR, ONNX) uses training's data code; the entry
points (train.py, infer.py, data_prep/, bench/, scripts/) use everything, and nothing imports
an entry point.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"utils": 0, "models": 1, "training": 2, "inference": 3}
ENTRY_POINTS = {"train", "infer", "data_prep", "bench", "scripts"}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of the project's packages a module imports (relative ones included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = path.relative_to(ROOT).parts[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(own if node.level else (node.module or "").split(".")[0])
    return names & (set(LAYERS) | ENTRY_POINTS)


def test_imports_point_one_way():
    wrong = []
    for package, rank in LAYERS.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imported_packages(path):
                if name in ENTRY_POINTS or LAYERS[name] > rank:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "imports that point upward:\n" + "\n".join(wrong)


def test_nothing_imports_an_entry_point():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in (".venv", "tests") or rel.parts[0] in ENTRY_POINTS | {
            "train.py",
            "infer.py",
        }:
            continue
        for name in imported_packages(path) & ENTRY_POINTS:
            wrong.append(f"{rel} imports {name}")
    assert not wrong, "\n".join(wrong)
