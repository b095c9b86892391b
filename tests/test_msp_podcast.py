"""MSP-Podcast: the release layout -> a manifest with the release's partition."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_prep import prepare_msp_podcast
from utils import audio as audio_io

from .fixtures import make_msp_release


def test_prepare_msp_podcast_keeps_four_classes_and_the_release_partition(tmp_path, capsys):
    release = make_msp_release(tmp_path / "MSP-Podcast")
    out_csv, out_wav = tmp_path / "msp.csv", tmp_path / "wav"
    argv = ["--corpus", str(release), "--out_csv", str(out_csv), "--out_wav_dir", str(out_wav)]
    assert prepare_msp_podcast.main(argv) == 0
    df = pd.read_csv(out_csv, dtype=str, keep_default_na=False)
    assert list(df.columns[:5]) == ["FileName", "Sentences", "Label", "text", "AugmentedText"]
    assert df["Split"].value_counts().to_dict() == {"train": 8, "dev": 8, "test": 8}
    assert set(df["Label"]) == {"A", "H", "N", "S"}
    assert df.loc[0, "FileName"] == "MSP-PODCAST_0000_0000" and df.loc[0, "text"].isupper()
    printed = capsys.readouterr().out
    for reason in ("class U: 1", "class X: 1", "partition Test2: 1", "no transcript: 1"):
        assert reason in printed
    info = audio_io.probe(out_wav / "MSP-PODCAST_0000_0001.wav")  # was 44.1 kHz stereo
    assert (info.samplerate, info.channels) == (16000, 1)
    assert prepare_msp_podcast.main(argv) == 0  # idempotent
    assert "nothing to do" in capsys.readouterr().out


def test_msp_podcast_trains_on_the_release_partition_and_evaluates(tmp_path):
    """Train on Train, select on Development, test on Test1; then infer.sh on that test."""
    import json
    import os
    import subprocess
    import sys

    import numpy as np
    import yaml

    from .conftest import TINY

    root = Path(__file__).resolve().parent.parent
    release = make_msp_release(tmp_path / "MSP-Podcast")
    csv, wav, emb = tmp_path / "msp.csv", tmp_path / "wav", tmp_path / "emb"
    prepare_msp_podcast.main(
        ["--corpus", str(release), "--out_csv", str(csv), "--out_wav_dir", str(wav)]
    )
    emb.mkdir()
    rng = np.random.default_rng(0)
    for name in pd.read_csv(csv)["FileName"]:
        np.save(emb / f"{name}.npy", rng.standard_normal((1, 5, 32)).astype(np.float32))
    config = tmp_path / "msp.yaml"
    config.write_text(yaml.safe_dump({"model": dict(TINY), "data": {"corpus": "msp_podcast"},
                                      "train": {"epochs": 2, "batch_size": 4, "lr": 1e-3}}))  # fmt: skip
    env = {**os.environ, "PYTHON": sys.executable}
    cmd = ["sh", str(root / "run.sh"), "--config", str(config), "--csv_path", str(csv),
           "--data_path_audio", str(wav), "--data_path_roberta", str(emb),
           "--save_path", str(tmp_path / "run"), "--epochs", "2", "--batch_size", "4"]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert list(results["folds"]) == ["test"]
    fold = results["folds"]["test"]
    assert fold["test"]["n"] == 8 and fold["selection"] == "val"
    best = tmp_path / "run" / "test" / "best"
    cmd = ["bash", str(root / "infer.sh"), "test", str(config), str(csv), str(wav), str(emb),
           str(best), "--corpus", "msp_podcast", "--json", str(tmp_path / "eval.json")]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["n"] == 8 and report["confusion"] == fold["test"]["confusion"]
