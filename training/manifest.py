"""The utterance manifest: the authors' CSV (`FileName, Sentences, Label, text, AugmentedText`).

One row per utterance; extra columns are ignored unless the corpus needs them (MSP-Podcast:
`Split`). `Label` holds the corpus' code (IEMOCAP `hap`, `exc`, `ang`, `neu`, `sad`, with `exc`
merged into class 0 as in the paper). Each row gets a `group` from its corpus
(`training.corpus`): the IEMOCAP session (the digit after `Ses0` in `FileName`,
`Ses03M_impro02_F011` -> 3) or the MSP-Podcast partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from training.corpus import IEMOCAP, Corpus
from utils.errors import DataError  # noqa: F401 - also this module's public name

LABELS: tuple[str, ...] = IEMOCAP.class_names  # class index -> name
LABEL_TO_ID: dict[str, int] = IEMOCAP.label_map
REQUIRED_COLUMNS: tuple[str, ...] = ("FileName", "Sentences", "Label", "text", "AugmentedText")
ON_BAD_INPUT = ("error", "skip")


def check_policy(on_bad_input: str) -> None:
    if on_bad_input not in ON_BAD_INPUT:
        raise ValueError(f"on_bad_input must be one of {ON_BAD_INPUT}, got {on_bad_input!r}")


def session_of(file_name: str) -> int:
    """Session number (1-5 on IEMOCAP) of an utterance name: the digit after `Ses0`."""
    return group_of({"FileName": file_name}, IEMOCAP)


def group_of(row, corpus: Corpus) -> int | str:
    try:
        return corpus.group_of(row)
    except ValueError as err:
        raise DataError(str(err)) from None


def label_id(code: str, corpus: Corpus = IEMOCAP) -> int:
    """Class index of a label code (IEMOCAP: hap/exc -> 0, ang -> 1, neu -> 2, sad -> 3)."""
    key = str(code).strip().lower()
    if key not in corpus.label_map:
        raise DataError(
            f"unknown label {code!r}: expected one of {sorted(corpus.label_map)} ({corpus.name})"
        )
    return corpus.label_map[key]


def read_manifest(
    path: str | Path,
    *,
    on_bad_input: str = "error",
    skipped: list[tuple[str, str]] | None = None,
    corpus: Corpus = IEMOCAP,
) -> pd.DataFrame:
    """Read and validate the CSV.

    Returns a DataFrame with the five contract columns (strings, empty cells as ""), the
    corpus' extra columns, `label` (int class id) and `group` (`corpus.group_of`; IEMOCAP also
    keeps it as `session`). Other columns (the authors' unnamed index) are dropped. Under `on_bad_input="skip"` bad rows (unknown label, no session in the name,
    duplicate FileName after the first) are removed and appended to `skipped` as
    `(FileName, reason)`; under "error" the first kind of problem raises `DataError`.
    """
    check_policy(on_bad_input)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"manifest {path}: file not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"manifest {path}: not a readable UTF-8 CSV ({exc})") from None
    columns = [*REQUIRED_COLUMNS, *corpus.extra_columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"manifest {path}: missing column(s) {missing}; expected {columns} for "
            f"{corpus.name} (found {list(df.columns)})"
        )
    df = df[columns].copy()
    df["FileName"] = df["FileName"].str.strip()
    bad: list[tuple[int, str, str]] = []  # (row position, FileName, reason)
    labels, groups = [], []
    for pos, row in enumerate(df.to_dict("records")):
        try:
            group, label = group_of(row, corpus), label_id(row["Label"], corpus)
        except DataError as exc:
            bad.append((pos, row["FileName"], str(exc)))
            group, label = -1, -1
        groups.append(group)
        labels.append(label)
    df["label"], df["group"] = labels, groups
    if corpus.protocol == "partition":
        unknown = sorted({g for g in groups if g not in ("train", "dev", "test", -1)})
        if unknown:
            raise DataError(f"manifest {path}: Split values {unknown}; expected train/dev/test")
    seen: set[str] = set()
    for pos, name in enumerate(df["FileName"]):
        if name in seen:
            bad.append((pos, name, f"duplicate FileName {name!r} (row {pos + 2} of {path})"))
        seen.add(name)
    if bad:
        if on_bad_input == "error":
            pos, name, reason = bad[0]
            more = f" (and {len(bad) - 1} more bad rows)" if len(bad) > 1 else ""
            raise DataError(f"manifest {path}, row {pos + 2} ({name}): {reason}{more}")
        drop = sorted({pos for pos, _, _ in bad})
        if skipped is not None:
            skipped.extend((name, reason) for _, name, reason in bad)
        df = df.drop(df.index[drop])
    if df.empty:
        raise DataError(f"manifest {path}: no usable rows")
    if corpus is IEMOCAP:
        df["session"] = df["group"]
    return df.reset_index(drop=True)


def select_groups(df: pd.DataFrame, groups: Iterable) -> pd.DataFrame:
    """Rows of the given groups (sessions, partitions); one with no rows is an error."""
    groups = list(groups)
    empty = [g for g in groups if not (df["group"] == g).any()]
    if empty:
        present = sorted(df["group"].unique().tolist(), key=str)
        raise DataError(f"group(s) {empty} have no rows in the manifest (present: {present})")
    return df[df["group"].isin(groups)].reset_index(drop=True)


def format_skipped(skipped: Sequence[tuple[str, str]], limit: int = 10) -> str:
    """'skipped N bad item(s)' with the first `limit` as `name: reason` lines, then a count."""
    lines = [f"skipped {len(skipped)} bad item(s) (on_bad_input=skip):"]
    lines += [f"  {name}: {reason}" for name, reason in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more (all of them in the JSON report)")
    return "\n".join(lines)
