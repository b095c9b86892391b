import hashlib
import shutil
import subprocess

import pandas as pd
import pytest

from data_prep import make_demo_corpus, prepare_iemocap
from data_prep.augment_audio import EspeakEngine


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("engine", ["numpy", "espeak"])
def test_demo_corpus_is_iemocap_shaped_balanced_and_deterministic(tmp_path, engine):
    if engine == "espeak" and shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    root = tmp_path / "a" / "IEMOCAP_full_release"
    args = ["--out", str(root), "--utterances_per_speaker", "8", "--engine", engine, "--seed", "1"]
    make_demo_corpus.main(args)
    assert (root / "Session5" / "dialog" / "EmoEvaluation" / "Ses05M_script02_2.txt").is_file()
    assert (
        b"\r\n"
        in (root / "Session1" / "dialog" / "transcriptions" / "Ses01F_script01_1.txt").read_bytes()
    )
    csv = tmp_path / "m.csv"
    prepare_iemocap.main(
        ["--corpus", str(root), "--out_csv", str(csv), "--out_wav_dir", str(tmp_path / "wav")]
    )
    df = pd.read_csv(csv)
    assert len(df) == 80 and {"exc", "hap"} <= set(df["Label"])
    speaker = df["FileName"].str[:5] + df["FileName"].str.split("_").str[-1].str[0]
    counts = pd.crosstab(speaker, df["Label"].replace({"exc": "hap"}))
    assert (counts.values == 2).all()  # 8 per speaker, two per class
    other = tmp_path / "b" / "IEMOCAP_full_release"
    make_demo_corpus.main([*args[:1], str(other), *args[2:]])
    assert _digest(root) == _digest(other)


def _espeak_digest(voice: str) -> str:
    # words that the accents pronounce differently (en-us and en-us-nyc agree on many)
    text = "I can't dance in the car park, but the water is hot."
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True
    ).stdout
    return hashlib.sha256(wav).hexdigest()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_every_espeak_voice_the_demo_and_augmentation_name_is_a_distinct_voice():
    # espeak-ng falls back silently where it ignores a voice spec ("en-gb+f3" sounds like
    # "en-gb+m1"): a corpus would then reuse one voice across dialogs and sessions.
    demo = sorted({u.voice.name for u in make_demo_corpus.plan_corpus(4, seed=0)})
    assert len(demo) == 40  # one per dialog and speaker: 5 sessions x 4 dialogs x 2
    augment = EspeakEngine().voices()
    for voices in (demo, augment):
        digests = {_espeak_digest(v): v for v in voices}
        assert len(digests) == len(voices), sorted(set(voices) - set(digests.values()))
