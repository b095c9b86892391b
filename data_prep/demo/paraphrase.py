"""Paraphrases for the demo corpus into the CSV's AugmentedText, without a translation model.

    python -m data_prep.demo.paraphrase --csv data/demo/demo.csv

The offline stand-in for `augment_text.py` (back-translation needs an HF translation model):
every phrase of a demo sentence is replaced by its hand-written rewording from
`data_prep/demo/text.py` (same meaning, same emotion, other words). Only for sentences made by
the demo corpus generator; other text is left as it is. Idempotent: rows whose AugmentedText
already differs from Sentences are kept unless --overwrite.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from data_prep.cli import run
from data_prep.demo.text import paraphrase
from training.manifest import REQUIRED_COLUMNS, DataError


def fill_paraphrases(csv: Path, overwrite: bool = False) -> tuple[int, int]:
    """Write paraphrases into `csv` (atomically); returns (rows paraphrased, rows in all)."""
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{csv}: missing column(s) {missing}")
    todo = (df["AugmentedText"] == df["Sentences"]) | (df["AugmentedText"].str.strip() == "")
    if overwrite:
        todo[:] = True
    df.loc[todo, "AugmentedText"] = df.loc[todo, "Sentences"].map(paraphrase)
    tmp = csv.with_suffix(".tmp")
    df.rename(columns=lambda c: "" if c.startswith("Unnamed: ") else c).to_csv(tmp, index=False)
    tmp.replace(csv)
    return int(todo.sum()), len(df)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", default="data/demo/demo.csv")
    parser.add_argument("--overwrite", action="store_true", help="redo rows already paraphrased")
    args = parser.parse_args(argv)
    done, total = fill_paraphrases(Path(args.csv), args.overwrite)
    print(f"{args.csv}: paraphrased {done} row(s), kept {total - done}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
