"""train.py end to end on a fixture corpus: outputs, resume after a kill, switches, protocols."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import train
from models.batch import Batch, View
from models.checkpoint import load_model
from training.experiment import TrainConfig, load_experiment
from training.manifest import read_manifest
from training.trainer import drop_text, scheduled_lr, validation_split

from .conftest import cli, fold_metrics

ROOT = Path(__file__).resolve().parent.parent


def test_two_fold_run_writes_every_output(reference_run, corpus):
    run = reference_run
    results = json.loads((run / "results.json").read_text())
    assert results["selection"] == "val" and "validation data" in results["selection_note"]
    assert results["protocol"] == "leave_one_group_out" and results["corpus"] == "iemocap"
    assert set(results["folds"]) == {"1", "2"}
    for key in ("wa", "ua", "macro_f1"):
        assert 0.0 <= results["mean"][key]["mean"] <= 1.0
    assert results["pooled"]["n"] == 16 and len(results["pooled"]["confusion"]) == 4
    assert results["config_hash"] in (run / "config.yaml").read_text()
    assert "Model selection: **val**" in (run / "results.md").read_text()
    assert (run / "confusion_pooled.png").read_bytes()[:4] == b"\x89PNG"
    for k in (1, 2):
        fold = run / f"fold{k}"
        log = [json.loads(line) for line in (fold / "log.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in log] == [1, 2]
        assert set(log[0]["train"]) == {"loss", "ce", "ctc", "scl", "acl"} and "val" in log[0]
        result = json.loads((fold / "result.json").read_text())
        best_val = max(r["val"]["ua"] for r in log)
        assert result["selection_ua"] == pytest.approx(best_val, abs=1e-5)
        predictions = (fold / "predictions.csv").read_text().splitlines()
        assert predictions[0] == "FileName,Label,Pred,logit_hap,logit_ang,logit_neu,logit_sad"
        assert len(predictions) == 1 + 8 and all(r.startswith(f"Ses0{k}") for r in predictions[1:])
        assert (fold / "confusion.png").exists() and (fold / "state.pt").exists()
        model = load_model(fold / "best")
        assert model.config.audio_encoder == "wav2vec2-tiny"
        assert list((run / "tb" / f"fold{k}").glob("events.out.tfevents.*"))


def kill_when_written(args: list[str], save, written: str = "state.pt") -> None:
    """Run train.py with `args` in a subprocess and SIGKILL it once `save/fold1/<written>`
    exists (before it could finish: no results.json)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    target = save / "fold1" / written
    deadline = time.time() + 120
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (save / "results.json").exists(), "the kill came too late to test anything"


@pytest.mark.parametrize("kill_when", ["state.pt", "best/model.safetensors"])
def test_killed_run_resumes_to_the_same_results(reference_run, corpus, tmp_path, kill_when):
    save = tmp_path / "killed"
    kill_when_written(cli(corpus, save, "--save_every_steps", "1"), save, kill_when)
    assert train.main(cli(corpus, save, "--save_every_steps", "1")) == 0
    assert fold_metrics(save) == fold_metrics(reference_run)


def test_same_seed_same_results(reference_run, corpus, tmp_path):
    assert train.main(cli(corpus, tmp_path / "again")) == 0
    assert fold_metrics(tmp_path / "again") == fold_metrics(reference_run)


def test_ablation_switches_change_what_is_computed(corpus, tmp_path):
    save = tmp_path / "ablate"
    args = cli(corpus, save, "--no_ctc", "--no_acl", "--modalities", "audio", "--epochs", "1")
    args[args.index("--sessions") + 1 : args.index("--sessions") + 3] = ["3"]
    assert train.main(args) == 0
    log = json.loads((save / "fold3" / "log.jsonl").read_text().splitlines()[0])
    assert set(log["train"]) == {"loss", "ce", "scl"}
    effective = yaml.safe_load((save / "config.yaml").read_text())
    assert effective["model"]["modalities"] == "audio" and effective["model"]["use_ctc"] is False
    assert load_model(save / "fold3" / "best").feature_dim == 64  # audio features only


def test_heldout_selection_picks_on_the_test_session(corpus, tmp_path):
    save = tmp_path / "heldout"
    args = cli(corpus, save, "--selection", "heldout")
    args[args.index("--sessions") + 1 : args.index("--sessions") + 3] = ["2"]
    assert train.main(args) == 0
    result = json.loads((save / "fold2" / "result.json").read_text())
    log = [json.loads(line) for line in (save / "fold2" / "log.jsonl").read_text().splitlines()]
    # the selection set IS the test session: the selected epoch's score is the test score
    assert result["selection_ua"] == pytest.approx(result["test"]["ua"], abs=1e-6)
    assert max(r["heldout"]["ua"] for r in log) == pytest.approx(result["test"]["ua"], abs=1e-5)
    assert (
        "test session itself" in json.loads((save / "results.json").read_text())["selection_note"]
    )


def test_validation_split_is_stratified_seeded_and_disjoint(corpus):
    rows = read_manifest(corpus["csv"])
    train_rows, val = validation_split(rows, 0.25, seed=3)
    again_train, again_val = validation_split(rows, 0.25, seed=3)
    assert list(val.FileName) == list(again_val.FileName)
    assert not set(val.FileName) & set(train_rows.FileName)
    assert len(val) + len(train_rows) == len(rows)
    assert set(val.label) == set(rows.label)  # every class is represented


def test_flags_and_reference_aliases_map_to_the_config(corpus):
    args = train.build_parser().parse_args(
        ["--lambda_value", "0.3", "--accum_grad", "2", "--learning_rate", "1e-4", "--no_scl",
         "--set", "model.hidden_size=64", "--set", "data.pad_quantum=800"]
    )  # fmt: skip
    exp = load_experiment(corpus["config"], train.overrides_from_args(args))
    assert (exp.model.lambda_aux, exp.train.accum_iter, exp.train.lr) == (0.3, 2, 1e-4)
    assert (
        exp.model.use_scl is False and exp.model.hidden_size == 64 and exp.data.pad_quantum == 800
    )


def test_a_run_directory_refuses_to_resume_on_other_data(reference_run, corpus, tmp_path, capsys):
    save = tmp_path / "run"
    shutil.copytree(reference_run, save)
    csv = tmp_path / "relabelled.csv"
    df = pd.read_csv(corpus["csv"])
    df.loc[0, "Label"] = "sad" if df.loc[0, "Label"] != "sad" else "neu"
    df.to_csv(csv, index=False)
    args = cli(corpus, save)
    args[args.index("--csv_path") + 1] = str(csv)
    before = (save / "results.json").read_text()
    assert train.main(args) == 1
    err = capsys.readouterr().err
    assert str(save) in err and "other data" in err and str(csv) in err
    assert (save / "results.json").read_text() == before
    # the same data under another path is the same run: its finished folds are read back
    copy = tmp_path / "same.csv"
    shutil.copy(corpus["csv"], copy)
    args[args.index("--csv_path") + 1] = str(copy)
    assert train.main(args) == 0
    assert "already done" in capsys.readouterr().out


def test_bad_config_is_a_clear_error(corpus, tmp_path, capsys):
    assert train.main(cli(corpus, tmp_path / "x", "--set", "model.hiden=3")) == 2
    assert "unknown key(s) ['hiden']" in capsys.readouterr().err


# -- learning-rate schedule ----------------------------------------------------------------
COSINE = ("--set", "train.lr_schedule=cosine", "--set", "train.min_lr_ratio=0.1")


def test_lr_schedules_are_a_pure_function_of_the_step():
    const = TrainConfig(lr=1e-3)
    assert [scheduled_lr(const, k, 10) for k in range(10)] == [1e-3] * 10  # the published one
    cos = TrainConfig(lr=1e-3, lr_schedule="cosine", min_lr_ratio=0.1)
    assert scheduled_lr(cos, 0, 10) == pytest.approx(1e-3)
    assert scheduled_lr(cos, 5, 10) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    rates = [scheduled_lr(cos, k, 10) for k in range(12)]
    assert rates == sorted(rates, reverse=True) and rates[-1] == pytest.approx(1e-4)
    lin = TrainConfig(lr=1e-3, lr_schedule="linear", warmup_steps=4)
    assert [scheduled_lr(lin, k, 14) for k in range(5)] == pytest.approx(
        [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3]
    )
    assert scheduled_lr(lin, 9, 14) == pytest.approx(5e-4)
    frac = TrainConfig(lr=1e-3, lr_schedule="cosine", warmup_fraction=0.2)
    assert scheduled_lr(frac, 0, 10) == pytest.approx(5e-4)  # 2 warmup steps of 10


def test_default_schedule_keeps_the_config_hash_of_earlier_runs(corpus):
    # runs made before audio_padding existed were trained with the published padding
    published = {"model": {"audio_padding": "published"}}
    exp = load_experiment(corpus["config"], published)
    assert load_experiment(corpus["config"]).hash() != exp.hash()  # never resumed as exact
    cosine = load_experiment(corpus["config"], {**published, "train": {"lr_schedule": "cosine"}})
    assert cosine.hash() != exp.hash()
    kernels = {
        "model": {**published["model"], "attention_implementation": "eager", "fast_dropout": False}
    }
    assert load_experiment(corpus["config"], kernels).hash() == exp.hash()
    d = exp.to_dict()
    new = ("lr_schedule", "warmup_steps", "warmup_fraction", "min_lr_ratio")
    for k in (*new, "text_dropout_utterances"):
        d["train"].pop(k)
    for k in ("csv_path", "audio_dir", "text_dir", "augmented_audio_dir", "augmented_text_dir"):
        d["data"].pop(k)
    d["data"].pop("corpus")  # added later; iemocap hashes as its absence
    for k in ("device", "num_workers", "save_every_steps", "sessions"):
        d["train"].pop(k)
    for k in ("attention_implementation", "fast_dropout", "audio_padding", "auxiliary_losses"):
        d["model"].pop(k)  # kernels: never in the hash; added later: absent = their defaults
    old = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]
    assert exp.hash() == old  # the hash before the schedule keys existed


@pytest.mark.parametrize("bad", ["train.lr_schedule=step", "train.min_lr_ratio=2"])
def test_bad_schedule_is_a_clear_error(corpus, tmp_path, capsys, bad):
    assert train.main(cli(corpus, tmp_path / "x", "--set", bad)) == 2
    assert "train." + bad.split(".")[1].split("=")[0] in capsys.readouterr().err


@pytest.fixture(scope="module")
def cosine_run(corpus, tmp_path_factory):
    save = tmp_path_factory.mktemp("cosine") / "ref"
    assert train.main(cli(corpus, save, *COSINE)) == 0
    return save


def _logged_lr(run: Path) -> dict:
    return {
        k: [(r["optimizer_steps"], r["lr"]) for r in map(json.loads, lines)]
        for k in (1, 2)
        for lines in [(run / f"fold{k}" / "log.jsonl").read_text().splitlines()]
    }


def test_cosine_lr_follows_the_schedule_and_is_logged(cosine_run, corpus):
    schedule = {"lr_schedule": "cosine", "min_lr_ratio": 0.1}
    t = load_experiment(corpus["config"], {"train": schedule}).train
    for steps_lr in _logged_lr(cosine_run).values():
        total = steps_lr[-1][0]  # no skipped steps: every epoch's steps were taken
        assert total == t.epochs * (total // t.epochs) and len(steps_lr) == t.epochs
        for steps, lr in steps_lr:  # the rate of the epoch's last step
            assert lr == pytest.approx(scheduled_lr(t, steps - 1, total))
        assert steps_lr[0][1] < t.lr and steps_lr[-1][1] < steps_lr[0][1]


def test_killed_cosine_run_resumes_with_the_same_rates(cosine_run, corpus, tmp_path):
    save = tmp_path / "killed"
    args = cli(corpus, save, "--save_every_steps", "1", *COSINE)
    kill_when_written(args, save)
    assert train.main(args) == 0
    assert _logged_lr(save) == _logged_lr(cosine_run)
    assert fold_metrics(save) == fold_metrics(cosine_run)


def test_text_dropout_zeroes_whole_utterances_reproducibly():
    n = 64
    view = View(
        torch.zeros(n, 100), torch.full((n,), 100), torch.ones(n, 5, 8), torch.ones(n, 5) > 0
    )
    batch = Batch(
        view, torch.zeros(n, dtype=torch.long), torch.zeros(n, 3), [f"u{k}" for k in range(n)]
    )
    out = drop_text(batch, 0.5, (0, 3, 7))
    zeroed = (out.view.text == 0).all(dim=(1, 2))
    assert ((out.view.text == 1).all(dim=(1, 2)) | zeroed).all()  # all or nothing per utterance
    assert 16 < int(zeroed.sum()) < 48 and (batch.view.text == 1).all()  # the input is untouched
    assert torch.equal(drop_text(batch, 0.5, (0, 3, 7)).view.text, out.view.text)
    assert not torch.equal(drop_text(batch, 0.5, (0, 3, 8)).view.text, out.view.text)
    assert torch.equal(out.view.audio, batch.view.audio) and torch.equal(
        out.view.text_mask, view.text_mask
    )


def test_text_dropout_run_resumes_to_the_same_results(corpus, tmp_path):
    drop = ("--set", "train.text_dropout_utterances=0.5", "--set", "train.epochs=1")
    ref = tmp_path / "ref"
    assert train.main(cli(corpus, ref, *drop)) == 0
    save = tmp_path / "killed"
    args = cli(corpus, save, "--save_every_steps", "1", *drop)
    kill_when_written(args, save)
    assert train.main(args) == 0
    assert fold_metrics(save) == fold_metrics(ref)


def test_text_dropout_leaves_a_text_only_run_alone(corpus, tmp_path):
    text_only = ("--modalities", "text", "--set", "train.epochs=1")
    plain, dropped = tmp_path / "plain", tmp_path / "dropped"
    assert train.main(cli(corpus, plain, *text_only)) == 0
    drop = ("--set", "train.text_dropout_utterances=0.5")
    assert train.main(cli(corpus, dropped, *text_only, *drop)) == 0
    for k in (1, 2):  # the same training losses, to the bit
        logs = [(run / f"fold{k}" / "log.jsonl").read_text() for run in (plain, dropped)]
        assert [json.loads(x)["train"] for x in logs[0].splitlines()] == [
            json.loads(x)["train"] for x in logs[1].splitlines()
        ]
