"""CTC vocabulary of wav2vec2-base and the text -> target-id cleaning the reference used.

The index order is fixed: the authors' checkpoints have a 32-way CTC head in this order.
"""

from __future__ import annotations

import re

# fmt: off
CTC_VOCAB: tuple[str, ...] = (
    "<pad>", "<s>", "</s>", "<unk>", "|",
    "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "W", "C",
    "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z",
)
# fmt: on
BLANK_ID = 0  # CTC blank is <pad>
WORD_DELIMITER = "|"
CHAR_TO_ID: dict[str, int] = {c: i for i, c in enumerate(CTC_VOCAB)}

_SINGLE_CHARS = "".join(c for c in CTC_VOCAB if len(c) == 1 and c != WORD_DELIMITER)
_OUTSIDE_VOCAB = re.compile(f"[^ {re.escape(_SINGLE_CHARS)}]")
_SPACES = re.compile(r"\s+")


def clean_ctc_text(text: str) -> str:
    """Upper-case `text`, drop characters outside the vocabulary, collapse spaces."""
    text = _SPACES.sub(" ", str(text).upper())
    text = _OUTSIDE_VOCAB.sub("", text)
    return _SPACES.sub(" ", text).strip()


def text_to_ctc_ids(text: str) -> list[int]:
    """CTC target ids for a transcript: spaces become `|`, unknown characters vanish."""
    return [CHAR_TO_ID[WORD_DELIMITER if c == " " else c] for c in clean_ctc_text(text)]


def ctc_ids_to_text(ids: list[int]) -> str:
    """Inverse of `text_to_ctc_ids` for plain (already collapsed) id sequences."""
    chars = [CTC_VOCAB[i] for i in ids if i > 3]
    return "".join(" " if c == WORD_DELIMITER else c for c in chars)
