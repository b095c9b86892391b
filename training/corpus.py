"""Corpora as plug-ins: what MMER needs to know about a speech-emotion corpus.

A corpus defines its classes and how its manifest's `Label` codes map onto them, the group
of each utterance, and its protocol, which turns a manifest into folds:

- `leave_one_group_out` (IEMOCAP): the groups are the sessions (the digit after `Ses0` in
  `FileName`); fold k trains on every other session and tests on session k.
- `partition` (MSP-Podcast): the release's own split, in the manifest's `Split` column
  (train / dev / test); one fold, "test", selected on dev.

A new corpus is one `Corpus(...)` entry in `CORPORA` plus its `data_prep/prepare_<name>.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

PROTOCOLS = ("leave_one_group_out", "partition")
_SESSION = re.compile(r"Ses0(\d)")


@dataclass(frozen=True)
class Corpus:
    name: str
    label_map: dict[str, int]  # lower-cased Label code -> class index
    protocol: str
    class_names: tuple[str, ...] = ("hap", "ang", "neu", "sad")  # class index -> name
    groups: tuple = ()  # leave_one_group_out: the groups (folds) there are
    extra_columns: tuple[str, ...] = ()  # manifest columns the corpus needs besides the five
    notes: dict = field(default_factory=dict)

    def group_of(self, row: pd.Series) -> int | str:
        """The utterance's group: its session (IEMOCAP) or its partition (MSP-Podcast)."""
        if self.protocol == "partition":
            return str(row["Split"]).strip().lower()
        match = _SESSION.search(str(row["FileName"]))
        if match is None:
            raise ValueError(
                f"FileName {row['FileName']!r}: expected an IEMOCAP-style name containing 'Ses0<N>'"
            )
        return int(match.group(1))

    @property
    def folds(self) -> tuple:
        """The folds a full run trains: the sessions, or the one test partition."""
        return ("test",) if self.protocol == "partition" else self.groups

    def fold_dir_name(self, fold: int | str) -> str:
        return f"fold{fold}" if self.protocol == "leave_one_group_out" else str(fold)

    def split(
        self, manifest: pd.DataFrame, fold
    ) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
        """(training rows, the release's selection rows or None, test rows) of one fold."""

        def rows(mask):
            return manifest[mask].reset_index(drop=True)

        group = manifest["group"]
        if self.protocol == "partition":
            return rows(group == "train"), rows(group == "dev"), rows(group == "test")
        return rows(group != fold), None, rows(group == fold)


IEMOCAP = Corpus(
    "iemocap",
    label_map={"hap": 0, "exc": 0, "ang": 1, "neu": 2, "sad": 3},  # exc merged into happy
    protocol="leave_one_group_out",
    groups=(1, 2, 3, 4, 5),
)
MSP_PODCAST = Corpus(
    "msp_podcast",
    label_map={"h": 0, "a": 1, "n": 2, "s": 3},  # the release's EmoClass letters
    protocol="partition",
    extra_columns=("Split",),
)
CORPORA = {c.name: c for c in (IEMOCAP, MSP_PODCAST)}


def get_corpus(name: str) -> Corpus:
    if name not in CORPORA:
        raise KeyError(name)
    return CORPORA[name]
