"""MSP-Podcast: the release layout -> a manifest with the release's partition."""

from __future__ import annotations

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
