"""run.sh, infer.sh, train.py and infer.py behave like command-line tools: relative paths are
taken from where the user stands, outputs never land in the checkout, the published flags
win over run.sh's defaults, skipped inputs are named on screen, and every user error is one
clear line."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import infer
import train
from models.checkpoint import save_model
from models.config import MMERConfig
from models.mmer import MMERModel

from .conftest import TINY, cli

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHON": sys.executable}


def checkout_status() -> str:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    return subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--ignored"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


def relative_copy(corpus: dict, where: Path) -> None:
    """The corpus under `where`, so that the commands below can name it by relative paths."""
    for key in ("wav", "emb", "emb_aug", "aug"):
        shutil.copytree(corpus[key], where / key)
    shutil.copy(corpus["csv"], where / "m.csv")
    shutil.copy(corpus["config"], where / "tiny.yaml")


def test_infer_sh_from_another_directory_with_relative_paths(reference_run, corpus, tmp_path):
    before = checkout_status()
    relative_copy(corpus, tmp_path)
    shutil.copytree(reference_run / "fold1" / "best", tmp_path / "best")
    cmd = ["bash", str(ROOT / "infer.sh"), "1", "tiny.yaml", "m.csv", "wav", "emb", "best"]
    done = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "eval_session1.json").read_text())  # where the user is
    assert report["n"] == 8
    assert checkout_status() == before  # nothing written into the code


def test_run_sh_published_flags_win_from_another_directory(corpus, tmp_path):
    before = checkout_status()
    relative_copy(corpus, tmp_path)
    cmd = ["sh", str(ROOT / "run.sh"), "--config", "tiny.yaml", "--csv_path", "m.csv",
           "--data_path_audio", "wav", "--data_path_roberta", "emb",
           "--data_path_audio_augmented", "aug", "--data_path_roberta_augmented", "emb_aug",
           "--save_path", "out", "--sessions", "1", "--epochs", "1", "--batch_size", "4"]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert list(results["folds"]) == ["1"]
    assert checkout_status() == before


def test_run_sh_missing_data_names_the_path_and_how_to_prepare_it(tmp_path):
    cmd = ["sh", str(ROOT / "run.sh"), "--csv_path", "nowhere.csv", "--save_path", "out"]
    done = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert done.returncode == 2
    assert f"manifest CSV not found: {tmp_path / 'nowhere.csv'}" in done.stderr
    assert "prepare_iemocap.py" in done.stderr and "Traceback" not in done.stderr


def test_skipped_inputs_are_listed_by_name_on_screen(corpus, tmp_path, capsys):
    relative_copy(corpus, tmp_path)
    names = [r["FileName"] for r in corpus["rows"] if r["FileName"].startswith("Ses01")]
    for name in names[:2]:
        (tmp_path / "wav" / f"{name}.wav").write_bytes(b"not a wav")
    save_model(MMERModel(MMERConfig(**TINY)), tmp_path / "ckpt")
    argv = ["evaluate", "--session", "1", "--config", str(tmp_path / "tiny.yaml"),
            "--csv_path", str(tmp_path / "m.csv"), "--data_path_audio", str(tmp_path / "wav"),
            "--data_path_roberta", str(tmp_path / "emb"), "--checkpoint_path", str(tmp_path / "ckpt"),
            "--json", str(tmp_path / "r.json"), "--on_bad_input", "skip"]  # fmt: skip
    assert infer.main(argv) == 0
    out = capsys.readouterr().out
    assert "skipped 2 bad item(s)" in out
    for name in names[:2]:
        assert f"  {name}: " in out  # the file and why, not "see the JSON"


def test_a_fairseq_checkpoint_that_fails_conversion_is_one_clear_line(corpus, tmp_path, capsys):
    bad = tmp_path / "wav2vec_small.pt"
    torch.save({"model": {"w": torch.zeros(1)}}, bad)  # no cfg/args describing the model
    argv = cli(corpus, tmp_path / "run", "--set", f"model.audio_encoder={bad}", "--epochs", "1")
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and "Traceback" not in err


def test_predict_cuts_long_audio_as_evaluate_does(tmp_path):
    """A 14 s clip: predict and evaluate keep the same first 210 000 samples, same logits."""
    torch.manual_seed(5)
    save_model(MMERModel(MMERConfig(**{**TINY, "modalities": "audio"})), tmp_path / "ckpt")
    rng = np.random.default_rng(0)
    name = "Ses01F_impro01_F000"
    (tmp_path / "wav").mkdir()
    wav = tmp_path / "wav" / f"{name}.wav"
    sf.write(wav, (0.1 * rng.standard_normal(14 * 16000)).astype(np.float32), 16000, "FLOAT")
    (tmp_path / "emb").mkdir()
    np.save(tmp_path / "emb" / f"{name}.npy", np.zeros((1, 3, 32), np.float32))
    (tmp_path / "m.csv").write_text(
        f"FileName,Sentences,Label,text,AugmentedText\n{name},a b c,neu,A B C,a b c\n"
    )
    argv = ["evaluate", "--session", "1", "--csv_path", str(tmp_path / "m.csv"),
            "--data_path_audio", str(tmp_path / "wav"), "--data_path_roberta", str(tmp_path / "emb"),
            "--checkpoint_path", str(tmp_path / "ckpt"), "--predictions", str(tmp_path / "e.csv"),
            "--precision", "fp32"]  # fmt: skip
    assert infer.main(argv) == 0
    [row] = list(csv.DictReader((tmp_path / "e.csv").open()))
    logits = torch.tensor([float(row[f"logit_{c}"]) for c in ("hap", "ang", "neu", "sad")])
    argv = ["predict", "--checkpoint", str(tmp_path / "ckpt"), "--wav", str(wav),
            "--precision", "fp32", "--output", str(tmp_path / "p.json")]  # fmt: skip
    assert infer.main(argv) == 0
    [result] = json.loads((tmp_path / "p.json").read_text())
    probs = torch.tensor(list(result["probs"].values()))
    torch.testing.assert_close(probs, logits.softmax(-1), atol=1e-5, rtol=0)


def test_run_sh_variables_set_the_config_key_of_their_name(tmp_path):
    names = re.search(r'SETTINGS="([^"]*)"', (ROOT / "run.sh").read_text()).group(1).split()
    flags = train.build_parser()._option_string_actions
    assert {f"--{name.lower()}" for name in names} <= set(flags)
    run_sh = ["sh", str(ROOT / "run.sh")]
    env = {**ENV, "CSV_PATH": "nowhere.csv", "SAVE_PATH": "out"}
    done = subprocess.run(run_sh, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert f"manifest CSV not found: {tmp_path / 'nowhere.csv'}" in done.stderr
    done = subprocess.run([*run_sh, "--data_path_audio", "a", "--csv_path", "given.csv"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert f"manifest CSV not found: {tmp_path / 'given.csv'}" in done.stderr  # the flag wins
    old = {**ENV, "ROBERTA": "emb"}  # an earlier name is refused, not ignored
    done = subprocess.run(run_sh, cwd=tmp_path, env=old, capture_output=True, text=True)
    assert done.returncode == 2 and "ROBERTA is now TEXT_DIR" in done.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["data_prep.prepare_iemocap", "--corpus", "empty", "--out_csv", "m.csv"],
        ["data_prep.prepare_msp_podcast", "--corpus", "empty", "--out_csv", "m.csv"],
        ["data_prep.embed_text", "--csv", "nowhere.csv"],
        ["data_prep.augment_audio", "--csv", "nowhere.csv", "--out_dir", "aug"],
        ["data_prep.demo.paraphrase", "--csv", "nowhere.csv"],
    ],
)
def test_data_prep_scripts_end_a_user_error_with_one_line(command, tmp_path):
    (tmp_path / "empty").mkdir()
    env = {**ENV, "PYTHONPATH": str(ROOT)}  # as `python -m` from the checkout root would
    done = subprocess.run([sys.executable, "-m", *command], cwd=tmp_path, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert ("empty" if "--corpus" in command else "nowhere.csv") in done.stderr
