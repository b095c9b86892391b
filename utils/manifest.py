"""The utterance manifest: the authors' CSV (`FileName, Sentences, Label, text, AugmentedText`).

One row per utterance. `Label` holds the IEMOCAP code (`hap`, `exc`, `ang`, `neu`, `sad`);
`exc` is merged into class 0 (happy) as in the paper. The session of a row is the digit after
`Ses0` in `FileName` (`Ses03M_impro02_F011` -> 3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from utils.errors import MMERError

LABELS: tuple[str, ...] = ("hap", "ang", "neu", "sad")  # class index -> name
LABEL_TO_ID: dict[str, int] = {"hap": 0, "exc": 0, "ang": 1, "neu": 2, "sad": 3}
REQUIRED_COLUMNS: tuple[str, ...] = ("FileName", "Sentences", "Label", "text", "AugmentedText")
ON_BAD_INPUT = ("error", "skip")

_SESSION = re.compile(r"Ses0(\d)")


class DataError(MMERError, ValueError):
    """A user-fixable problem with input data; the message names the file/row and what was expected."""


def check_policy(on_bad_input: str) -> None:
    if on_bad_input not in ON_BAD_INPUT:
        raise ValueError(f"on_bad_input must be one of {ON_BAD_INPUT}, got {on_bad_input!r}")


def session_of(file_name: str) -> int:
    """Session number (1-5 on IEMOCAP) of an utterance name: the digit after `Ses0`."""
    match = _SESSION.search(str(file_name))
    if match is None:
        raise DataError(
            f"FileName {file_name!r}: expected an IEMOCAP-style name containing 'Ses0<N>'"
        )
    return int(match.group(1))


def label_id(code: str) -> int:
    """Class index of an IEMOCAP label code (hap/exc -> 0, ang -> 1, neu -> 2, sad -> 3)."""
    key = str(code).strip().lower()
    if key not in LABEL_TO_ID:
        raise DataError(f"unknown label {code!r}: expected one of {sorted(LABEL_TO_ID)}")
    return LABEL_TO_ID[key]


def read_manifest(
    path: str | Path,
    *,
    on_bad_input: str = "error",
    skipped: list[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Read and validate the CSV.

    Returns a DataFrame with the five contract columns (strings, empty cells as "") plus
    `label` (int class id) and `session` (int). Extra columns (the authors' unnamed index)
    are dropped. Under `on_bad_input="skip"` bad rows (unknown label, no session in the name,
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
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"manifest {path}: missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)} "
            f"(found {list(df.columns)})"
        )
    df = df[list(REQUIRED_COLUMNS)].copy()
    df["FileName"] = df["FileName"].str.strip()
    bad: list[tuple[int, str, str]] = []  # (row position, FileName, reason)
    labels, sessions = [], []
    for pos, (name, code) in enumerate(zip(df["FileName"], df["Label"], strict=True)):
        try:
            session, label = session_of(name), label_id(code)
        except DataError as exc:
            bad.append((pos, name, str(exc)))
            session, label = -1, -1
        sessions.append(session)
        labels.append(label)
    df["label"], df["session"] = labels, sessions
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
    return df.reset_index(drop=True)


def select_sessions(df: pd.DataFrame, sessions: Iterable[int]) -> pd.DataFrame:
    """Rows of the given sessions; a requested session with no rows is an error."""
    sessions = list(sessions)
    empty = [s for s in sessions if not (df["session"] == s).any()]
    if empty:
        present = sorted(df["session"].unique().tolist())
        raise DataError(
            f"session(s) {empty} have no rows in the manifest (sessions present: {present})"
        )
    return df[df["session"].isin(sessions)].reset_index(drop=True)


def loso_split(df: pd.DataFrame, test_session: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leave-one-session-out: (train rows = every other session, test rows = `test_session`)."""
    test = select_sessions(df, [test_session])
    train = df[df["session"] != test_session].reset_index(drop=True)
    if train.empty:
        raise DataError(f"leaving out session {test_session} leaves no training rows")
    return train, test


def format_skipped(skipped: Sequence[tuple[str, str]], limit: int = 10) -> str:
    """'skipped N bad item(s)' with the first `limit` as `name: reason` lines, then a count."""
    lines = [f"skipped {len(skipped)} bad item(s) (on_bad_input=skip):"]
    lines += [f"  {name}: {reason}" for name, reason in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more (all of them in the JSON report)")
    return "\n".join(lines)
