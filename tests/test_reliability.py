"""Reliability: interrupted runs resume exactly, non-finite losses are skipped and counted,
bad items are skipped under the explicit policy and listed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import train
from models.mmer import MMERModel

from .conftest import cli, fold_metrics

ROOT = Path(__file__).resolve().parent.parent


def _start(corpus, save):
    cmd = [sys.executable, str(ROOT / "train.py"), *cli(corpus, save, "--save_every_steps", "1")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _wait_for(proc, predicate, timeout=120):
    deadline = time.time() + timeout
    while not predicate() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)


def test_kill_during_checkpoint_write_leaves_no_corrupt_state(reference_run, corpus, tmp_path):
    save = tmp_path / "run"
    proc = _start(corpus, save)
    fold = save / "fold1"
    # the temporary file of an atomic write exists only while state.pt is being written
    _wait_for(
        proc, lambda: fold.is_dir() and any(p.name.startswith(".state.pt.") for p in fold.iterdir())
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (save / "results.json").exists()
    assert train.main(cli(corpus, save, "--save_every_steps", "1")) == 0
    assert fold_metrics(save) == fold_metrics(reference_run)
    assert not list(save.rglob(".*.tmp")), "temporary files must not survive"


def test_ctrl_c_saves_and_the_same_command_resumes(reference_run, corpus, tmp_path):
    save = tmp_path / "run"
    proc = _start(corpus, save)
    _wait_for(proc, lambda: (save / "fold1" / "state.pt").exists())
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Re-run the same command to resume" in err
    assert "Traceback" not in err
    assert train.main(cli(corpus, save, "--save_every_steps", "1")) == 0
    assert fold_metrics(save) == fold_metrics(reference_run)


def test_non_finite_losses_are_skipped_counted_and_bounded(corpus, tmp_path, monkeypatch, capsys):
    original = MMERModel.compute_objectives
    calls = {"n": 0}

    def sometimes_nan(self, batch):
        out = original(self, batch)
        calls["n"] += 1
        if calls["n"] == 2:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(MMERModel, "compute_objectives", sometimes_nan)
    save = tmp_path / "nan"
    args = cli(corpus, save, "--epochs", "1")
    args[args.index("--sessions") + 1 : args.index("--sessions") + 3] = ["1"]
    assert train.main(args) == 0
    result = json.loads((save / "fold1" / "result.json").read_text())
    assert result["non_finite_steps"] == 1

    calls["n"] = 0
    assert (
        train.main(
            [*cli(corpus, tmp_path / "nan2", "--epochs", "1"), "--set", "train.max_bad_steps=0"]
        )
        == 1
    )
    assert "more than 0 non-finite losses" in capsys.readouterr().err


def test_bad_items_are_skipped_and_listed_under_the_skip_policy(corpus, tmp_path, capsys):
    broken = tmp_path / "corpus"
    shutil.copytree(corpus["wav"].parent, broken)
    victim = sorted((broken / "wav").glob("Ses02*.wav"))[0]
    victim.write_bytes(b"not a wav file")
    (broken / "emb" / "Ses03F_impro01_F001.npy").unlink()
    args = cli(corpus, tmp_path / "run", "--epochs", "1")
    args = [a.replace(str(corpus["wav"].parent), str(broken)) for a in args]
    args[args.index("--sessions") + 1 : args.index("--sessions") + 3] = ["1"]
    assert train.main(args) == 2  # the default policy is to stop, naming the file
    err = capsys.readouterr().err
    assert victim.name in err or "Ses03F_impro01_F001.npy" in err

    assert train.main([*args, "--on_bad_input", "skip"]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 bad item(s)" in out and victim.stem in out and "Ses03F_impro01_F001" in out
    skipped = json.loads((tmp_path / "run" / "fold1" / "result.json").read_text())["skipped"]
    assert {name for name, _ in skipped} == {victim.stem, "Ses03F_impro01_F001"}


def test_atomic_writes_get_the_mode_a_plain_open_would(tmp_path):
    import os

    from utils.io import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "results.md", "x")
        (tmp_path / "plain.md").write_text("x")
    finally:
        os.umask(old)
    mode = (tmp_path / "results.md").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.md").stat().st_mode & 0o777 == 0o644
