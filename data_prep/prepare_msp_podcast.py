"""Turn an MSP-Podcast release into an MMER manifest and 16 kHz mono wavs.

    python -m data_prep.prepare_msp_podcast --corpus data/MSP-Podcast --out_csv data/msp_podcast.csv --out_wav_dir data/msp_podcast

The release (licensed by UT Dallas; request it from the MSP lab) is read as laid out:
`Audios/<FileName>.wav`, `Labels/labels_consensus.csv` (`FileName, EmoClass, EmoAct, EmoVal,
EmoDom, SpkrID, Gender, Split_Set`) and `Transcripts/<stem>.txt` (one transcript per file).
Keeps the four classes of the usual 4-class task, A (angry), H (happy), N (neutral), S (sad);
every other consensus class (U, F, D, C, O, X) is dropped and counted, as are utterances
without a transcript or wav, and partitions other than Train, Development and Test1.
Writes the manifest columns `FileName, Sentences, Label, text, AugmentedText` (Label keeps
the release's letter) plus `Split` (train / dev / test: the release's Train / Development /
Test1) and `Speaker`. Idempotent like prepare_iemocap.py: an existing CSV is left alone
(--overwrite rewrites it), and existing wavs are not redone.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from data_prep.cli import preparation_args, run
from models.vocab import clean_ctc_text
from training.manifest import REQUIRED_COLUMNS, DataError
from utils import audio as audio_io
from utils.io import write_text_atomic

KEEP = ("A", "H", "N", "S")
SPLITS = {"Train": "train", "Development": "dev", "Test1": "test"}
LABEL_COLUMNS = ("FileName", "EmoClass", "SpkrID", "Split_Set")
COLUMNS = [*REQUIRED_COLUMNS, "Split", "Speaker"]


def read_labels(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: not found; expected the release's Labels/labels_consensus.csv")
    labels = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing} (found {list(labels.columns)})")
    return labels


def read_transcript(path: Path) -> str | None:
    if not path.is_file():
        return None
    text = path.read_bytes().decode("utf-8", errors="replace")
    return " ".join(text.split())


def collect(root: Path) -> tuple[list[dict], Counter]:
    """Rows for every kept utterance, and counts of what was dropped and why."""
    labels = read_labels(root / "Labels" / "labels_consensus.csv")
    rows, dropped = [], Counter()
    for r in labels.itertuples(index=False):
        stem = Path(r.FileName).stem
        if r.EmoClass not in KEEP:
            dropped[f"class {r.EmoClass or '(empty)'}"] += 1
            continue
        if r.Split_Set not in SPLITS:
            dropped[f"partition {r.Split_Set or '(empty)'}"] += 1
            continue
        wav = root / "Audios" / f"{stem}.wav"
        if not wav.is_file():
            dropped["no wav"] += 1
            continue
        sentence = read_transcript(root / "Transcripts" / f"{stem}.txt")
        if not sentence:
            dropped["no transcript"] += 1
            continue
        rows.append({
            "FileName": stem, "Sentences": sentence, "Label": r.EmoClass,
            "text": clean_ctc_text(sentence), "AugmentedText": sentence,
            "Split": SPLITS[r.Split_Set], "Speaker": r.SpkrID, "_wav": wav,
        })  # fmt: skip
    return rows, dropped


def main(argv: list[str] | None = None) -> int:
    args = preparation_args(__doc__, argv, "data/MSP-Podcast", "data/msp_podcast.csv",
                            "data/msp_podcast", "the release directory")  # fmt: skip
    if args is None:
        return 0
    corpus, out_csv, out_wav, parser = args.corpus, args.out_csv, args.out_wav_dir, args.parser
    if not corpus.is_dir():
        parser.error(f"--corpus {corpus}: not a directory")
    try:
        rows, dropped = collect(corpus)
        if not rows:
            raise DataError(f"{corpus}: no utterance of class A/H/N/S with a transcript and wav")
    except DataError as err:
        parser.exit(2, f"error: {err}\n")
    out_wav.mkdir(parents=True, exist_ok=True)
    written = sum(
        audio_io.write_16k_mono(row.pop("_wav"), out_wav / f"{row['FileName']}.wav")
        for row in tqdm(rows, desc="wavs")
    )
    df = pd.DataFrame(rows, columns=COLUMNS)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_csv, df.to_csv(index=False))
    print(f"wrote {out_csv} ({len(df)} utterances) and {written} new wav(s) in {out_wav}")
    print(pd.crosstab(df["Split"], df["Label"], margins=True, margins_name="all").to_string())
    if dropped:
        print("dropped: " + ", ".join(f"{k}: {v}" for k, v in sorted(dropped.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
