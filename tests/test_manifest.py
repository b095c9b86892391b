import pandas as pd
import pytest

from tests.fixtures import rows, write_csv
from training.corpus import IEMOCAP, MSP_PODCAST
from training.manifest import (
    LABELS,
    DataError,
    label_id,
    read_manifest,
    select_groups,
    session_of,
)


def test_reads_authors_csv_with_index_column(tmp_path):
    df = read_manifest(write_csv(tmp_path / "m.csv", rows(3, (1, 2, 5))))
    assert list(df.columns[:5]) == ["FileName", "Sentences", "Label", "text", "AugmentedText"]
    assert "Unnamed: 0" not in df.columns
    assert set(df["session"]) == {1, 2, 5}
    assert LABELS == ("hap", "ang", "neu", "sad")
    assert [label_id(c) for c in ("hap", "exc", "ang", "neu", "sad")] == [0, 0, 1, 2, 3]
    assert session_of("Ses01F_impro01_Ses03M_script01_1_M012") == 1


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "m.csv"
    pd.DataFrame(rows()).drop(columns=["text"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="missing column.*'text'"):
        read_manifest(path)


def test_unknown_label_error_and_skip(tmp_path):
    data = rows()
    data[1]["Label"] = "fru"
    path = write_csv(tmp_path / "m.csv", data)
    with pytest.raises(DataError, match=r"row 3 .*unknown label 'fru'"):
        read_manifest(path)
    skipped = []
    df = read_manifest(path, on_bad_input="skip", skipped=skipped)
    assert len(df) == len(data) - 1 and skipped[0][0] == data[1]["FileName"]


def test_duplicate_filename(tmp_path):
    data = rows()
    data.append(dict(data[0]))
    path = write_csv(tmp_path / "m.csv", data)
    with pytest.raises(DataError, match="duplicate FileName"):
        read_manifest(path)
    skipped = []
    assert len(read_manifest(path, on_bad_input="skip", skipped=skipped)) == len(data) - 1
    assert "duplicate" in skipped[0][1]


def test_empty_session_and_loso(tmp_path):
    df = read_manifest(write_csv(tmp_path / "m.csv", rows(2, (1, 2))))
    train, release_selection, test = IEMOCAP.split(df, 2)
    assert set(train["session"]) == {1} and set(test["session"]) == {2}
    assert release_selection is None  # selection data come from the training sessions
    with pytest.raises(DataError, match=r"group\(s\) \[4\] have no rows"):
        select_groups(df, [4])


def test_a_partition_corpus_reads_its_split_column_and_letters(tmp_path):
    data = [dict(r, Label=letter) for r, letter in zip(rows(4, (1, 2)), "AHNSAHNS", strict=True)]
    for r, split in zip(data, ["train"] * 4 + ["Dev", "dev", "test", "test"], strict=True):
        r["Split"] = split
    path = tmp_path / "msp.csv"
    pd.DataFrame(data).to_csv(path, index=False)
    df = read_manifest(path, corpus=MSP_PODCAST)
    assert df["label"].tolist() == [1, 0, 2, 3] * 2  # A ang, H hap, N neu, S sad
    train, dev, test = MSP_PODCAST.split(df, "test")
    assert (len(train), len(dev), len(test)) == (4, 2, 2)
    pd.DataFrame(data).drop(columns=["Split"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="missing column.*'Split'.*msp_podcast"):
        read_manifest(path, corpus=MSP_PODCAST)


def test_empty_and_non_ascii_transcripts_and_bad_name(tmp_path):
    data = rows()
    data[0]["Sentences"] = data[0]["text"] = ""
    data[1]["Sentences"] = "Ça va très bien, merci — 東京"
    df = read_manifest(write_csv(tmp_path / "m.csv", data))
    assert df.loc[0, "Sentences"] == "" and "東京" in df.loc[1, "Sentences"]
    data[2]["FileName"] = "utterance_without_session"
    with pytest.raises(DataError, match="Ses0"):
        read_manifest(write_csv(tmp_path / "b.csv", data))


def test_missing_or_garbage_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_manifest(tmp_path / "none.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage\x00\x81")
    with pytest.raises(DataError):
        read_manifest(tmp_path / "bin.csv")
