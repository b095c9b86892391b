import hashlib
import shutil

import pandas as pd
import pytest

from data_prep import make_demo_corpus, prepare_iemocap


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
